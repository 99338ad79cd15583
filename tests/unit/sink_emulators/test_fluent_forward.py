"""The forward-protocol receiver: fluent-logger as a real client, and hand-built messages for every mode."""

from __future__ import annotations

import gzip
import socket
import struct
from collections.abc import Iterator
from typing import Any

import msgpack
import pytest
from fluent import asyncsender, sender

from sink_emulators.fluentd import FluentForwardReceiver, ForwardProtocolError, decode_message
from tests.support import wait_until


@pytest.fixture
def receiver() -> Iterator[FluentForwardReceiver]:
    with FluentForwardReceiver() as running:
        yield running


def _event_time(seconds: int, nanoseconds: int) -> msgpack.ExtType:
    return msgpack.ExtType(0, struct.pack(">II", seconds, nanoseconds))


def _connect(receiver: FluentForwardReceiver) -> socket.socket:
    return socket.create_connection(receiver.address, timeout=10)


def _read_reply(sock: socket.socket) -> Any:
    unpacker = msgpack.Unpacker(raw=False)
    while True:
        data = sock.recv(4096)
        assert data, "the receiver closed the connection instead of acking"
        unpacker.feed(data)
        for reply in unpacker:
            return reply


def test_fluent_logger_events_arrive_with_tag_time_and_record(receiver: FluentForwardReceiver) -> None:
    client = sender.FluentSender("app", host=receiver.host, port=receiver.port, timeout=5)
    assert client.emit("access", {"path": "/", "status": 200})
    assert client.emit_with_time("access", 1_700_000_000, {"path": "/x", "status": 404})
    client.close()

    wait_until(lambda: len(receiver.events()) == 2, timeout=10)
    events = receiver.events()
    assert [event.tag for event in events] == ["app.access", "app.access"]
    assert [event.record for event in events] == [{"path": "/", "status": 200}, {"path": "/x", "status": 404}]
    assert events[1].time == 1_700_000_000
    assert all(event.mode == "message" and not event.event_time for event in events)


def test_fluent_logger_nanosecond_precision_sends_event_time(receiver: FluentForwardReceiver) -> None:
    client = sender.FluentSender("app", host=receiver.host, port=receiver.port, nanosecond_precision=True, timeout=5)
    assert client.emit_with_time("x", 1_700_000_000.25, {"a": 1})
    client.close()

    (event,) = wait_until(lambda: receiver.events(), timeout=10)
    assert event.event_time
    assert event.time_ns == 1_700_000_000_250_000_000


def test_the_async_fluent_logger_is_received(receiver: FluentForwardReceiver) -> None:
    client = asyncsender.FluentSender("async", host=receiver.host, port=receiver.port, timeout=5)
    for n in range(50):
        client.emit("line", {"n": n})
    client.close()

    wait_until(lambda: len(receiver.records("async.line")) == 50, timeout=10)
    assert [record["n"] for record in receiver.records("async.line")] == list(range(50))


def _entries(*records: dict[str, Any]) -> list[list[Any]]:
    return [[_event_time(1_700_000_000, n), record] for n, record in enumerate(records)]


def _packed(*records: dict[str, Any]) -> bytes:
    return b"".join(msgpack.packb(entry) for entry in _entries(*records))


@pytest.mark.parametrize(
    ("message", "mode"),
    [
        (["t", 1_700_000_000, {"n": 0}, {"chunk": "c1"}], "message"),
        (["t", _event_time(1_700_000_000, 0), {"n": 0}, {"chunk": "c1"}], "message"),
        (["t", _entries({"n": 0}, {"n": 1}), {"chunk": "c1"}], "forward"),
        (["t", _packed({"n": 0}, {"n": 1}), {"chunk": "c1", "size": 2}], "packed_forward"),
        (
            [
                "t",
                gzip.compress(_packed({"n": 0})) + gzip.compress(_packed({"n": 1})),
                {"chunk": "c1", "compressed": "gzip"},
            ],
            "compressed_packed_forward",
        ),
    ],
)
def test_every_mode_is_decoded_and_acked(receiver: FluentForwardReceiver, message: list[Any], mode: str) -> None:
    with _connect(receiver) as sock:
        sock.sendall(msgpack.packb(message))
        assert _read_reply(sock) == {"ack": "c1"}

    events = receiver.events("t")
    assert [event.record["n"] for event in events] == list(range(len(events)))
    assert {event.mode for event in events} == {mode}
    assert receiver.acks() == ["c1"]


def test_packed_forward_sent_as_a_str_by_old_clients_is_decoded(receiver: FluentForwardReceiver) -> None:
    payload = _packed({"n": 0}, {"n": 1})
    # A v0 client packs the event stream as msgpack str (raw), not bin.
    message = msgpack.packb(["t", payload, {"chunk": "old"}], use_bin_type=False)

    with _connect(receiver) as sock:
        sock.sendall(message)
        assert _read_reply(sock) == {"ack": "old"}

    assert receiver.records("t") == [{"n": 0}, {"n": 1}]


def test_many_messages_on_one_connection_split_across_packets(receiver: FluentForwardReceiver) -> None:
    stream = b"".join(msgpack.packb(["t", n, {"n": n}]) for n in range(200)) + msgpack.packb(None)
    with _connect(receiver) as sock:
        for start in range(0, len(stream), 7):  # odd slices cut messages in half
            sock.sendall(stream[start : start + 7])

    wait_until(lambda: len(receiver.events()) == 200, timeout=10)
    assert [record["n"] for record in receiver.records()] == list(range(200))
    wait_until(lambda: receiver.heartbeats == 1, timeout=10)


def test_without_a_chunk_option_nothing_is_sent_back(receiver: FluentForwardReceiver) -> None:
    with _connect(receiver) as sock:
        sock.sendall(msgpack.packb(["t", 1, {"a": 1}]) + msgpack.packb(["t", 2, {"a": 2}, {"chunk": "only"}]))
        assert _read_reply(sock) == {"ack": "only"}


def test_acks_can_be_withheld(receiver: FluentForwardReceiver) -> None:
    receiver.send_acks = False
    with _connect(receiver) as sock:
        sock.sendall(msgpack.packb(["t", 1, {"a": 1}, {"chunk": "c"}]))
        wait_until(lambda: receiver.events(), timeout=10)
        sock.settimeout(0.2)
        with pytest.raises(TimeoutError):
            sock.recv(100)

    assert receiver.acks() == []


@pytest.mark.parametrize(
    "message",
    [
        [1, 2, 3],
        ["t"],
        ["t", 1, "not a map"],
        ["t", [[1]]],
        ["t", b"\xc1garbage"],
        ["t", gzip.compress(b"x"), {"compressed": "zstd"}],
        ["t", b"not gzip", {"compressed": "gzip"}],
        ["t", 1, {"a": 1}, "not a map"],
    ],
)
def test_a_protocol_error_is_recorded_and_closes_the_connection(
    receiver: FluentForwardReceiver, message: list[Any]
) -> None:
    with _connect(receiver) as sock:
        sock.sendall(msgpack.packb(message))
        assert sock.recv(100) == b""  # closed by the receiver

    assert len(receiver.errors()) == 1
    assert receiver.events() == []


def test_stop_keeps_events_and_start_rebinds_the_same_port(receiver: FluentForwardReceiver) -> None:
    client = sender.FluentSender("app", host=receiver.host, port=receiver.port, timeout=2)
    assert client.emit("before", {"n": 1})
    wait_until(lambda: receiver.events(), timeout=10)
    port = receiver.port

    receiver.stop()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2)
    receiver.start()

    assert receiver.port == port
    client.close()
    client = sender.FluentSender("app", host=receiver.host, port=receiver.port, timeout=2)
    assert client.emit("after", {"n": 2})
    client.close()
    wait_until(lambda: receiver.records("app.after") == [{"n": 2}], timeout=10)
    assert receiver.records("app.before") == [{"n": 1}]


def test_decode_message_reports_why() -> None:
    with pytest.raises(ForwardProtocolError, match="the tag must be a string"):
        decode_message([1, 2, {}])
    assert decode_message(None) == ([], {})
