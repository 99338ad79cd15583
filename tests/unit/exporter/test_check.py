"""``python -m metrics_exporter check``: golden-file testing of a mapping."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from metrics_exporter.check import EXIT_DIFFERENT, EXIT_MATCH, EXIT_UNUSABLE, CheckRequest, run_check
from metrics_exporter.settings import Settings
from sidecar_common import load_settings

GOLDEN = Path(__file__).parent / "golden"
SAMPLE = GOLDEN / "gunicorn_app.statsd"
STATS = GOLDEN / "stats.json"
EXPECTED = GOLDEN / "gunicorn_app.prom"


def check(request: CheckRequest, **env: str) -> tuple[int, str, str]:
    out, report = io.StringIO(), io.StringIO()
    status = run_check(load_settings(Settings, env), request, out, report)
    return status, out.getvalue(), report.getvalue()


def test_the_committed_golden_file_matches_the_default_mapping() -> None:
    """The CLI as CI runs it; a change to the default mapping must come with a new golden file."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "metrics_exporter",
            "check",
            "--input",
            str(SAMPLE),
            "--json",
            str(STATS),
            "--expect",
            str(EXPECTED),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok: exposition matches" in result.stderr
    assert "statsd errors: {'missing_value': 1, 'invalid_value': 1}" in result.stderr


def test_a_difference_exits_1_with_a_unified_diff(tmp_path: Path) -> None:
    expected = tmp_path / "expected.prom"
    expected.write_text(
        EXPECTED.read_text().replace('http_requests_total{status="503"} 1.0', 'http_requests_total{status="503"} 2.0')
    )
    status, diff, report = check(CheckRequest(None, SAMPLE, expected, STATS))
    assert status == EXIT_DIFFERENT
    assert f"--- {expected}" in diff
    assert '-http_requests_total{status="503"} 2.0' in diff
    assert '+http_requests_total{status="503"} 1.0' in diff
    assert "mismatch" in report


def test_write_creates_the_golden_file_and_then_it_matches(tmp_path: Path) -> None:
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text("mappings: [{match: 'jobs.*.done', name: jobs_done_total, labels: {queue: $1}}]\n")
    sample = tmp_path / "sample.statsd"
    sample.write_text("jobs.email.done:1|c\njobs.email.done:1|c\njobs.sms.done:1|c\n")
    expected = tmp_path / "out.prom"
    assert check(CheckRequest(mapping, sample, expected, write=True))[0] == EXIT_MATCH
    assert 'jobs_done_total{queue="email"} 2.0' in expected.read_text()
    assert check(CheckRequest(mapping, sample, expected))[0] == EXIT_MATCH


def test_the_mapping_can_come_from_exporter_config(tmp_path: Path) -> None:
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text("mappings: [{match: x, name: renamed_total}]\n")
    sample = tmp_path / "sample.statsd"
    sample.write_text("x:1|c\n")
    expected = tmp_path / "out.prom"
    check(CheckRequest(None, sample, expected, write=True), EXPORTER_CONFIG=str(mapping))
    assert "renamed_total 1.0" in expected.read_text()


def test_a_missing_golden_file_is_a_mismatch_that_says_how_to_create_it(tmp_path: Path) -> None:
    status, _, report = check(CheckRequest(None, SAMPLE, tmp_path / "absent.prom"))
    assert status == EXIT_DIFFERENT
    assert "--write" in report


@pytest.mark.parametrize(
    ("mapping_text", "input_exists", "reason"),
    [
        ("mappings: [{match: a, name: 'bad name'}]", True, "mappings[0].name"),
        ("mappings: []", False, "No such file"),
    ],
)
def test_unusable_inputs_exit_2(tmp_path: Path, mapping_text: str, input_exists: bool, reason: str) -> None:
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(mapping_text)
    sample = tmp_path / "sample.statsd"
    if input_exists:
        sample.write_text("a:1|c\n")
    status, _, report = check(CheckRequest(mapping, sample, tmp_path / "out.prom"))
    assert status == EXIT_UNUSABLE
    assert reason in report


def test_an_unreadable_json_sample_exits_2(tmp_path: Path) -> None:
    broken = tmp_path / "stats.json"
    broken.write_text("{not json")
    status, _, report = check(CheckRequest(None, SAMPLE, EXPECTED, broken))
    assert status == EXIT_UNUSABLE
    assert "invalid_json" in report
