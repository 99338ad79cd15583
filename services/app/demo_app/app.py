"""The Flask app factory: wires settings, config, shared files, metrics and routes into one app."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable

from flask import Flask
from flask.json.provider import DefaultJSONProvider

from demo_app.api import api
from demo_app.http_errors import register_error_handlers
from demo_app.live_config import LiveConfig
from demo_app.operations import operations
from demo_app.request_lifecycle import register_request_lifecycle
from demo_app.settings import Settings
from demo_app.shared_dir import SharedDir, WorkerStatus
from demo_app.state import EXTENSION_KEY, AppState
from demo_app.statsd import StatsdClient
from demo_app.upstream import UpstreamClient

MAX_BODY_BYTES = 64 * 1024


class _JsonProvider(DefaultJSONProvider):
    sort_keys = False  # keep the documented field order
    ensure_ascii = False


def create_app(
    settings: Settings,
    shared: SharedDir,
    *,
    statsd: StatsdClient | None = None,
    sleep: Callable[[float], None] = time.sleep,
    random_fraction: Callable[[], float] = random.random,
) -> Flask:
    """Build the app of one gunicorn worker.

    ``shared`` is the directory every worker of the app shares (created in the gunicorn master).
    ``sleep`` and ``random_fraction`` drive /api/work and the chaos knobs (tests pass fakes).
    """
    app = Flask(__name__)
    app.json = _JsonProvider(app)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    statsd = statsd or StatsdClient(settings.statsd_host, settings.statsd_port)
    live_config = LiveConfig(settings.config_dir, shared, statsd)
    worker = WorkerStatus(shared, os.getpid())
    # Load now, so the worker is ready from its first request and /stats lists it at once; if
    # the sidecar has not published yet, requests (the readiness probe too) look again.
    snapshot = live_config.current()
    worker.serving(snapshot.version if snapshot else None)
    upstream = (
        UpstreamClient(settings.upstream_url, settings.upstream_timeout_seconds, statsd)
        if settings.upstream_url
        else None
    )
    app.extensions[EXTENSION_KEY] = AppState(
        settings=settings,
        shared=shared,
        live_config=live_config,
        worker=worker,
        statsd=statsd,
        upstream=upstream,
        sleep=sleep,
        random_fraction=random_fraction,
    )
    register_error_handlers(app)
    register_request_lifecycle(app)
    app.register_blueprint(api)
    app.register_blueprint(operations)
    return app
