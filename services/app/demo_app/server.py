"""Run the app on real gunicorn from Python (``python -m demo_app``), with the package's gunicorn config."""

from __future__ import annotations

from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication

from demo_app.gunicorn_config import gunicorn_options
from demo_app.settings import Settings
from demo_app.wsgi import create_wsgi_app


class GunicornServer(BaseApplication):  # type: ignore[misc]  # gunicorn ships no type hints
    """gunicorn's master and workers, configured from Settings instead of the command line."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        super().__init__(prog="demo-app")

    def load_config(self) -> None:
        for key, value in gunicorn_options(self.settings).items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        # Runs in each worker after the fork, so each builds its own app on the shared board.
        return create_wsgi_app(self.settings)

    def init(self, parser: Any, opts: Any, args: Any) -> None:
        raise NotImplementedError  # no command-line parsing: Settings come from the environment
