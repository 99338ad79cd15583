"""Marks each test by its layer directory and provides the shared fixtures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.http_stub import HttpStub

LAYERS = ("unit", "integration", "e2e", "manifests")
ROOT = Path(__file__).resolve().parent.parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.fspath)).relative_to(ROOT / "tests").parts
        if parts and parts[0] in LAYERS:
            item.add_marker(getattr(pytest.mark, parts[0]))


@pytest.fixture
def repo_root() -> Path:
    return ROOT


@pytest.fixture
def http_stub() -> Iterator[HttpStub]:
    """A listening HttpStub (404 until the test scripts its answers), stopped after the test."""
    with HttpStub() as stub:
        yield stub
