"""The app's statsd client: real UDP packets, DogStatsD tags, and never an exception."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator

import pytest

from demo_app.statsd import StatsdClient
from tests.support import free_udp_port


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(10)
    yield sock
    sock.close()


def test_metrics_arrive_as_statsd_lines_with_tags(listener: socket.socket) -> None:
    client = StatsdClient("127.0.0.1", listener.getsockname()[1])
    client.increment("app.orders.created")
    client.increment("app.config.reloads", tags={"result": "ok"})
    client.timing("app.upstream.duration", 12.3456, tags={"status": "200"})
    client.gauge("app.something", 3)
    received = [listener.recv(1024).decode() for _ in range(4)]
    client.close()
    assert received == [
        "app.orders.created:1|c",
        "app.config.reloads:1|c|#result:ok",
        "app.upstream.duration:12.346|ms|#status:200",
        "app.something:3|g",
    ]
    assert client.sent == 4
    assert client.dropped == 0


def test_tag_values_cannot_break_the_line_format(listener: socket.socket) -> None:
    client = StatsdClient("127.0.0.1", listener.getsockname()[1])
    client.increment("x", tags={"status": "a|b,c:d#e"})
    assert listener.recv(1024) == b"x:1|c|#status:a_b_c_d_e"
    client.close()


def test_nobody_listening_is_not_an_error() -> None:
    client = StatsdClient("127.0.0.1", free_udp_port())
    for _ in range(50):
        client.increment("app.orders.created")
    assert client.sent + client.dropped == 50
    client.close()


def test_unresolvable_host_drops_counts_and_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="demo_app.statsd")
    client = StatsdClient("no-such-host.invalid", 9125)
    client.increment("a")
    client.increment("b")
    assert not client.enabled
    assert client.dropped == 2
    assert len([r for r in caplog.records if "dropped" in r.getMessage()]) == 1


def test_empty_host_switches_metrics_off_without_counting_drops() -> None:
    client = StatsdClient("", 9125)
    client.increment("a")
    assert (client.sent, client.dropped, client.enabled) == (0, 0, False)
