"""gunicorn config for the demo app: ``gunicorn -c services/app/gunicorn.conf.py`` (app module optional).

A thin re-export: the settings and server hooks live in ``demo_app.gunicorn_config``, so
``python -m demo_app`` and an installed container use exactly the same configuration.
gunicorn reads a config file's module globals as its settings, hence ``globals().update``.
"""

import os

from demo_app.gunicorn_config import gunicorn_options
from demo_app.settings import Settings
from sidecar_common import SettingsError, load_settings

try:
    _settings = load_settings(Settings, os.environ)
except SettingsError as _error:
    raise SystemExit(f"demo-app: configuration error: {_error}") from None

globals().update(gunicorn_options(_settings))
