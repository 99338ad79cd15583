"""The WSGI entry point gunicorn loads in each worker (``demo_app.wsgi:create_wsgi_app()`` or ``demo_app.wsgi:app``)."""

from __future__ import annotations

import logging
import os
from typing import Any

from flask import Flask

from demo_app.app import create_app
from demo_app.ecs_logging import configure_logging
from demo_app.gunicorn_config import shared_board
from demo_app.settings import Settings
from demo_app.state import EXTENSION_KEY, AppState
from sidecar_common import SettingsError, load_settings

logger = logging.getLogger(__name__)

_app: Flask | None = None


def create_wsgi_app(settings: Settings | None = None) -> Flask:
    """Build this worker's app on the board the gunicorn master shares with every worker."""
    if settings is None:
        try:
            settings = load_settings(Settings, os.environ)
        except SettingsError as exc:
            raise SystemExit(f"demo-app: configuration error: {exc}") from None
    if not logging.getLogger().handlers:  # not started through demo_app's gunicorn config
        configure_logging(settings)
    board = shared_board()
    if board is None:
        logger.warning(
            "no shared reload board (gunicorn not started with demo_app's gunicorn config): "
            "a POST /-/reload reaches only the worker that handles it",
            extra={"event.action": "reload-board-missing"},
        )
    app = create_app(settings, board=board)
    state = app.extensions[EXTENSION_KEY]
    if isinstance(state, AppState):
        state.live_config.follow_in_background()  # daemon thread of this worker; ends with it
    return app


def __getattr__(name: str) -> Any:
    """Build ``app`` on first access (PEP 562), so importing this module has no side effects."""
    global _app
    if name == "app":
        if _app is None:
            _app = create_wsgi_app()
        return _app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
