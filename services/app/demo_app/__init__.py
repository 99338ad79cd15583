"""demo_app: the sample app of sidecar-lab, a Flask API on gunicorn (see services/app/README.md)."""

from demo_app.app import create_app
from demo_app.config_snapshot import ConfigError, ConfigSnapshot, load_snapshot
from demo_app.reload_board import ReloadBoard
from demo_app.settings import Settings

__all__ = ["ConfigError", "ConfigSnapshot", "ReloadBoard", "Settings", "create_app", "load_snapshot"]
