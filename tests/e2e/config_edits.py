"""Editing the stack's config source (the throwaway copy E2E_CONFIG_SOURCE) the way a user's editor does."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tests.e2e.stack import Stack

RELOAD_TIMEOUT_SECONDS = 60.0
APP_CONFIG = "app.yaml"


def write_atomically(path: Path, text: str) -> None:
    """Replace a file the way editors and kubelet do: a hidden temp file renamed over it."""
    temporary = path.with_name(f".{path.name}.e2e-tmp")
    temporary.write_text(text)
    os.chmod(temporary, 0o644)
    os.replace(temporary, path)


def app_config(stack: Stack) -> dict[str, Any]:
    """The app's /api/config: its version and effective config."""
    body: dict[str, Any] = stack.app_json("/api/config")
    return body
