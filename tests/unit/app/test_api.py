"""The demo API through Flask's test client: answers, errors, chaos and request logs."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from sidecar_common import content_version, read_config_files
from tests.unit.app.doubles import AppFactory, FakeSleep, RecordingStatsd, publish

ORDER = {"item": "espresso", "quantity": 2}


def test_greeting_combines_config_greeting_and_db_host(client: FlaskClient, config_dir: Path) -> None:
    response = client.get("/api/greeting")
    assert response.status_code == 200
    body = response.get_json()
    assert body["greeting"] == "Hello from the tests"
    assert body["db_host"] == "db.test"
    assert body["service"] == "demo-app"
    assert body["config_version"] == content_version(read_config_files(config_dir))
    assert body["worker"] == os.getpid()
    assert "upstream" not in body


def test_every_response_names_request_id_worker_and_config_version(client: FlaskClient, config_dir: Path) -> None:
    given = client.get("/livez", headers={"x-request-id": "req-42"})
    assert given.headers["X-Request-Id"] == "req-42"
    assert given.headers["X-Worker-Pid"] == str(os.getpid())
    assert given.headers["X-Config-Version"] == content_version(read_config_files(config_dir))
    generated = client.get("/api/nothing-here")
    assert len(generated.headers["X-Request-Id"]) == 36  # a fresh uuid4 when the caller sent none


def test_order_with_valid_body_is_created_and_counted(client: FlaskClient, statsd: RecordingStatsd) -> None:
    response = client.post("/api/orders", json={**ORDER, "note": "no sugar"})
    assert response.status_code == 201
    body = response.get_json()
    assert len(body["id"]) == 36
    assert body["item"] == "espresso"
    assert body["quantity"] == 2
    assert body["note"] == "no sugar"
    assert "app.orders.created:1|c" in statsd.lines
    second = client.post("/api/orders", json=ORDER).get_json()
    assert second["id"] != body["id"]


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"", "not valid JSON"),
        (b"{", "not valid JSON"),
        (b"\xff\xfe\xfa", "not"),
        (b"[1, 2]", "JSON object"),
        (b'{"quantity": 1}', "item is required"),
        (b'{"item": "  ", "quantity": 1}', "item is required"),
        (b'{"item": "x", "quantity": "2"}', "quantity is required and must be an integer"),
        (b'{"item": "x", "quantity": true}', "must be an integer"),
        (b'{"item": "x", "quantity": 0}', "between 1 and 1000"),
        (b'{"item": "x", "quantity": 1001}', "between 1 and 1000"),
        (b'{"item": "x", "quantity": NaN}', "NaN is not allowed"),
        (b'{"item": "x", "quantity": 1, "price": 3}', "unknown fields: price"),
        (b'{"item": "x", "quantity": 1, "note": 5}', "note must be a string"),
        (b'{"item": "' + b"x" * 101 + b'", "quantity": 1}', "at most 100"),
        (b"[" * 100_000 + b"]" * 100_000, "JSON"),
    ],
)
def test_bad_order_body_is_400_saying_what_is_wrong(client: FlaskClient, body: bytes, detail: str) -> None:
    response = client.post("/api/orders", data=body, content_type="application/json")
    if len(body) > 64 * 1024:
        assert response.status_code == 413
        return
    assert response.status_code == 400
    answer = response.get_json()
    assert answer["error"] == "invalid order"
    assert detail in answer["detail"]


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_order_that_is_not_json_is_415(client: FlaskClient, content_type: str | None) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = client.post("/api/orders", data=json.dumps(ORDER), headers=headers)
    assert response.status_code == 415
    assert response.get_json()["error"] == "unsupported media type"


def test_order_with_json_suffix_media_type_is_accepted(client: FlaskClient) -> None:
    response = client.post("/api/orders", data=json.dumps(ORDER), content_type="application/vnd.demo+json")
    assert response.status_code == 201


def test_order_body_over_the_limit_is_413(client: FlaskClient) -> None:
    body = json.dumps({**ORDER, "note": "x" * 70_000})
    response = client.post("/api/orders", data=body, content_type="application/json")
    assert response.status_code == 413
    assert set(response.get_json()) == {"error", "detail"}


def test_work_sleeps_the_asked_time_and_answers_the_asked_status(client: FlaskClient, fake_sleep: FakeSleep) -> None:
    response = client.get("/api/work?ms=250&status=201")
    assert response.status_code == 201
    assert response.get_json()["ms"] == 250
    assert fake_sleep.calls == [0.25]
    failing = client.get("/api/work?status=503")
    assert failing.status_code == 503
    assert failing.get_json() == {
        "error": "service unavailable",
        "detail": "requested by /api/work?status=503",
        "requested": True,
    }
    assert client.get("/api/work").status_code == 200
    empty = client.get("/api/work?status=204")
    assert empty.status_code == 204
    assert empty.data == b""


@pytest.mark.parametrize(
    "query",
    [
        "ms=-1",
        "ms=10001",
        "ms=abc",
        "ms=1.5",
        "ms=%C3%A9",
        "ms=--5",
        "ms=-",
        "ms=%EF%BC%95",  # a full-width digit: str.isdigit() says yes, but it is no ASCII integer
        "status=99",
        "status=600",
        "status=299",
        "status=x",
        "status=--200",
    ],
)
def test_work_with_bad_parameters_is_400(client: FlaskClient, fake_sleep: FakeSleep, query: str) -> None:
    response = client.get(f"/api/work?{query}")
    assert response.status_code == 400
    assert response.get_json()["error"] == "bad request"
    assert fake_sleep.calls == []


def test_config_shows_effective_values_version_and_redacts_secrets(client: FlaskClient, config_dir: Path) -> None:
    body = client.get("/api/config").get_json()
    assert body["version"] == content_version(read_config_files(config_dir))
    assert body["loaded_at"].endswith("Z")
    assert body["config"]["greeting"] == "Hello from the tests"
    assert body["config"]["chaos"] == {"latency_ms": 0, "error_rate": 0.0}
    assert body["config"]["features"] == {"beta": True}
    assert body["config"]["database"] == {"name": "orders", "password": "[REDACTED]"}
    assert body["documents"] == {"features.json": {"banner": {"enabled": True}}}
    assert "not-a-real-password" not in json.dumps(body)


def test_config_defaults_fill_in_what_app_yaml_leaves_out(make_app: AppFactory, config_dir: Path) -> None:
    publish(config_dir, {"app.yaml": "greeting: hi\n", "notes.txt": "free text"})
    body = make_app().test_client().get("/api/config").get_json()
    assert body["config"] == {"greeting": "hi", "chaos": {"latency_ms": 0, "error_rate": 0.0}, "features": {}}
    assert body["unparsed_files"] == ["notes.txt"]


def test_chaos_latency_delays_api_requests_only(make_app: AppFactory, config_dir: Path, fake_sleep: FakeSleep) -> None:
    publish(config_dir, {"app.yaml": "greeting: slow\nchaos:\n  latency_ms: 300\n"})
    client = make_app().test_client()
    assert client.get("/livez").status_code == 200
    assert client.get("/stats").status_code == 200
    assert fake_sleep.calls == []
    assert client.get("/api/greeting").status_code == 200
    assert fake_sleep.calls == [0.3]


def test_chaos_error_rate_fails_that_share_of_api_requests(make_app: AppFactory, config_dir: Path) -> None:
    publish(config_dir, {"app.yaml": "greeting: flaky\nchaos:\n  error_rate: 0.5\n"})
    draws = iter([0.4, 0.6])
    client = make_app(random_fraction=lambda: next(draws)).test_client()
    failed = client.get("/api/greeting")
    assert failed.status_code == 503
    assert failed.get_json()["error"] == "chaos"
    assert "chaos.error_rate=0.5" in failed.get_json()["detail"]
    assert client.get("/api/greeting").status_code == 200
    assert client.get("/readyz").status_code == 200  # not /api: never failed by chaos


def test_unknown_path_and_wrong_method_are_json_errors(client: FlaskClient) -> None:
    missing = client.get("/nope")
    assert missing.status_code == 404
    assert missing.get_json()["error"] == "not found"
    wrong = client.delete("/api/orders")
    assert wrong.status_code == 405
    assert wrong.get_json()["error"] == "method not allowed"
    assert "POST" in wrong.headers["Allow"]


def test_each_request_is_logged_with_ecs_fields(client: FlaskClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="demo_app.requests")
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    client.get("/api/work?status=418", headers={"x-request-id": "abc-1", "traceparent": traceparent})
    records = [record for record in caplog.records if record.name == "demo_app.requests"]
    assert len(records) == 1
    fields = records[0].__dict__
    assert records[0].getMessage() == "GET /api/work 418"
    assert fields["http.request.method"] == "GET"
    assert fields["url.path"] == "/api/work"
    assert fields["http.response.status_code"] == 418
    assert fields["http.request.id"] == "abc-1"
    assert fields["trace.id"] == "0af7651916cd43dd8448eb211c80319c"
    assert isinstance(fields["event.duration"], int)
    assert fields["event.duration"] > 0


def test_a_bug_is_a_json_500_that_hides_internals_and_is_logged_with_its_stack(
    make_app: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app()

    @app.get("/bug")
    def bug() -> str:
        raise KeyError("internal detail")

    caplog.set_level(logging.ERROR, logger="demo_app.http_errors")
    response = app.test_client().get("/bug")
    assert response.status_code == 500
    assert response.get_json() == {"error": "internal error", "detail": "unexpected KeyError; see the app's log"}
    (logged,) = [record for record in caplog.records if record.__dict__.get("event.action") == "unhandled-error"]
    assert logged.exc_info is not None
    assert logged.__dict__["url.path"] == "/bug"
