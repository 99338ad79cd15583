"""Fixtures for the demo app's unit tests: a config directory, settings and a Flask test client."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from demo_app import ReloadBoard, Settings, create_app
from tests.unit.app.doubles import APP_YAML, AppFactory, FakeSleep, RecordingStatsd, publish


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "config"
    publish(directory, {"app.yaml": APP_YAML, "features.json": '{"banner": {"enabled": true}}'})
    return directory


@pytest.fixture
def settings(config_dir: Path) -> Settings:
    return Settings(config_dir=config_dir, log_file=None, statsd_host="", db_host="db.test")


@pytest.fixture
def statsd() -> RecordingStatsd:
    return RecordingStatsd()


@pytest.fixture
def fake_sleep() -> FakeSleep:
    return FakeSleep()


@pytest.fixture
def make_app(settings: Settings, statsd: RecordingStatsd, fake_sleep: FakeSleep) -> Iterator[AppFactory]:
    """Build apps that share nothing but what the test passes (a board, settings overrides)."""
    boards: list[ReloadBoard] = []

    def build(
        board: ReloadBoard | None = None, random_fraction: Callable[[], float] = lambda: 0.5, **overrides: Any
    ) -> Flask:
        if board is None:
            board = ReloadBoard.create()
            boards.append(board)
        chosen = dataclasses.replace(settings, **overrides)
        return create_app(chosen, board=board, statsd=statsd, sleep=fake_sleep, random_fraction=random_fraction)

    yield build
    for board in boards:
        board.close()


@pytest.fixture
def client(make_app: AppFactory) -> FlaskClient:
    return make_app().test_client()
