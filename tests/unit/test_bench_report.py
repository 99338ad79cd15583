"""bench/report.py states what each benchmark measured, its verdict and how long it ran."""

from __future__ import annotations

import json
from typing import Any

from bench.__main__ import record_duration
from bench.report import render


def result(name: str, median: float, seconds: int | None = None) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "benchmark": name,
        "figures": [
            {
                "name": "added p90",
                "unit": "ms",
                "samples": [median - 0.1, median, median + 0.1],
                "target": {"op": "<=", "value": 1.0},
                "note": "cause | here",
            }
        ],
    }
    if seconds is not None:
        payload["seconds"] = seconds
    return payload


def test_a_missed_target_is_shown_as_a_miss_with_its_note() -> None:
    text = render([result("mesh", 1.2)], quick=False, failures={})
    row = next(line for line in text.splitlines() if line.startswith("| added p90"))
    assert "**miss**" in row
    assert "cause \\| here" in row
    assert "1.10 – 1.30" in row


def test_a_met_target_passes() -> None:
    text = render([result("mesh", 0.5)], quick=False, failures={})
    row = next(line for line in text.splitlines() if line.startswith("| added p90"))
    assert "| pass |" in row
    assert "miss" not in row


def test_each_benchmark_and_the_run_state_their_duration() -> None:
    text = render([result("mesh", 0.5, seconds=90), result("exporter", 0.5, seconds=600)], quick=False, failures={})
    assert "Ran for 90 s." in text
    assert "Ran for 10 min." in text
    assert "- Duration: 12 min for 2 of 2 benchmarks" in text


def test_a_failed_benchmark_is_listed() -> None:
    text = render([], quick=False, failures={"mesh": "exited 1 after 3 s"})
    assert "## Benchmarks that failed to run" in text
    assert "`mesh`: exited 1 after 3 s" in text


def test_the_runner_stamps_the_duration_into_the_results(tmp_path) -> None:
    path = tmp_path / "mesh.json"
    path.write_text(json.dumps(result("mesh", 0.5)))
    record_duration(path, 61.6)
    assert json.loads(path.read_text())["seconds"] == 62
    record_duration(tmp_path / "missing.json", 5)  # a benchmark that wrote nothing is reported as failed instead
    assert not (tmp_path / "missing.json").exists()
