"""Fixtures for the log sidecar's unit tests: a log directory and in-process pipelines on it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.unit.log_sidecar.harness import FakeSink, Harness

MakeHarness = Callable[..., Harness]


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    directory = tmp_path / "logs"
    directory.mkdir()
    return directory


@pytest.fixture
def make_harness(tmp_path: Path, logs: Path) -> Iterator[MakeHarness]:
    """Build a Harness on ``tmp_path/state`` tailing ``logs/*.log`` unless told otherwise."""
    made: list[Harness] = []

    def make(sink: FakeSink | None = None, **overrides: Any) -> Harness:
        """``overrides``: Settings fields (``rotate_wait_seconds=1.0``) and ``wall_start``."""
        overrides.setdefault("paths", (str(logs / "*.log"),))
        harness = Harness(tmp_path / "state", sink, **overrides)
        made.append(harness)
        return harness

    yield make
    for harness in made:
        harness.close()
