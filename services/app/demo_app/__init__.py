"""demo_app: the sample app of sidecar-lab, a Flask API on gunicorn (see services/app/README.md)."""

from demo_app.app import create_app
from demo_app.config_snapshot import ConfigError, ConfigSnapshot, load_snapshot
from demo_app.settings import Settings
from demo_app.shared_dir import SharedDir

__all__ = ["ConfigError", "ConfigSnapshot", "Settings", "SharedDir", "create_app", "load_snapshot"]
