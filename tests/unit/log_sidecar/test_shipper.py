"""Retries resend only what failed; permanent failures go to the dead-letter file; the stream goes on."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any

import pytest

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
    # Down: one document probes; a 429 is waited for (a whole resend, never probed around);
    # down again: probe, and the rest follows the answered probe.
    assert sink.requests == [5, 1, 5, 1, 4]
    assert h.metric("log_sidecar_retries_total", reason="connection") == 5
    assert h.metric("log_sidecar_sink_probes_total", result="down") == 0
    assert h.metric("log_sidecar_sink_probes_total", result="up") == 2
    assert h.metric("log_sidecar_documents_total", result="delivered") == 5
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
    # Every document answered with a 503 is a down sink: one document probes for the others,
    # and each answer counts as an attempt of the group it stands for.
    assert sink.requests == [2, 1, 1]
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


def test_a_down_sink_is_probed_with_one_document_and_the_backlog_follows_the_first_answer(
    make_harness: MakeHarness, logs: Path, tmp_path: Path
) -> None:
    lines = write_lines(logs / "app.log", 6)
    sink = FakeSink()
    outage = [
        SinkUnavailableError("unauthorized", "HTTP 401: security_exception"),
        SinkUnavailableError("server_error", "HTTP 502: <html><title>502 Bad Gateway</title>"),
        SinkUnavailableError("connection", "refused"),
    ]
    sink.failures = [*outage, *outage]
    h = make_harness(sink=sink, retry_max=1)  # the strictest: one answer about a document dead-letters it
    h.pump(1)
    assert sink.messages() == lines
    assert sink.requests == [6, 1, 1, 1, 1, 1, 1, 5], "never the whole batch again while down"
    assert h.metric("log_sidecar_sink_probes_total", result="down") == 5
    assert h.metric("log_sidecar_sink_probes_total", result="up") == 1
    assert h.metric("log_sidecar_documents_total", result="delivered") == 6
    assert not (tmp_path / "state" / "dead-letter.ndjson").exists(), "an outage never dead-letters (LOG_RETRY_MAX=1)"


def test_a_probe_that_stored_its_document_settles_it(make_harness: MakeHarness, logs: Path) -> None:
    lines = write_lines(logs / "app.log", 4)
    sink = FakeSink()
    sink.failures = [SinkUnavailableError("connection", "answer lost")]
    h = make_harness(sink=sink)
    h.pump(1)
    assert sink.messages() == lines
    assert sink.requests == [4, 1, 3]
    assert h.metric("log_sidecar_documents_total", result="delivered") == 4
    assert h.metric("log_sidecar_documents_total", result="duplicate") == 0


def test_429s_are_waited_for_and_never_probed_around(make_harness: MakeHarness, logs: Path) -> None:
    lines = write_lines(logs / "app.log", 5)
    sink = FakeSink()
    sink.failures = [SinkUnavailableError("rate_limited", "HTTP 429: es_rejected_execution_exception")] * 3
    h = make_harness(sink=sink)
    h.pump(1)
    assert sink.messages() == lines
    assert sink.requests == [5, 5, 5, 5]
    assert h.metric("log_sidecar_sink_probes_total", result="up") == 0
    assert h.metric("log_sidecar_sink_probes_total", result="down") == 0
    assert h.metric("log_sidecar_sink_up") == 1, "an overloaded sink that answers is up"


def test_every_document_failing_with_a_5xx_is_a_down_sink(make_harness: MakeHarness, logs: Path) -> None:
    lines = write_lines(logs / "app.log", 5)
    answers = iter([503, 503, 503, 503, 503, 503, 503])  # the first request, then two probes

    def shards_unavailable(doc: dict[str, Any]) -> int | None:
        return next(answers, None)

    sink = FakeSink()
    sink.item_status = shards_unavailable
    h = make_harness(sink=sink)
    h.pump(1)
    assert sink.messages() == lines
    assert sink.requests == [5, 1, 1, 1, 4]
    assert h.metric("log_sidecar_sink_probes_total", result="down") == 2
    assert h.metric("log_sidecar_sink_up") == 1


def test_one_log_line_per_sink_state_change_not_per_request(
    make_harness: MakeHarness, logs: Path, caplog: pytest.LogCaptureFixture
) -> None:
    lines = write_lines(logs / "app.log", 3)
    sink = FakeSink()
    sink.failures = [
        *[SinkUnavailableError("unauthorized", "HTTP 401: security_exception: bad credentials")] * 10,
        *[SinkUnavailableError("connection", "refused")] * 10,
    ]
    h = make_harness(sink=sink)
    with caplog.at_level(logging.INFO, logger="log_sidecar.shipper"):
        h.pump(1)
    assert sink.messages() == lines
    records = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "log_sidecar.shipper"]
    assert len(records) == 3, records
    (level, message), (level2, message2), (level3, message3) = records
    assert level == "ERROR"
    assert "refuses our credentials" in message
    assert "ES_USERNAME/ES_PASSWORD or ES_API_KEY" in message
    assert (level2, "unavailable (connection: refused)" in message2) == ("WARNING", True)
    assert (level3, "takes documents again" in message3) == ("INFO", True)
