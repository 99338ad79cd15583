"""The WSGI entry point gunicorn loads in each worker (``demo_app.wsgi:create_wsgi_app()`` or ``demo_app.wsgi:app``)."""

from __future__ import annotations

import atexit
import logging
import os
from typing import Any

from flask import Flask

from demo_app.app import create_app
from demo_app.ecs_logging import configure_logging
from demo_app.gunicorn_config import shared_dir, worker_tmp_dir
from demo_app.settings import Settings
from demo_app.shared_dir import SharedDir
from sidecar_common import SettingsError, load_settings

logger = logging.getLogger(__name__)

_app: Flask | None = None


def create_wsgi_app(settings: Settings | None = None) -> Flask:
    """Build this worker's app on the directory the gunicorn master shares with every worker."""
    if settings is None:
        try:
            settings = load_settings(Settings, os.environ)
        except SettingsError as exc:
            raise SystemExit(f"demo-app: configuration error: {exc}") from None
    if not logging.getLogger().handlers:  # not started through demo_app's gunicorn config
        configure_logging(settings)
    shared = shared_dir()
    if shared is None:
        shared = SharedDir.create(worker_tmp_dir())
        atexit.register(shared.remove)
        logger.warning(
            "gunicorn not started with demo_app's gunicorn config: this worker shares reloads and /stats with no other",
            extra={"event.action": "shared-dir-missing"},
        )
    return create_app(settings, shared)


def __getattr__(name: str) -> Any:
    """Build ``app`` on first access (PEP 562), so importing this module has no side effects."""
    global _app
    if name == "app":
        if _app is None:
            _app = create_wsgi_app()
        return _app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
