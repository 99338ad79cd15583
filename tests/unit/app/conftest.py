"""Fixtures for the demo app's unit tests: a config directory, settings and a Flask test client."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from demo_app import Settings, SharedDir, create_app
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
def shared(tmp_path: Path) -> Iterator[SharedDir]:
    """The directory gunicorn's master would share with its workers."""
    created = SharedDir.create(tmp_path)
    yield created
    created.remove()


@pytest.fixture
def make_app(settings: Settings, shared: SharedDir, statsd: RecordingStatsd, fake_sleep: FakeSleep) -> AppFactory:
    """Build apps ("workers") that share the test's shared directory, with settings overrides."""

    def build(random_fraction: Callable[[], float] = lambda: 0.5, **overrides: Any) -> Flask:
        chosen = dataclasses.replace(settings, **overrides)
        return create_app(chosen, shared, statsd=statsd, sleep=fake_sleep, random_fraction=random_fraction)

    return build


@pytest.fixture
def client(make_app: AppFactory) -> FlaskClient:
    return make_app().test_client()
