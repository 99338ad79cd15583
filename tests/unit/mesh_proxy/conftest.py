"""Shared pieces of the mesh proxy's unit tests: the real Envoy binary and settings from a dict."""

from __future__ import annotations

from pathlib import Path

import pytest

from mesh_proxy.envoy import envoy_binary
from mesh_proxy.settings import Settings
from sidecar_common import load_settings

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session")
def envoy() -> Path:
    return envoy_binary()


def settings(**env: str) -> Settings:
    return load_settings(Settings, env)
