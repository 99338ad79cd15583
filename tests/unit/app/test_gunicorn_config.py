"""gunicorn's settings come from the app's Settings, identically via -c file and python -m demo_app."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

from demo_app.gunicorn_config import gunicorn_options, on_starting, shared_board
from demo_app.server import GunicornServer
from demo_app.settings import Settings
from sidecar_common import load_settings

ENV = {"APP_PORT": "9999", "APP_WORKERS": "3", "APP_THREADS": "5", "STATSD_HOST": "exporter", "STATSD_PORT": "9200"}


def test_options_follow_the_settings() -> None:
    options = gunicorn_options(load_settings(Settings, ENV))
    assert options["bind"] == ["0.0.0.0:9999"]
    assert (options["workers"], options["threads"], options["worker_class"]) == (3, 5, "gthread")
    assert options["statsd_host"] == "exporter:9200"
    assert options["statsd_prefix"] == ""
    assert options["graceful_timeout"] < 30  # below the pod's default termination grace period
    assert options["accesslog"] is None
    assert options["control_socket_disable"] is True


def test_ipv6_host_is_bracketed_and_empty_statsd_host_turns_statsd_off() -> None:
    options = gunicorn_options(load_settings(Settings, {"APP_HOST": "::", "STATSD_HOST": ""}))
    assert options["bind"] == ["[::]:8080"]
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
    assert server.cfg.bind == ["0.0.0.0:9999"]
    assert server.cfg.workers == 3
    assert server.cfg.threads == 5
    assert server.cfg.statsd_host == ("exporter", 9200)
    assert server.cfg.logger_class.__name__ == "FireAndForgetStatsd"
    assert server.cfg.wsgi_app == "demo_app.wsgi:create_wsgi_app()"


def test_master_creates_one_board_before_forking(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("demo_app.gunicorn_config._shared_board", None)
    on_starting(server=None)
    board = shared_board()
    assert board is not None
    on_starting(server=None)
    assert shared_board() is board
    board.close()
