"""POST /-/reload, /readyz and /stats, and how a reload in one worker reaches the others."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from demo_app import ConfigSnapshot, SharedDir, load_snapshot
from demo_app.live_config import LiveConfig
from sidecar_common import content_version, read_config_files
from tests.unit.app.doubles import AppFactory, RecordingStatsd, arriving_on, control_client, publish


def version_of(directory: Path) -> str:
    return content_version(read_config_files(directory))


def test_reload_serves_the_new_version_and_reports_it(make_app: AppFactory, config_dir: Path) -> None:
    client = control_client(make_app())
    old = version_of(config_dir)
    publish(config_dir, {"app.yaml": "greeting: Bonjour\n"})
    new = version_of(config_dir)
    response = client.post("/-/reload", json={"version": new, "changed": ["app.yaml"]})
    assert response.status_code == 200
    body = response.get_json()
    assert body["version"] == new
    assert body["previous"] == old
    assert body["changed"] is True
    assert body["loaded_at"].endswith("Z")
    assert client.get("/api/greeting").get_json()["greeting"] == "Bonjour"
    again = client.post("/-/reload").get_json()
    assert again["changed"] is False
    assert again["previous"] == new
    assert again["loaded_at"] == body["loaded_at"]  # the same snapshot stays in service


@pytest.mark.parametrize(
    ("files", "detail"),
    [
        ({"app.yaml": "greeting: [unclosed\n"}, "app.yaml: line 2: "),
        ({"app.yaml": "greeting: ok\nchaos:\n  error_rate: 2\n"}, "app.yaml: line 3: chaos.error_rate must be"),
        ({"app.yaml": "greeting: ok\nchaos:\n  latency_ms: fast\n"}, "app.yaml: line 3: chaos.latency_ms must be"),
        ({"app.yaml": "greeting: 42\n"}, "app.yaml: line 1: greeting must be a non-empty string"),
        ({"app.yaml": "- just\n- a list\n"}, "app.yaml: line 1: expected a mapping"),
        ({"app.yaml": ""}, "app.yaml: is empty"),
        ({"app.yaml": "greeting: ok\n", "extra.json": '{\n  "a": 1,\n}'}, "extra.json: line 3: "),
        ({"app.yaml": "greeting: ok\n", "other.yaml": "a: 1\n---\nb: 2\n"}, "other.yaml: line 2: "),
        ({"features.json": "{}"}, "app.yaml: not found"),
        ({"app.yaml": "greeting: ok\nlaunch: 2024-02-30\n"}, "app.yaml: invalid value: day is out of range"),
    ],
)
def test_reload_refuses_a_bad_set_and_keeps_the_previous_one(
    make_app: AppFactory, config_dir: Path, statsd: RecordingStatsd, files: dict[str, str], detail: str
) -> None:
    client = control_client(make_app())
    old = version_of(config_dir)
    publish(config_dir, files)
    response = client.post("/-/reload")
    assert response.status_code == 422
    body = response.get_json()
    assert body["error"] == "invalid config"
    assert body["detail"].startswith(detail), body["detail"]
    assert body["version"] == old
    greeting = client.get("/api/greeting")
    assert greeting.get_json()["greeting"] == "Hello from the tests"
    assert greeting.headers["X-Config-Version"] == old
    assert "app.config.reloads:1|c|#result:refused" in statsd.lines
    assert client.get("/stats").get_json()["config"]["reloads_total"] == {"ok": 0, "refused": 1}


@pytest.mark.parametrize("body", [b"not json", b"[1]", b'{"version": 3}', b'{"changed": "app.yaml"}'])
def test_reload_with_a_malformed_body_is_400(make_app: AppFactory, body: bytes) -> None:
    response = control_client(make_app()).post("/-/reload", data=body, content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["error"] == "bad request"


@pytest.mark.parametrize("method", ["POST", "GET", "PUT"])
def test_the_public_port_answers_a_reload_like_an_unknown_path(
    make_app: AppFactory, config_dir: Path, method: str
) -> None:
    app = make_app()
    before = version_of(config_dir)
    publish(config_dir, {"app.yaml": "greeting: not through the public port\n"})
    # Any connection but the control listener's: none under werkzeug, the API port even from localhost.
    for client in (app.test_client(), arriving_on(app.test_client(), ("127.0.0.1", 8080))):
        refused = client.open("/-/reload", method=method, headers={"Host": "localhost:8079"})
        unknown = client.open("/no-such-path", method=method)
        assert (refused.status_code, refused.get_json()) == (404, unknown.get_json())
        assert client.open("/-/anything-else", method=method).status_code == 404
    assert control_client(app).get("/api/greeting").headers["X-Config-Version"] == before
    assert control_client(app).post("/-/reload").status_code == 200


def test_a_reload_in_one_worker_reaches_the_others_on_their_next_request(
    make_app: AppFactory, config_dir: Path
) -> None:
    first = control_client(make_app())
    second = make_app().test_client()
    assert second.get("/api/greeting").get_json()["greeting"] == "Hello from the tests"
    publish(config_dir, {"app.yaml": "greeting: Hola\n"})
    assert first.post("/-/reload").status_code == 200
    answer = second.get("/api/greeting")
    assert answer.get_json()["greeting"] == "Hola"
    assert answer.headers["X-Config-Version"] == version_of(config_dir)
    # A refused reload accepts nothing: the other worker keeps serving the good version.
    good = version_of(config_dir)
    publish(config_dir, {"app.yaml": "greeting: {broken\n"})
    assert first.post("/-/reload").status_code == 422
    assert second.get("/api/greeting").headers["X-Config-Version"] == good


def test_other_workers_serve_the_reloaded_set_even_if_the_directory_changed_since(
    make_app: AppFactory, config_dir: Path
) -> None:
    first = control_client(make_app())
    second = make_app().test_client()
    publish(config_dir, {"app.yaml": "greeting: reloaded\n"})
    version = first.post("/-/reload").get_json()["version"]
    publish(config_dir, {"app.yaml": "greeting: [broken, not reloaded\n"})
    answer = second.get("/api/greeting")
    assert answer.headers["X-Config-Version"] == version
    assert answer.get_json()["greeting"] == "reloaded"
    # A worker started later (gunicorn replaced one) serves the same set, not the broken directory.
    late = make_app().test_client().get("/api/greeting")
    assert late.headers["X-Config-Version"] == version
    # Nor does a valid directory that no reload accepted yet reach any worker.
    publish(config_dir, {"app.yaml": "greeting: published, not reloaded\n"})
    assert second.get("/api/greeting").headers["X-Config-Version"] == version


def test_readyz_waits_for_the_first_config_then_turns_ready(make_app: AppFactory, tmp_path: Path) -> None:
    empty = tmp_path / "not-yet"
    client = make_app(config_dir=empty).test_client()
    waiting = client.get("/readyz")
    assert waiting.status_code == 503
    assert waiting.get_json()["error"] == "not ready"
    assert "does not exist" in waiting.get_json()["detail"]
    assert client.get("/api/greeting").status_code == 503
    assert client.get("/livez").status_code == 200
    publish(empty, {"app.yaml": "greeting: finally\n"})
    assert client.get("/readyz").status_code == 200
    assert client.get("/api/greeting").get_json()["greeting"] == "finally"


def test_a_set_that_failed_is_not_read_again_until_it_changes(
    tmp_path: Path, shared: SharedDir, statsd: RecordingStatsd, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = tmp_path / "config"
    publish(directory, {"app.yaml": "greeting: [broken\n"})
    live = LiveConfig(directory, shared, statsd)
    loads: list[Path] = []

    def counted_load(path: Path) -> ConfigSnapshot:
        loads.append(path)
        return load_snapshot(path)

    monkeypatch.setattr("demo_app.live_config.load_snapshot", counted_load)
    for _ in range(5):
        assert live.current() is None
    assert len(loads) == 1
    publish(directory, {"app.yaml": "greeting: fixed\n"})
    fixed = live.current()
    assert fixed is not None
    assert fixed.app.greeting == "fixed"
    assert len(loads) == 2


def test_a_worker_waiting_for_config_serves_another_workers_reload_at_once(
    tmp_path: Path, shared: SharedDir, statsd: RecordingStatsd
) -> None:
    directory = tmp_path / "not-yet"
    waiting = LiveConfig(directory, shared, statsd)
    reloading = LiveConfig(directory, shared, statsd)
    assert waiting.current() is None
    publish(directory, {"app.yaml": "greeting: first\n"})
    version = reloading.reload().snapshot.version
    served = waiting.current()
    assert served is not None
    assert served.version == version


def test_a_worker_starting_on_an_invalid_config_is_not_ready_instead_of_crashing(
    make_app: AppFactory, tmp_path: Path
) -> None:
    directory = tmp_path / "invalid-at-start"
    publish(directory, {"app.yaml": "greeting: hi\nlaunch: 2024-02-30\n"})
    client = control_client(make_app(config_dir=directory))
    waiting = client.get("/readyz")
    assert waiting.status_code == 503
    assert "app.yaml: invalid value: day is out of range" in waiting.get_json()["detail"]
    assert client.get("/api/greeting").status_code == 503
    publish(directory, {"app.yaml": "greeting: fixed\n"})
    assert client.post("/-/reload").status_code == 200
    assert client.get("/api/greeting").get_json()["greeting"] == "fixed"


def test_stats_reports_uptime_config_reloads_and_workers(make_app: AppFactory, config_dir: Path) -> None:
    client = control_client(make_app())
    publish(config_dir, {"app.yaml": "greeting: stats\n"})
    assert client.post("/-/reload").status_code == 200
    publish(config_dir, {"app.yaml": "greeting: [\n"})
    assert client.post("/-/reload").status_code == 422
    body = client.get("/stats").get_json()
    assert body["service"] == "demo-app"
    assert body["uptime_seconds"] >= 0
    assert body["config"]["reloads_total"] == {"ok": 1, "refused": 1}
    assert body["config"]["version"] == client.get("/api/greeting").headers["X-Config-Version"]
    assert body["config"]["loaded_at"].endswith("Z")
    assert body["requests_in_flight"] == 1  # this very request
    assert body["workers"] == {str(os.getpid()): {"requests_in_flight": 1, "config_version": body["config"]["version"]}}


def test_stats_speaks_for_every_worker_and_forgets_one_that_exited(shared: SharedDir) -> None:
    shared.write_worker(101, {"requests_in_flight": 2, "config_version": "a"})
    shared.write_worker(102, {"requests_in_flight": 0, "config_version": "b"})
    with shared.reload_lock():
        shared.count_reload("ok")
        shared.count_reload("ok")
        shared.count_reload("refused")
    assert shared.workers() == {
        "101": {"requests_in_flight": 2, "config_version": "a"},
        "102": {"requests_in_flight": 0, "config_version": "b"},
    }
    assert shared.reload_counts() == {"ok": 2, "refused": 1}
    shared.forget_worker(101)
    assert list(shared.workers()) == ["102"]


def test_config_events_are_logged_without_the_config_itself(
    make_app: AppFactory, config_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="demo_app.live_config")
    client = control_client(make_app())
    publish(config_dir, {"app.yaml": "greeting: logged\ndb:\n  password: hunter2-in-the-config\n"})
    version = client.post("/-/reload").get_json()["version"]
    publish(config_dir, {"app.yaml": "greeting: [\n"})
    assert client.post("/-/reload").status_code == 422
    events = {record.__dict__["event.action"]: record for record in caplog.records}
    assert events["config-loaded"].__dict__["config.files"] == ["app.yaml", "features.json"]
    assert events["config-reloaded"].__dict__["config.version"] == version
    refused = events["config-refused"]
    assert refused.levelno == logging.WARNING
    assert refused.__dict__["config.version"] == version  # the version kept in service
    assert refused.__dict__["error.message"].startswith("app.yaml: line 2:")
    assert "hunter2" not in caplog.text
    assert "not-a-real-password" not in caplog.text
