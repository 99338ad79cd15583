"""Test doubles and config-directory helpers shared by the demo app's unit tests."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from demo_app.state import EXTENSION_KEY, AppState
from demo_app.statsd import StatsdClient
from sidecar_common.admin_settings import CONTROL_HOST

AppFactory = Callable[..., Flask]

APP_YAML = """\
greeting: "Hello from the tests"
chaos:
  latency_ms: 0
  error_rate: 0
features:
  beta: true
database:
  name: orders
  password: "not-a-real-password"
"""


def publish(directory: Path, files: Mapping[str, str | bytes]) -> None:
    """Replace the directory's config the way kubelet and the config sidecar do (``..data`` swap)."""
    directory.mkdir(parents=True, exist_ok=True)
    versioned = directory / f"..{time.time_ns()}"
    versioned.mkdir()
    for name, content in files.items():
        data = content.encode() if isinstance(content, str) else content
        (versioned / name).write_bytes(data)
    temporary = directory / "..data_tmp"
    temporary.symlink_to(versioned.name)
    os.replace(temporary, directory / "..data")
    for name in files:
        link = directory / name
        if not link.is_symlink():
            link.symlink_to(Path("..data") / name)
    for entry in directory.iterdir():
        if not entry.name.startswith(".") and entry.name not in files:
            entry.unlink()  # a key deleted from the ConfigMap
        elif entry.name.startswith("..") and entry.is_dir() and not entry.is_symlink() and entry != versioned:
            shutil.rmtree(entry)  # the previous version


class RecordingStatsd(StatsdClient):
    """A statsd client that keeps the lines it would send, for assertions."""

    def __init__(self) -> None:
        super().__init__("", 0)
        self.lines: list[str] = []

    def send(self, line: str) -> None:
        self.lines.append(line)


class FakeSleep:
    """Records requested sleeps instead of sleeping."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


class ConnectionStub:
    """What gunicorn puts in ``environ["gunicorn.socket"]``, as far as the app looks at it: the local address."""

    def __init__(self, address: tuple[str, int]) -> None:
        self.address = address

    def getsockname(self) -> tuple[str, int]:
        return self.address


def arriving_on(client: FlaskClient, address: tuple[str, int]) -> FlaskClient:
    """Make ``client``'s requests arrive on a gunicorn connection whose local address is ``address``."""
    environ: dict[str, Any] = client.environ_base  # typed for strings; a WSGI environ holds any object
    environ["gunicorn.socket"] = ConnectionStub(address)
    return client


def control_client(app: Flask) -> FlaskClient:
    """A test client whose requests come in through gunicorn's loopback control listener."""
    state = app.extensions[EXTENSION_KEY]
    assert isinstance(state, AppState)
    return arriving_on(app.test_client(), (CONTROL_HOST, state.settings.control_port))
