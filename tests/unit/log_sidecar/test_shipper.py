"""Retries resend only what failed; permanent failures go to the dead-letter file; the stream goes on."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from log_sidecar.sinks.base import PayloadRejectedError, SinkUnavailableError
from tests.unit.log_sidecar.conftest import MakeHarness
from tests.unit.log_sidecar.harness import FakeSink


def write_lines(path: Path, count: int, prefix: str = "line") -> list[str]:
    lines = [f"{prefix} {i}" for i in range(count)]
    with path.open("a") as out:
        out.writelines(line + "\n" for line in lines)
    return lines


def test_per_item_429s_resend_only_the_failed_documents(make_harness: MakeHarness, logs: Path) -> None:
    lines = write_lines(logs / "app.log", 10)
    attempts: dict[str, int] = {}

    def flaky(doc: dict[str, Any]) -> int | None:
        seen = attempts[doc["_id"]] = attempts.get(doc["_id"], 0) + 1
        return 429 if doc["message"] in ("line 3", "line 7") and seen == 1 else None

    sink = FakeSink()
    sink.item_status = flaky
    h = make_harness(sink=sink)
    h.pump(1)
    assert sorted(sink.messages()) == sorted(lines)
    assert sink.requests == [10, 2]
    assert h.metric("log_sidecar_retries_total", reason="rate_limited") == 2
    assert h.metric("log_sidecar_documents_total", result="delivered") == 10


def test_whole_request_failures_are_retried_until_the_sink_answers(make_harness: MakeHarness, logs: Path) -> None:
    lines = write_lines(logs / "app.log", 5)
    sink = FakeSink()
    sink.failures = [
        SinkUnavailableError("connection", "refused"),
        SinkUnavailableError("rate_limited", "HTTP 429", retry_after=0.001),
        SinkUnavailableError("timeout", "read timeout"),
    ]
    h = make_harness(sink=sink)
    h.pump(1)
    assert sink.messages() == lines
    assert sink.requests == [5, 5, 5, 5]
    assert h.metric("log_sidecar_retries_total", reason="connection") == 5
    assert h.metric("log_sidecar_sink_up") == 1


def test_a_poison_document_is_dead_lettered_and_the_rest_flows(
    make_harness: MakeHarness, logs: Path, tmp_path: Path
) -> None:
    app = logs / "app.log"
    with app.open("w") as out:
        out.write('{"msg": "ok 1"}\n{"msg": "poison", "bad": 1}\n{"msg": "ok 2"}\n')
    sink = FakeSink()
    sink.item_status = lambda doc: 400 if "bad" in doc else None
    h = make_harness(sink=sink)
    h.pump(1)
    assert sorted(d["msg"] for d in sink.stored.values()) == ["ok 1", "ok 2"]
    (letter,) = [json.loads(line) for line in (tmp_path / "state" / "dead-letter.ndjson").read_text().splitlines()]
    assert letter["reason"] == "rejected"
    assert letter["status"] == 400
    assert letter["error_type"] == "fake_exception"
    assert letter["document"]["msg"] == "poison"
    assert letter["file"] == str(app)
    assert letter["offset"] == len('{"msg": "ok 1"}\n')
    assert letter["id"].endswith(f".{letter['offset']}")
    assert h.metric("log_sidecar_dead_letters_total") == 1
    assert h.metric("log_sidecar_documents_total", result="dead_letter") == 1
    key = h.store.entries()[0].key
    assert h.store.offset(key) == app.stat().st_size, "the checkpoint moves past the dead letter"


def test_a_rejected_request_is_split_to_isolate_the_bad_document(make_harness: MakeHarness, logs: Path) -> None:
    write_lines(logs / "app.log", 8)

    class Splitting(FakeSink):
        def send(self, items: Any) -> Any:
            if any(b"line 5" in item for item in items):
                self.requests.append(len(items))
                raise PayloadRejectedError(400, "parse_exception: bad body")
            return super().send(items)

    sink = Splitting()
    h = make_harness(sink=sink)
    h.pump(1)
    assert sorted(sink.messages()) == sorted(f"line {i}" for i in range(8) if i != 5)
    assert h.metric("log_sidecar_dead_letters_total") == 1


def test_duplicates_count_as_delivered_before(make_harness: MakeHarness, logs: Path) -> None:
    write_lines(logs / "app.log", 3)
    sink = FakeSink()
    first = make_harness(sink=sink)
    first.pump(1)
    first.store.put(first.store.entries()[0].__class__(**{**first.store.entries()[0].__dict__, "offset": 0}))
    first.close()  # a crash before the checkpoint moved: the restart sends everything again
    second = make_harness(sink=sink)
    second.pump(1)
    assert len(sink.stored) == 3
    assert second.metric("log_sidecar_documents_total", result="duplicate") == 3


def test_retry_max_dead_letters_what_keeps_failing(make_harness: MakeHarness, logs: Path, tmp_path: Path) -> None:
    write_lines(logs / "app.log", 2)
    sink = FakeSink()
    sink.item_status = lambda doc: 503
    h = make_harness(sink=sink, retry_max=3)
    h.pump(1)
    assert sink.requests == [2, 2, 2]
    letters = (tmp_path / "state" / "dead-letter.ndjson").read_text().splitlines()
    assert [json.loads(line)["reason"] for line in letters] == ["retries_exhausted"] * 2


def test_an_abort_leaves_the_batch_unacknowledged(make_harness: MakeHarness, logs: Path) -> None:
    write_lines(logs / "app.log", 2)
    sink = FakeSink()
    sink.down = True
    h = make_harness(sink=sink)
    h.reader.step()
    threading.Timer(0.2, h.abort.set).start()
    assert h.shipper.process_next(1.0) is False
    assert h.store.offset(h.store.entries()[0].key) == 0
