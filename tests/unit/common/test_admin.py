from __future__ import annotations

import gzip
import json
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry, Counter

from sidecar_common.admin import AdminServer, Endpoint, Request, Response, json_response
from sidecar_common.heartbeat import Heartbeat
from sidecar_common.lifecycle import StartupError
from tests.support import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def server(clock: FakeClock) -> Iterator[tuple[AdminServer, Heartbeat, list[bool]]]:
    registry = CollectorRegistry()
    Counter("demo_events", "demo", registry=registry).inc(3)
    for i in range(100):
        Counter(f"demo_padding_{i}", "padding so the body is worth compressing", registry=registry)
    hb = Heartbeat("worker", interval=5 / 3, clock=clock)
    ready = [False]
    srv = AdminServer(Endpoint("127.0.0.1", 0), registry, [hb], ready=lambda: ready[0])
    srv.route("POST", "/echo", lambda r: json_response({"got": r.body.decode()}))

    def boom(_: Request) -> Response:
        raise RuntimeError("handler bug")

    srv.route("GET", "/boom", boom)
    srv.start()
    yield srv, hb, ready
    srv.close()


def get(
    port: int, path: str, headers: dict[str, str] | None = None, data: bytes | None = None
) -> tuple[int, bytes, dict[str, str]]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, resp.read(), dict(resp.headers)
    except urllib.error.HTTPError as err:
        return err.code, err.read(), dict(err.headers)


def test_livez_follows_the_heartbeat(server: tuple[AdminServer, Heartbeat, list[bool]], clock: FakeClock) -> None:
    srv, hb, _ = server
    assert get(srv.port, "/livez")[0] == 503  # no beat yet
    hb.beat()
    assert get(srv.port, "/livez")[0] == 200
    clock.advance(6)
    status, body, _ = get(srv.port, "/livez")
    assert status == 503
    assert "worker" in json.loads(body)["stale_heartbeats"]


def test_readyz_follows_the_ready_callable(server: tuple[AdminServer, Heartbeat, list[bool]]) -> None:
    srv, _, ready = server
    assert get(srv.port, "/readyz")[0] == 503
    ready[0] = True
    assert get(srv.port, "/readyz")[0] == 200


def test_metrics_negotiates_openmetrics_and_gzip(server: tuple[AdminServer, Heartbeat, list[bool]]) -> None:
    srv, _, _ = server
    status, body, headers = get(srv.port, "/metrics")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain")
    assert b"demo_events_total 3.0" in body
    status, body, headers = get(srv.port, "/metrics", {"Accept": "application/openmetrics-text; version=1.0.0"})
    assert headers["Content-Type"].startswith("application/openmetrics-text")
    assert body.rstrip().endswith(b"# EOF")
    status, body, headers = get(srv.port, "/metrics", {"Accept-Encoding": "gzip"})
    assert headers.get("Content-Encoding") == "gzip"
    assert b"demo_events_total" in gzip.decompress(body)


def test_unknown_path_and_method_get_json_errors(server: tuple[AdminServer, Heartbeat, list[bool]]) -> None:
    srv, _, _ = server
    status, body, _ = get(srv.port, "/nope")
    assert status == 404
    assert json.loads(body)["error"] == "not found"
    status, body, _ = get(srv.port, "/echo")
    assert status == 405
    status, body, _ = get(srv.port, "/echo", data=b"hi")
    assert (status, json.loads(body)) == (200, {"got": "hi"})


def test_failing_handler_is_a_500_and_the_server_lives(server: tuple[AdminServer, Heartbeat, list[bool]]) -> None:
    srv, hb, _ = server
    assert get(srv.port, "/boom")[0] == 500
    hb.beat()
    assert get(srv.port, "/livez")[0] == 200


def test_control_routes_answer_only_on_the_loopback_control_port() -> None:
    srv = AdminServer(Endpoint("127.0.0.1", 0), CollectorRegistry(), control=Endpoint.control(0))
    srv.route("POST", "/-/reload", lambda r: json_response({"reloaded": True}), control=True)
    srv.start()
    try:
        assert srv.control_port is not None
        assert srv.control_endpoint is not None
        assert srv.control_endpoint.host == "127.0.0.1"
        status, body, _ = get(srv.control_port, "/-/reload", data=b"")
        assert (status, json.loads(body)) == (200, {"reloaded": True})
        status, body, _ = get(srv.port, "/-/reload", data=b"")
        assert (status, json.loads(body)["error"]) == (404, "not found")
        # ...and the control port serves nothing else: probes stay on the admin port.
        assert get(srv.control_port, "/livez")[0] == 404
        assert get(srv.port, "/livez")[0] == 200
    finally:
        srv.close()
    srv.close()  # idempotent


def test_a_control_route_needs_a_control_endpoint() -> None:
    srv = AdminServer(Endpoint("127.0.0.1", 0), CollectorRegistry())
    with pytest.raises(ValueError, match="changes state"):
        srv.route("POST", "/-/reload", lambda r: json_response({}), control=True)


def test_nothing_binds_before_start_and_a_taken_port_names_its_variable() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        srv = AdminServer(Endpoint("127.0.0.1", 0), CollectorRegistry(), control=Endpoint.control(taken))
        with pytest.raises(StartupError) as caught:
            srv.start()
    assert caught.value.variable == "CONTROL_PORT"
    assert f"127.0.0.1:{taken}" in caught.value.reason
    assert srv._listeners == []  # the admin port bound first was released again
