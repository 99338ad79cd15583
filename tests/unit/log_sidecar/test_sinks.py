"""Each sink against the real thing or its emulator: Bulk API, forward protocol with acks, files."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from log_sidecar.sinks.base import SinkUnavailableError
from log_sidecar.sinks.elasticsearch import ElasticsearchSink
from log_sidecar.sinks.file import FileSink
from log_sidecar.sinks.fluentd import FluentdSink
from log_sidecar.sinks.stdout import StdoutSink
from sink_emulators.elasticsearch import BulkEmulator, Faults
from sink_emulators.fluentd import FluentForwardReceiver
from tests.support import free_tcp_port

SOURCE = b'{"message":"hello","log":{"file":{"path":"/l/app.log"},"offset":0},"@timestamp":"2026-01-02T03:04:05.000Z"}'


@pytest.fixture
def es() -> Iterator[BulkEmulator]:
    with BulkEmulator(api_key="c2VjcmV0OmtleQ==") as emulator:
        yield emulator


def es_sink(es: BulkEmulator, **kwargs: object) -> ElasticsearchSink:
    options: dict[str, object] = {"api_key": "c2VjcmV0OmtleQ=="}
    options.update(kwargs)
    return ElasticsearchSink(es.url, "logs-app-%Y.%m.%d", 5.0, **options)  # type: ignore[arg-type]


def test_elasticsearch_creates_documents_and_a_resend_is_a_duplicate(es: BulkEmulator) -> None:
    sink = es_sink(es)
    items = [sink.encode(f"key.{i}", "2026-01-02T03:04:05.000Z", SOURCE) for i in range(3)]
    first = sink.send(items)
    assert (first.delivered, first.duplicates, first.failures) == (3, 0, [])
    again = sink.send(items)
    assert (again.delivered, again.duplicates) == (0, 3)
    stored = es.documents("logs-app-2026.01.02")
    assert sorted(stored) == ["key.0", "key.1", "key.2"]
    assert stored["key.0"]["message"] == "hello"
    sink.close()


def test_elasticsearch_per_item_failures_and_poison(es: BulkEmulator) -> None:
    sink = es_sink(es)
    es.set_faults(Faults(poison_field="bad"))
    poison = SOURCE[:-1] + b',"bad":1}'
    result = sink.send([sink.encode("a.0", "2026-01-02T03:04:05Z", SOURCE), sink.encode("a.1", "x", poison)])
    assert result.delivered == 1
    (failure,) = result.failures
    assert (failure.index, failure.status, failure.retryable) == (1, 400, False)
    assert failure.error_type == "mapper_parsing_exception"
    described = sink.describe(sink.encode("a.1", "2026-01-02T03:04:05Z", poison))
    assert described["id"] == "a.1"
    assert described["document"]["bad"] == 1


def test_elasticsearch_whole_request_failures_raise_retryable(es: BulkEmulator) -> None:
    sink = es_sink(es)
    item = [sink.encode("b.0", "2026-01-02T03:04:05Z", SOURCE)]
    es.set_faults(Faults(request_status=429, request_status_count=1))
    with pytest.raises(SinkUnavailableError) as caught:
        sink.send(item)
    assert caught.value.reason == "rate_limited"
    es.set_faults(Faults(down=True))
    with pytest.raises(SinkUnavailableError) as caught:
        sink.send(item)
    assert caught.value.reason == "connection"
    es.clear_faults()
    assert sink.send(item).delivered == 1


def test_elasticsearch_wrong_credentials_are_a_retryable_unauthorized(es: BulkEmulator) -> None:
    sink = es_sink(es, api_key="d3Jvbmc6a2V5")
    with pytest.raises(SinkUnavailableError) as caught:
        sink.send([sink.encode("c.0", "2026-01-02T03:04:05Z", SOURCE)])
    assert caught.value.reason == "unauthorized"
    assert "d3Jvbmc6a2V5" not in str(caught.value)


def test_elasticsearch_refused_connection() -> None:
    sink = ElasticsearchSink(f"http://127.0.0.1:{free_tcp_port()}", "logs", 2.0)
    with pytest.raises(SinkUnavailableError) as caught:
        sink.send([sink.encode("d.0", "2026-01-02T03:04:05Z", SOURCE)])
    assert caught.value.reason == "connection"


def test_fluentd_waits_for_the_ack_of_each_chunk() -> None:
    with FluentForwardReceiver() as receiver:
        sink = FluentdSink("127.0.0.1", receiver.port, "app.log", 5.0)
        items = [sink.encode(f"k.{i}", "2026-01-02T03:04:05.250Z", SOURCE) for i in range(3)]
        assert sink.send(items).delivered == 3
        events = receiver.events()
        assert [e.record["_id"] for e in events] == ["k.0", "k.1", "k.2"]
        assert events[0].tag == "app.log"
        assert events[0].event_time
        assert events[0].time == pytest.approx(1767323045.25)
        assert events[0].record["message"] == "hello"
        assert len(receiver.acks()) == 1
        assert sink.describe(items[0])["id"] == "k.0"
        sink.close()


def test_fluentd_without_an_ack_is_a_retry_not_a_success() -> None:
    with FluentForwardReceiver(send_acks=False) as receiver:
        sink = FluentdSink("127.0.0.1", receiver.port, "app.log", 0.3)
        with pytest.raises(SinkUnavailableError) as caught:
            sink.send([sink.encode("k.0", "2026-01-02T03:04:05Z", SOURCE)])
        assert caught.value.reason == "timeout"
        sink.close()


def test_fluentd_reconnects_after_the_receiver_comes_back() -> None:
    receiver = FluentForwardReceiver().start()
    sink = FluentdSink("127.0.0.1", receiver.port, "t", 2.0)
    item = [sink.encode("k.0", "2026-01-02T03:04:05Z", SOURCE)]
    assert sink.send(item).delivered == 1
    receiver.stop()
    with pytest.raises(SinkUnavailableError):
        sink.send(item)
    receiver.start()
    try:
        assert sink.send(item).delivered == 1
    finally:
        receiver.stop()
        sink.close()


def test_file_sink_appends_json_lines_with_ids(tmp_path: Path) -> None:
    sink = FileSink(tmp_path / "out" / "shipped.ndjson")
    assert not (tmp_path / "out").exists(), "nothing is created before open()"
    sink.open()
    sink.send([sink.encode("k.0", "x", SOURCE)])
    sink.send([sink.encode("k.1", "x", SOURCE)])
    lines = [json.loads(line) for line in (tmp_path / "out" / "shipped.ndjson").read_text().splitlines()]
    assert [line["_id"] for line in lines] == ["k.0", "k.1"]
    assert sink.describe(sink.encode("k.2", "x", SOURCE))["id"] == "k.2"
    sink.close()
    sink.close()  # idempotent


def test_stdout_sink_writes_lines(tmp_path: Path) -> None:
    path = tmp_path / "stdout"
    with path.open("wb") as stream:
        sink = StdoutSink(stream)
        sink.send([sink.encode("k.0", "x", SOURCE)])
        sink.close()
    assert json.loads(path.read_text())["_id"] == "k.0"
