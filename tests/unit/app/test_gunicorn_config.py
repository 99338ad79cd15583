"""gunicorn's settings come from the app's Settings, identically via -c file and python -m demo_app."""

from __future__ import annotations

import runpy
from pathlib import Path
from types import SimpleNamespace

import pytest

from demo_app.gunicorn_config import child_exit, gunicorn_options, on_exit, on_starting, shared_dir
from demo_app.server import GunicornServer
from demo_app.settings import Settings
from demo_app.wsgi import create_wsgi_app
from sidecar_common import load_settings
from tests.unit.app.doubles import control_client

ENV = {"APP_PORT": "9999", "APP_WORKERS": "3", "APP_THREADS": "5", "STATSD_HOST": "exporter", "STATSD_PORT": "9200"}


def test_options_follow_the_settings() -> None:
    options = gunicorn_options(load_settings(Settings, ENV))
    assert options["bind"] == ["0.0.0.0:9999", "127.0.0.1:8079"]  # the API, and the control port on loopback only
    assert (options["workers"], options["threads"], options["worker_class"]) == (3, 5, "gthread")
    assert options["statsd_host"] == "exporter:9200"
    assert options["statsd_prefix"] == ""
    assert options["graceful_timeout"] < 30  # below the pod's default termination grace period
    assert options["accesslog"] is None
    assert options["control_socket_disable"] is True


def test_ipv6_host_is_bracketed_and_empty_statsd_host_turns_statsd_off() -> None:
    options = gunicorn_options(load_settings(Settings, {"APP_HOST": "::", "STATSD_HOST": "", "CONTROL_PORT": "7000"}))
    assert options["bind"] == ["[::]:8080", "127.0.0.1:7000"]
    assert options["statsd_host"] is None
    assert options["logger_class"] == "gunicorn.glogging.Logger"


def test_config_file_exports_the_same_settings(repo_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    exported = runpy.run_path(str(repo_root / "services" / "app" / "gunicorn.conf.py"))
    expected = gunicorn_options(load_settings(Settings, ENV))
    assert {key: exported[key] for key in expected} == expected


def test_config_file_refuses_a_bad_environment(repo_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_PORT", "nope")
    with pytest.raises(SystemExit, match="APP_PORT"):
        runpy.run_path(str(repo_root / "services" / "app" / "gunicorn.conf.py"))


def test_python_m_demo_app_configures_gunicorn_from_the_settings() -> None:
    server = GunicornServer(load_settings(Settings, ENV))
    assert server.cfg.bind == ["0.0.0.0:9999", "127.0.0.1:8079"]
    assert server.cfg.workers == 3
    assert server.cfg.threads == 5
    assert server.cfg.statsd_host == ("exporter", 9200)
    assert server.cfg.logger_class.__name__ == "FireAndForgetStatsd"
    assert server.cfg.wsgi_app == "demo_app.wsgi:create_wsgi_app()"


def test_master_shares_one_directory_with_its_workers_and_removes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("demo_app.gunicorn_config._shared", None)
    server = SimpleNamespace(cfg=SimpleNamespace(worker_tmp_dir=str(tmp_path)))
    on_starting(server)
    shared = shared_dir()
    assert shared is not None
    assert shared.root.parent == tmp_path
    on_starting(server)
    assert shared_dir() is shared
    shared.write_worker(4242, {"requests_in_flight": 0, "config_version": None})
    child_exit(server, SimpleNamespace(pid=4242))
    assert shared.workers() == {}
    on_exit(server)
    assert not shared.root.exists()


def test_a_worker_outside_demo_apps_gunicorn_config_gets_a_directory_of_its_own(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr("demo_app.gunicorn_config._shared", None)  # no master hook ran
    monkeypatch.setattr("demo_app.wsgi.worker_tmp_dir", lambda: str(tmp_path))
    app = create_wsgi_app(settings)
    assert control_client(app).post("/-/reload").status_code == 200
    assert list(tmp_path.glob("demo-app-*/accepted.json"))  # its reload was saved in its own directory
    assert "shared-dir-missing" in [record.__dict__.get("event.action") for record in caplog.records]
