"""/api/greeting with an upstream: trace headers forwarded, bounded time, 5xx relayed, clear 502/504 errors."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
from flask.testing import FlaskClient

from demo_app.state import EXTENSION_KEY, AppState
from demo_app.tracing import FORWARDED_HEADERS, request_id, trace_id
from tests.support import free_tcp_port
from tests.support.http_stub import HttpStub, Reply
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
GREETING = b'{"greeting": "from upstream"}'


@pytest.fixture
def upstream(http_stub: HttpStub) -> HttpStub:
    """A tiny upstream app answering a greeting; tests script other answers."""
    http_stub.answer(Reply(body=GREETING))
    return http_stub


@pytest.fixture
def web(make_app: AppFactory, upstream: HttpStub) -> Iterator[FlaskClient]:
    app = make_app(upstream_url=upstream.url + "/", upstream_timeout_seconds=0.5)
    yield app.test_client()
    state = app.extensions[EXTENSION_KEY]
    assert isinstance(state, AppState)
    assert state.upstream is not None
    state.upstream.close()


def test_greeting_includes_upstream_answer_and_forwards_trace_headers(
    web: FlaskClient, upstream: HttpStub, statsd: RecordingStatsd
) -> None:
    response = web.get("/api/greeting", headers={**TRACE_HEADERS, "cookie": "not forwarded"})
    assert response.status_code == 200
    assert response.get_json()["upstream"] == {"greeting": "from upstream"}
    (call,) = upstream.requests
    seen = call.headers
    for name, value in TRACE_HEADERS.items():
        assert seen.get(name) == value, name
    assert "cookie" not in seen
    assert "app.upstream.calls:1|c|#status:200" in statsd.lines
    assert any(line.startswith("app.upstream.duration:") and line.endswith("|ms") for line in statsd.lines)


def test_request_id_is_created_and_forwarded_when_the_caller_sent_none(web: FlaskClient, upstream: HttpStub) -> None:
    response = web.get("/api/greeting")
    assert upstream.requests[0].headers["x-request-id"] == response.headers["X-Request-Id"]


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_upstream_5xx_is_relayed_as_is(
    web: FlaskClient, upstream: HttpStub, statsd: RecordingStatsd, status: int
) -> None:
    """An injected 503 (a mesh fault) or an upstream 504 shows as itself, not as our 502."""
    upstream.answer(Reply(status, b'{"error": "chaos"}'))
    response = web.get("/api/greeting")
    assert response.status_code == status
    body = response.get_json()
    assert body["error"] == "upstream error"
    assert body["upstream_status"] == status
    assert f"answered {status}" in body["detail"]
    assert f"app.upstream.calls:1|c|#status:{status}" in statsd.lines


@pytest.mark.parametrize("status", [400, 401, 404, 429])
def test_upstream_4xx_is_a_502_naming_the_upstream_status(web: FlaskClient, upstream: HttpStub, status: int) -> None:
    """A 4xx means our call was wrong: from the caller's side the gateway is bad."""
    upstream.answer(Reply(status, GREETING))
    response = web.get("/api/greeting")
    assert response.status_code == 502
    body = response.get_json()
    assert body["error"] == "bad gateway"
    assert body["upstream_status"] == status
    assert f"answered {status}" in body["detail"]


def test_upstream_invalid_json_is_a_502(web: FlaskClient, upstream: HttpStub) -> None:
    upstream.answer(Reply(body=b"<html>not json</html>"))
    response = web.get("/api/greeting")
    assert response.status_code == 502
    assert "invalid JSON" in response.get_json()["detail"]
    assert response.get_json()["upstream_status"] == 200


def test_slow_upstream_is_cut_off_with_a_504(web: FlaskClient, upstream: HttpStub, statsd: RecordingStatsd) -> None:
    upstream.answer(Reply(body=GREETING, delay=10))
    response = web.get("/api/greeting")
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
    make_app: AppFactory, upstream: HttpStub, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    upstream.answer(Reply(503, GREETING))
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
    assert upstream.requests[0].headers["authorization"].startswith("Basic ")  # the call itself still authenticates


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
