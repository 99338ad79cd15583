"""The Flask app factory: wires settings, config, board, metrics and routes into one app."""

from __future__ import annotations

import logging
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
from demo_app.reload_board import ReloadBoard
from demo_app.request_lifecycle import register_request_lifecycle
from demo_app.settings import Settings
from demo_app.state import EXTENSION_KEY, AppState
from demo_app.statsd import StatsdClient
from demo_app.upstream import UpstreamClient

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024


class _JsonProvider(DefaultJSONProvider):
    sort_keys = False  # keep the documented field order
    ensure_ascii = False


def create_app(
    settings: Settings,
    *,
    board: ReloadBoard | None = None,
    statsd: StatsdClient | None = None,
    sleep: Callable[[float], None] = time.sleep,
    random_fraction: Callable[[], float] = random.random,
) -> Flask:
    """Build the app for one process.

    ``board`` is the reload board shared by all gunicorn workers (created in the master);
    without one the app gets a private board, which is all a single process needs.
    ``sleep`` and ``random_fraction`` drive /api/work and the chaos knobs (tests pass fakes).
    """
    app = Flask(__name__)
    app.json = _JsonProvider(app)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    statsd = statsd or StatsdClient(settings.statsd_host, settings.statsd_port)
    board = board or ReloadBoard.create()
    if not board.register_worker(os.getpid()):
        logger.warning(
            "reload board full (%d slots): /stats will not list worker %d",
            board.capacity,
            os.getpid(),
            extra={"event.action": "reload-board-full"},
        )
    live_config = LiveConfig(settings.config_dir, board, statsd)
    # Load now, so a worker is ready from its first request; if the sidecar has not published
    # yet, every request (including the readiness probe) retries cheaply.
    live_config.sync(board.published().generation)
    upstream = (
        UpstreamClient(settings.upstream_url, settings.upstream_timeout_seconds, statsd)
        if settings.upstream_url
        else None
    )
    app.extensions[EXTENSION_KEY] = AppState(
        settings=settings,
        board=board,
        live_config=live_config,
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
