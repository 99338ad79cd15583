"""The log sidecar as a real process against the Bulk-API emulator: every line arrives exactly once.

Each test writes numbered JSON lines, lets the sidecar ship them through a failure
(rotation, copytruncate, SIGKILL, an outage, 429s, a poison document, SIGTERM) and
compares what Elasticsearch stored with what was written: as many unique ``_id``s as
lines, and every line's payload exactly once.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

from sink_emulators.elasticsearch import BulkEmulator, Faults
from tests.integration.log_sidecar_process import (
    INDEX,
    LineWriter,
    Sidecar,
    WatchedWriter,
    assert_exactly_once,
    launch,
    seqs_stored,
    wait_for,
)


def test_rotation_by_rename_under_continuous_writes(tmp_path: Path, es: BulkEmulator, sidecars: list[Sidecar]) -> None:
    sidecar = launch(sidecars, tmp_path, es)
    app = sidecar.logs / "app.log"
    writer = WatchedWriter(app)
    stop = threading.Event()
    thread = threading.Thread(target=writer.run, args=(stop,), daemon=True)
    thread.start()
    try:
        for rotation in range(1, 4):
            # Rotate once a good share of the current file was shipped, so the writer keeps
            # writing through every rotation (files rotated sooner: test_log_sidecar_discovery.py).
            target = len(writer.written) + 200
            # The lambda runs inside this iteration, so reading the loop variable is safe.
            wait_for(sidecar, lambda: es.count(INDEX) > target, f"lines after rotation {rotation - 1}")  # noqa: B023
            app.rename(app.with_name(f"app.log.{rotation}"))
        wait_for(sidecar, lambda: sidecar.metric("log_sidecar_file_events_total", event="rotated") >= 3, "rotation 3")
    finally:
        stop.set()
        thread.join(5)
        writer.close()
    assert len(writer.written) > 500
    assert_exactly_once(es, writer.written, sidecar)
    assert sidecar.metric("log_sidecar_file_events_total", event="rotated") == 3
    wait_for(sidecar, lambda: sidecar.metric("log_sidecar_open_files") == 1, "rotated files closed after finishing")
    doc = next(iter(es.documents(INDEX).values()))
    assert doc["kubernetes"] == {"pod": {"name": "demo-app-0"}, "namespace": "sidecar-lab"}
    assert doc["log"]["file"]["path"] == str(sidecar.logs / "app.log")


def test_copytruncate(tmp_path: Path, es: BulkEmulator, sidecars: list[Sidecar]) -> None:
    sidecar = launch(sidecars, tmp_path, es)
    app = sidecar.logs / "app.log"
    writer = LineWriter(app)
    writer.write(400)
    wait_for(sidecar, lambda: es.count(INDEX) == 400, "first 400 shipped")
    # logrotate's copytruncate: copy away (not matched by *.log), then truncate in place.
    (sidecar.logs / "app.log.1").write_bytes(app.read_bytes())
    os.truncate(app, 0)
    writer.write(300)  # the writer keeps its O_APPEND descriptor and continues at 0
    writer.close()
    assert_exactly_once(es, writer.written, sidecar)
    assert sidecar.metric("log_sidecar_file_events_total", event="truncated") == 1


def test_sigkill_mid_batch_and_restart(tmp_path: Path, es: BulkEmulator, sidecars: list[Sidecar]) -> None:
    (tmp_path / "logs").mkdir()
    writer = LineWriter(tmp_path / "logs" / "app.log")
    writer.write(12_000)
    writer.close()
    # Slow answers: documents are stored, then the answer takes a while, so the kill lands
    # between "stored" and "acknowledged" and the restart must resend without duplicating.
    es.set_faults(Faults(delay_seconds=0.3))
    first = launch(sidecars, tmp_path, es)
    wait_for(first, lambda: es.count(INDEX) >= 2000, "some batches stored")
    first.kill()
    killed_at = es.count(INDEX)
    assert killed_at < 12_000, "the kill came mid-stream"
    es.clear_faults()
    second = launch(sidecars, tmp_path, es)
    assert_exactly_once(es, writer.written, second)
    # The batch in flight at the kill was stored but not acknowledged: resent, refused with 409.
    assert second.metric("log_sidecar_documents_total", result="duplicate") > 0


def test_elasticsearch_down_for_seconds_then_back(tmp_path: Path, es: BulkEmulator, sidecars: list[Sidecar]) -> None:
    sidecar = launch(sidecars, tmp_path, es)
    writer = LineWriter(sidecar.logs / "app.log")
    writer.write(300)
    wait_for(sidecar, lambda: es.count(INDEX) == 300, "before the outage")
    es.stop()  # connections refused
    writer.write(700)
    wait_for(sidecar, lambda: sidecar.metric("log_sidecar_sink_up") == 0, "sink seen down")
    time.sleep(2)  # an outage of a few seconds, while the app keeps writing
    writer.write(500)
    assert sidecar.metric("log_sidecar_retries_total", reason="connection") > 0
    es.start()
    writer.close()
    assert_exactly_once(es, writer.written, sidecar)
    wait_for(sidecar, lambda: sidecar.metric("log_sidecar_sink_up") == 1, "sink seen up again")


def test_ten_percent_item_429s(tmp_path: Path, es: BulkEmulator, sidecars: list[Sidecar]) -> None:
    es.set_faults(Faults(item_status_rate={429: 0.1}, seed=7))
    sidecar = launch(sidecars, tmp_path, es)
    writer = LineWriter(sidecar.logs / "app.log")
    writer.write(3000)
    writer.close()
    assert_exactly_once(es, writer.written, sidecar)
    retries = sidecar.metric("log_sidecar_retries_total", reason="rate_limited")
    assert 100 < retries < 1000, f"about 10% of 3000 documents retried, got {retries}"


def test_a_poison_document_goes_to_the_dead_letter_file_and_the_rest_flows(
    tmp_path: Path, es: BulkEmulator, sidecars: list[Sidecar]
) -> None:
    es.set_faults(Faults(poison_field="poison"))
    sidecar = launch(sidecars, tmp_path, es)
    writer = LineWriter(sidecar.logs / "app.log")
    writer.write(200)
    writer.write(1, poison={"not": "mappable"})
    poisoned = writer.written.pop()
    writer.write(200)
    writer.close()
    assert_exactly_once(es, writer.written, sidecar)
    dead_letter = sidecar.state / "dead-letter.ndjson"
    wait_for(sidecar, lambda: dead_letter.exists() and dead_letter.read_text().endswith("\n"), "dead letter")
    (letter,) = [json.loads(line) for line in dead_letter.read_text().splitlines()]
    assert letter["status"] == 400
    assert letter["error_type"] == "mapper_parsing_exception"
    assert letter["document"]["seq"] == poisoned
    assert letter["file"] == str(sidecar.logs / "app.log")
    # The file is written first, then counted.
    wait_for(sidecar, lambda: sidecar.metric("log_sidecar_dead_letters_total") == 1, "dead letter counted")
    assert sidecar.metric("log_sidecar_documents_total", result="dead_letter") == 1


def test_sigterm_drains_ships_everything_written_and_checkpoints(
    tmp_path: Path, es: BulkEmulator, sidecars: list[Sidecar]
) -> None:
    sidecar = launch(sidecars, tmp_path, es)
    writer = LineWriter(sidecar.logs / "app.log")
    writer.write(100)
    wait_for(sidecar, lambda: es.count(INDEX) == 100, "first lines shipped")
    es.set_faults(Faults(delay_seconds=0.2))  # shipping still in progress when SIGTERM comes
    writer.write(3000)  # the app's last words, just before the pod stops
    writer.close()
    sidecar.process.signal(signal.SIGTERM)
    started = time.monotonic()
    assert sidecar.process.wait(20) == 0, sidecar.process.failure("did not stop cleanly")
    assert time.monotonic() - started < 10 + 3, "drained within LOG_DRAIN_SECONDS"
    assert sorted(seqs_stored(es)) == writer.written
    checkpoint = json.loads((sidecar.state / "checkpoint.json").read_text())
    assert checkpoint["files"][0]["offset"] == (sidecar.logs / "app.log").stat().st_size
    # A restart has nothing left to send.
    es.clear_faults()
    before = es.bulk_requests
    again = launch(sidecars, tmp_path, es)
    time.sleep(1)
    assert es.bulk_requests == before
    assert again.metric("log_sidecar_documents_total", result="duplicate") == 0
