"""The log sidecar process with the Fluentd sink, and with input designed to hurt it."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

from sink_emulators.elasticsearch import BulkEmulator, Faults
from sink_emulators.fluentd import FluentForwardReceiver
from tests.integration.log_sidecar_process import INDEX, LineWriter, Sidecar, wait_for


def test_fluentd_sink_delivers_every_line_through_a_receiver_restart(tmp_path: Path, sidecars: list[Sidecar]) -> None:
    receiver = FluentForwardReceiver().start()
    try:
        sidecar = Sidecar(
            tmp_path, LOG_SINK="fluentd", FLUENTD_HOST="127.0.0.1", FLUENTD_PORT=str(receiver.port), FLUENTD_TAG="app"
        )
        sidecars.append(sidecar.start())
        writer = LineWriter(sidecar.logs / "app.log")
        writer.write(300)
        wait_for(sidecar, lambda: len(receiver.events()) >= 300, "300 events")
        receiver.stop()
        writer.write(300)
        wait_for(sidecar, lambda: sidecar.metric("log_sidecar_sink_up") == 0, "receiver seen gone")
        receiver.start()
        writer.close()
        wait_for(sidecar, lambda: len({e.record["_id"] for e in receiver.events()}) >= 600, "600 unique events")
        events = receiver.events()
        by_id = {e.record["_id"]: e.record["seq"] for e in events}
        assert sorted(by_id.values()) == writer.written, "every line, under exactly one id"
        assert {e.tag for e in events} == {"app"}
        assert all(e.event_time for e in events)
        assert receiver.errors() == []
        # The forward protocol is at-least-once: a chunk whose ack was lost is sent again (same ids).
        assert len(events) - len(by_id) <= 300
    finally:
        receiver.stop()


def test_bad_input_is_counted_and_logged_never_a_crash(tmp_path: Path, sidecars: list[Sidecar]) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "garbage.log").write_bytes(os.urandom(300_000))
    with (logs / "big.log").open("w") as out:
        out.write("z" * 1_000_000 + "\n")
        out.write(json.dumps({"after": "the big line"}) + "\n")
    (logs / "mixed.log").write_text('{"ok": 1}\n{"broken": \n{"ok": 2}\n[not an object\n{"ok": 3}\n')
    doomed = LineWriter(logs / "doomed.log")
    doomed.write(20_000)
    doomed.close()
    with BulkEmulator() as es:
        # Slow Elasticsearch and a small buffer: the sidecar is stuck mid-way through doomed.log...
        es.set_faults(Faults(delay_seconds=0.3))
        sidecar = Sidecar(
            tmp_path,
            ES_URL=es.url,
            LOG_BUFFER_MAX_BYTES="200000",
            LOG_BATCH_MAX_BYTES="100000",
            LOG_PARTIAL_FLUSH_SECONDS="1",  # garbage.log ends without a newline
        )
        sidecars.append(sidecar.start())
        wait_for(sidecar, lambda: es.count(INDEX) > 1000, "shipping started")
        (logs / "doomed.log").unlink()  # ...when the file is removed under it.
        es.clear_faults()
        wait_for(sidecar, lambda: sidecar.metric("log_sidecar_file_events_total", event="deleted") == 1, "deleted")

        def shipped_from(name: str) -> int:
            return sum(d["log"]["file"]["path"].endswith(name) for d in es.documents(INDEX).values())

        wait_for(sidecar, lambda: shipped_from("doomed.log") == 20_000, "all of doomed.log")
        wait_for(sidecar, lambda: shipped_from("mixed.log") == 5, "all of mixed.log")
        wait_for(sidecar, lambda: shipped_from("big.log") == 2, "all of big.log")
        lines_of_garbage = sum(1 for line in (logs / "garbage.log").read_bytes().split(b"\n") if line.strip())
        wait_for(sidecar, lambda: shipped_from("garbage.log") == lines_of_garbage, "every non-blank garbage line")
        docs = es.documents(INDEX)
        seqs = Counter(d["seq"] for d in docs.values() if "seq" in d)
        assert sorted(seqs) == doomed.written
        assert set(seqs.values()) == {1}
        big = [d for d in docs.values() if d["log"]["file"]["path"].endswith("big.log")]
        cut = next(d for d in big if "message" in d)
        assert len(cut["message"]) == 262144
        assert cut["log"]["flags"] == ["truncated"]
        assert any(d.get("after") == "the big line" for d in big)
        mixed = [d for d in docs.values() if d["log"]["file"]["path"].endswith("mixed.log")]
        mixed.sort(key=lambda d: d["log"]["offset"])
        assert [d.get("ok", d.get("message")) for d in mixed] == [1, '{"broken": ', 2, "[not an object", 3]
        assert sidecar.metric("log_sidecar_malformed_records_total", reason="invalid_utf8") > 0
        assert sidecar.metric("log_sidecar_malformed_records_total", reason="truncated") == 1
        # '{"broken": ' and any random garbage line that happens to start with "{".
        assert sidecar.metric("log_sidecar_malformed_records_total", reason="invalid_json") >= 1
        assert sidecar.process.running()
        output = sidecar.process.output()
        assert "bad input" in output
        assert "Traceback" not in output
        assert sidecar.stop() == 0
