"""The app's environment: defaults, refusals naming the variable, and --help listing everything."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from demo_app.__main__ import main
from demo_app.settings import Settings
from sidecar_common import SettingsError, load_settings


def test_defaults_match_the_architecture_contract() -> None:
    settings = load_settings(Settings, {})
    assert settings.port == 8080
    assert settings.host == "0.0.0.0"
    assert settings.control_port == 8079  # always on 127.0.0.1
    assert settings.config_dir == Path("/etc/app/config")
    assert settings.log_file == Path("/var/log/app/app.log")
    assert settings.upstream_url is None
    assert (settings.statsd_host, settings.statsd_port) == ("localhost", 9125)
    assert (settings.workers, settings.threads) == (2, 4)
    assert settings.name == "demo-app"


def test_empty_optional_values_mean_unset() -> None:
    settings = load_settings(Settings, {"APP_LOG_FILE": "", "APP_UPSTREAM_URL": ""})
    assert settings.log_file is None
    assert settings.upstream_url is None


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("APP_PORT", "http"),
        ("APP_PORT", "70000"),
        ("STATSD_PORT", "0"),
        ("CONTROL_PORT", "8080"),  # the API's port: reloads would be public again
        ("CONTROL_PORT", "0"),  # a port nobody could know
        ("CONTROL_PORT", "65536"),
        ("APP_WORKERS", "0"),
        ("APP_THREADS", "1000"),
        ("APP_UPSTREAM_URL", "ftp://example"),
        ("APP_UPSTREAM_URL", "demo-app:8080"),
        ("APP_UPSTREAM_TIMEOUT_SECONDS", "0"),
        ("APP_UPSTREAM_TIMEOUT_SECONDS", "31"),
        ("LOG_LEVEL", "verbose"),
        ("APP_NAME", "  "),
    ],
)
def test_bad_value_is_refused_naming_the_variable(variable: str, value: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(Settings, {variable: value})
    assert caught.value.variable == variable


def test_bad_value_exits_2_with_one_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("APP_WORKERS", "many")
    with pytest.raises(SystemExit) as caught:
        main([])
    assert caught.value.code == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert "APP_WORKERS" in error


def test_help_lists_every_variable_with_its_default(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["--help"])
    assert caught.value.code == 0
    text = capsys.readouterr().out
    for field in dataclasses.fields(Settings):
        line = next(line for line in text.splitlines() if line.strip().startswith(field.metadata["env"] + " "))
        shown = "(unset)" if field.default is None else str(field.default)
        assert shown in line, line
