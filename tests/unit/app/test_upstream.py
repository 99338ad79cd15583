"""/api/greeting with an upstream: trace headers forwarded, bounded time, 5xx relayed, clear 502/504 errors."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from flask.testing import FlaskClient

from demo_app.state import EXTENSION_KEY, AppState
from demo_app.tracing import FORWARDED_HEADERS, request_id, trace_id
from tests.support import free_tcp_port
from tests.unit.app.doubles import AppFactory, RecordingStatsd

TRACE_HEADERS = {
    "x-request-id": "req-123",
    "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    "tracestate": "vendor=value",
    "b3": "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90",
    "x-b3-traceid": "80f198ee56343ba864fe8b2a57d3eff7",
    "x-b3-spanid": "e457b5a2e4d86bd1",
    "x-b3-parentspanid": "05e3ac9a4f6e3b90",
    "x-b3-sampled": "1",
    "x-b3-flags": "0",
}


@dataclass
class Upstream:
    """A tiny upstream app: records headers, answers as told, can hang until released."""

    status: int = 200
    body: bytes = b'{"greeting": "from upstream"}'
    hang: threading.Event | None = None
    seen: list[dict[str, str]] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    state = Upstream()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.seen.append({key.lower(): value for key, value in self.headers.items()})
            if state.hang is not None:
                state.hang.wait(10)
            try:
                self.send_response(state.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(state.body)))
                self.end_headers()
                self.wfile.write(state.body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the app gave up waiting (the timeout test): expected

        def log_message(self, format: str, *args: Any) -> None:
            pass

    state.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.server.daemon_threads = True
    thread = threading.Thread(target=state.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield state
    if state.hang is not None:
        state.hang.set()
    state.server.shutdown()
    state.server.server_close()


@pytest.fixture
def web(make_app: AppFactory, upstream: Upstream) -> Iterator[FlaskClient]:
    app = make_app(upstream_url=upstream.url + "/", upstream_timeout_seconds=0.5)
    yield app.test_client()
    state = app.extensions[EXTENSION_KEY]
    assert isinstance(state, AppState)
    assert state.upstream is not None
    state.upstream.close()


def test_greeting_includes_upstream_answer_and_forwards_trace_headers(
    web: FlaskClient, upstream: Upstream, statsd: RecordingStatsd
) -> None:
    response = web.get("/api/greeting", headers={**TRACE_HEADERS, "cookie": "not forwarded"})
    assert response.status_code == 200
    assert response.get_json()["upstream"] == {"greeting": "from upstream"}
    (seen,) = upstream.seen
    for name, value in TRACE_HEADERS.items():
        assert seen.get(name) == value, name
    assert "cookie" not in seen
    assert "app.upstream.calls:1|c|#status:200" in statsd.lines
    assert any(line.startswith("app.upstream.duration:") and line.endswith("|ms") for line in statsd.lines)


def test_request_id_is_created_and_forwarded_when_the_caller_sent_none(web: FlaskClient, upstream: Upstream) -> None:
    response = web.get("/api/greeting")
    assert upstream.seen[0]["x-request-id"] == response.headers["X-Request-Id"]


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_upstream_5xx_is_relayed_as_is(
    web: FlaskClient, upstream: Upstream, statsd: RecordingStatsd, status: int
) -> None:
    """An injected 503 (a mesh fault) or an upstream 504 shows as itself, not as our 502."""
    upstream.status = status
    upstream.body = b'{"error": "chaos"}'
    response = web.get("/api/greeting")
    assert response.status_code == status
    body = response.get_json()
    assert body["error"] == "upstream error"
    assert body["upstream_status"] == status
    assert f"answered {status}" in body["detail"]
    assert f"app.upstream.calls:1|c|#status:{status}" in statsd.lines


@pytest.mark.parametrize("status", [400, 401, 404, 429])
def test_upstream_4xx_is_a_502_naming_the_upstream_status(web: FlaskClient, upstream: Upstream, status: int) -> None:
    """A 4xx means our call was wrong: from the caller's side the gateway is bad."""
    upstream.status = status
    response = web.get("/api/greeting")
    assert response.status_code == 502
    body = response.get_json()
    assert body["error"] == "bad gateway"
    assert body["upstream_status"] == status
    assert f"answered {status}" in body["detail"]


def test_upstream_invalid_json_is_a_502(web: FlaskClient, upstream: Upstream) -> None:
    upstream.body = b"<html>not json</html>"
    response = web.get("/api/greeting")
    assert response.status_code == 502
    assert "invalid JSON" in response.get_json()["detail"]
    assert response.get_json()["upstream_status"] == 200


def test_slow_upstream_is_cut_off_with_a_504(web: FlaskClient, upstream: Upstream, statsd: RecordingStatsd) -> None:
    upstream.hang = threading.Event()
    response = web.get("/api/greeting")
    upstream.hang.set()
    assert response.status_code == 504
    assert response.get_json()["error"] == "gateway timeout"
    assert "upstream_status" not in response.get_json()  # it never answered
    assert "within 0.5 s" in response.get_json()["detail"]
    assert "app.upstream.calls:1|c|#status:timeout" in statsd.lines


def test_unreachable_upstream_is_a_502(make_app: AppFactory, statsd: RecordingStatsd) -> None:
    app = make_app(upstream_url=f"http://127.0.0.1:{free_tcp_port()}")
    response = app.test_client().get("/api/greeting")
    assert response.status_code == 502
    assert "unreachable" in response.get_json()["detail"]
    assert "upstream_status" not in response.get_json()
    assert "app.upstream.calls:1|c|#status:error" in statsd.lines
    state = app.extensions[EXTENSION_KEY]
    assert isinstance(state, AppState)
    assert state.upstream is not None
    state.upstream.close()


def test_credentials_in_the_upstream_url_never_reach_answers_or_logs(
    make_app: AppFactory, upstream: Upstream, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    upstream.status = 503
    app = make_app(upstream_url=upstream.url.replace("http://", "http://demo:s3cret@"), upstream_timeout_seconds=5)
    response = app.test_client().get("/api/greeting")
    state = app.extensions[EXTENSION_KEY]
    assert isinstance(state, AppState)
    assert state.upstream is not None
    state.upstream.close()
    assert response.status_code == 503
    assert response.get_json()["upstream"] == upstream.url + "/api/greeting"
    assert "s3cret" not in response.get_data(as_text=True)
    assert "s3cret" not in caplog.text
    assert upstream.seen[0]["authorization"].startswith("Basic ")  # the call itself still authenticates


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"traceparent": TRACE_HEADERS["traceparent"]}, "4bf92f3577b34da6a3ce929d0e0e4736"),
        ({"x-b3-traceid": "80f198ee56343ba864fe8b2a57d3eff7"}, "80f198ee56343ba864fe8b2a57d3eff7"),
        ({"b3": TRACE_HEADERS["b3"]}, "80f198ee56343ba864fe8b2a57d3eff7"),
        ({"traceparent": "00-" + "0" * 32 + "-00f067aa0ba902b7-01"}, None),
        ({"traceparent": "garbage", "b3": "0"}, None),
        ({}, None),
    ],
)
def test_trace_id_comes_from_w3c_or_b3_headers(headers: dict[str, str], expected: str | None) -> None:
    assert trace_id(headers) == expected


@pytest.mark.parametrize("given", ["", "x" * 129, "has space", "tab\there", "ünicode"])
def test_insane_request_ids_are_replaced(given: str) -> None:
    assert request_id({"x-request-id": given}) != given


def test_forwarded_header_list_is_what_istio_needs() -> None:
    assert set(FORWARDED_HEADERS) == set(TRACE_HEADERS)
    assert json.dumps(FORWARDED_HEADERS)
