"""Test doubles and config-directory helpers shared by the demo app's unit tests."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from flask import Flask

from demo_app.statsd import StatsdClient

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
