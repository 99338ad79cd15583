"""``python -m metrics_exporter --help`` and bad variables: the CLI surface."""

from __future__ import annotations

import dataclasses

import pytest

from metrics_exporter.__main__ import main
from metrics_exporter.settings import Settings


def test_help_lists_every_variable_and_the_check_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    for field in dataclasses.fields(Settings):
        assert field.metadata["env"] in text
    assert "check" in text


@pytest.mark.parametrize(
    ("variable", "raw"),
    [
        ("EXPORTER_UNMAPPED", "keep"),
        ("EXPORTER_PORT", "http"),
        ("STATSD_PORT", "70000"),
        ("EXPORTER_MAX_SERIES_PER_METRIC", "0"),
        ("EXPORTER_JSON_URL", "localhost:8080/stats"),
        ("EXPORTER_JSON_URL", "http://"),
        ("EXPORTER_JSON_URL", "http://localhost:port/stats"),
        ("STATSD_READ_BUFFER_BYTES", "1024"),
    ],
)
def test_a_bad_variable_exits_2_naming_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], variable: str, raw: str
) -> None:
    monkeypatch.setenv(variable, raw)
    with pytest.raises(SystemExit) as exited:
        main([])
    assert exited.value.code == 2
    assert variable in capsys.readouterr().err


def test_check_requires_its_files(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["check"])
    assert exited.value.code == 2
    assert "--input" in capsys.readouterr().err
