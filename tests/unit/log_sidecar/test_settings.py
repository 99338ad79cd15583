"""Settings: defaults, validation naming the variable, secrets never shown."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from log_sidecar.__main__ import main
from log_sidecar.settings import Settings
from sidecar_common import SettingsError, load_settings


def test_defaults_run_locally_with_the_file_sink() -> None:
    settings = load_settings(Settings, {})
    assert settings.sink == "file"
    assert settings.paths == ("/var/log/app/*.log",)
    assert settings.file_sink_target == Path("/var/lib/log-sidecar/shipped.ndjson")
    assert settings.admin_port == 8082
    assert settings.drain_seconds < 30, "drains well inside the pod's grace period"


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"LOG_SINK": "elasticsearch"}, "ES_URL"),
        ({"LOG_SINK": "elasticsearch", "ES_URL": "ftp://x"}, "ES_URL"),
        ({"LOG_SINK": "kafka"}, "LOG_SINK"),
        ({"LOG_MULTILINE_PATTERN": "(unclosed"}, "LOG_MULTILINE_PATTERN"),
        ({"LOG_BATCH_MAX_DOCS": "0"}, "LOG_BATCH_MAX_DOCS"),
        ({"LOG_BUFFER_MAX_BYTES": "10", "LOG_BATCH_MAX_BYTES": "100"}, "LOG_BUFFER_MAX_BYTES"),
        ({"LOG_SINK": "elasticsearch", "ES_URL": "http://es:9200", "ES_USERNAME": "u"}, "ES_PASSWORD"),
        ({"LOG_SINK": "elasticsearch", "ES_URL": "http://es:9200", "ES_INDEX": "Logs-%Y"}, "ES_INDEX"),
        ({"LOG_SINK": "elasticsearch", "ES_URL": "http://es:9200", "ES_CA_CERT": "/nonexistent.pem"}, "ES_CA_CERT"),
        ({"LOG_RETRY_MAX": "-1"}, "LOG_RETRY_MAX"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(Settings, env)
    assert caught.value.variable == variable


def test_secrets_are_never_shown() -> None:
    settings = load_settings(
        Settings,
        {
            "LOG_SINK": "elasticsearch",
            "ES_URL": "https://elastic:pw-in-url@es:9200",
            "ES_USERNAME": "elastic",
            "ES_PASSWORD": "hunter2",
        },
    )
    assert "hunter2" not in repr(settings)
    assert settings.redacted_es_url == "https://es:9200"
    secret_fields = {f.metadata["env"] for f in dataclasses.fields(Settings) if f.metadata.get("secret")}
    assert secret_fields == {"ES_PASSWORD", "ES_API_KEY"}


def test_the_command_exits_2_with_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LOG_SINK", "elasticsearch")
    monkeypatch.delenv("ES_URL", raising=False)
    with pytest.raises(SystemExit) as caught:
        main([])
    assert caught.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "ES_URL" in err


def test_help_lists_every_variable(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["--help"])
    assert caught.value.code == 0
    out = capsys.readouterr().out
    for field in dataclasses.fields(Settings):
        assert field.metadata["env"] in out
