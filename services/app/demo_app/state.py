"""What the request handlers of one app share: settings, live config, the shared files and clients."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from flask import current_app, g

from demo_app.config_snapshot import ConfigSnapshot
from demo_app.http_errors import ApiError
from demo_app.live_config import LiveConfig
from demo_app.settings import Settings
from demo_app.shared_dir import SharedDir, WorkerStatus
from demo_app.statsd import StatsdClient
from demo_app.upstream import UpstreamClient

EXTENSION_KEY = "demo_app"


@dataclass(frozen=True)
class AppState:
    settings: Settings
    shared: SharedDir
    live_config: LiveConfig
    worker: WorkerStatus
    statsd: StatsdClient
    upstream: UpstreamClient | None
    sleep: Callable[[float], None]
    random_fraction: Callable[[], float]


def app_state() -> AppState:
    state = current_app.extensions.get(EXTENSION_KEY)
    if not isinstance(state, AppState):
        raise RuntimeError("demo_app state missing: build the app with demo_app.create_app()")
    return state


def request_snapshot() -> ConfigSnapshot:
    """The snapshot this request was started with, or a 503 while no config has been loaded yet."""
    snapshot: ConfigSnapshot | None = g.get("snapshot")
    if snapshot is None:
        error = app_state().live_config.last_error
        raise ApiError(503, "not ready", error.detail if error else "no config loaded yet")
    return snapshot
