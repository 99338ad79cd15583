"""Shared core of the sidecar-lab services: settings, logging, admin HTTP, lifecycle."""

from sidecar_common.admin import AdminServer, Response, json_response
from sidecar_common.backoff import Backoff
from sidecar_common.config_version import content_version, read_config_files, snapshot_root, visible_entries
from sidecar_common.heartbeat import Heartbeat
from sidecar_common.jsonlog import JsonFormatter, configure_logging
from sidecar_common.settings import SettingsError, describe_settings, load_settings, parse_cli, setting
from sidecar_common.shutdown import GracefulShutdown

__all__ = [
    "AdminServer",
    "Backoff",
    "GracefulShutdown",
    "Heartbeat",
    "JsonFormatter",
    "Response",
    "SettingsError",
    "configure_logging",
    "content_version",
    "describe_settings",
    "json_response",
    "load_settings",
    "parse_cli",
    "read_config_files",
    "setting",
    "snapshot_root",
    "visible_entries",
]
