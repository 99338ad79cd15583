"""The UDP receiver thread: batches packets, beats its heartbeat, survives a failing batch, stops on request."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator

import pytest

from metrics_exporter.statsd.receiver import BEAT_INTERVAL_SECONDS, POLL_INTERVAL_SECONDS, StatsdReceiver
from sidecar_common import MISSED_BEATS
from tests.support import wait_until


class Sink:
    def __init__(self, fail_first: bool = False) -> None:
        self.packets: list[bytes] = []
        self.fail_first = fail_first
        self.calls = 0

    def __call__(self, batch: list[bytes]) -> None:
        self.calls += 1
        if self.fail_first and self.calls == 1:
            raise RuntimeError("a bug in one batch")
        self.packets.extend(batch)


RunReceiver = Callable[[Sink], StatsdReceiver]


@pytest.fixture
def run_receiver() -> Iterator[RunReceiver]:
    started: list[StatsdReceiver] = []

    def start(sink: Sink) -> StatsdReceiver:
        receiver = StatsdReceiver("127.0.0.1", 0, sink, read_buffer_bytes=1 << 20)
        receiver.start()
        started.append(receiver)
        return receiver

    yield start
    for receiver in started:
        receiver.close()


def send(port: int, *packets: bytes) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for packet in packets:
            sock.sendto(packet, ("127.0.0.1", port))


def test_packets_arrive_whole_and_in_order(run_receiver: RunReceiver) -> None:
    sink = Sink()
    receiver = run_receiver(sink)
    big = b"x" * 65000 + b":1|c"  # close to the largest UDP datagram
    send(receiver.port, b"a:1|c", b"b:2|c\nc:3|c", big)
    wait_until(lambda: len(sink.packets) == 3, message="three packets")
    assert sink.packets == [b"a:1|c", b"b:2|c\nc:3|c", big]
    assert receiver.alive()


def test_a_failing_batch_does_not_stop_the_loop(run_receiver: RunReceiver) -> None:
    sink = Sink(fail_first=True)
    receiver = run_receiver(sink)
    send(receiver.port, b"lost:1|c")
    wait_until(lambda: sink.calls == 1, message="first batch")
    send(receiver.port, b"kept:1|c")
    wait_until(lambda: sink.packets == [b"kept:1|c"], message="the loop went on")
    assert receiver.alive()


def test_close_ends_the_thread_and_frees_the_port(run_receiver: RunReceiver) -> None:
    receiver = run_receiver(Sink())
    port = receiver.port
    receiver.close(timeout=10)
    assert not receiver.alive()
    assert not receiver.bound
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", port))
    receiver.close()  # idempotent


def test_the_heartbeat_is_stale_after_three_missed_beats_of_the_loop() -> None:
    receiver = StatsdReceiver("127.0.0.1", 0, Sink())
    assert receiver.heartbeat.max_age == MISSED_BEATS * BEAT_INTERVAL_SECONDS
    assert BEAT_INTERVAL_SECONDS > POLL_INTERVAL_SECONDS, "an idle loop beats once per poll"


def test_a_taken_port_is_an_error_at_bind() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        receiver = StatsdReceiver("127.0.0.1", taken.getsockname()[1], Sink())
        with pytest.raises(OSError):
            receiver.bind()
