"""Shared core of the sidecar-lab services: settings, logging, admin HTTP, lifecycle."""

from sidecar_common.admin import AdminServer, Endpoint, Response, json_response
from sidecar_common.admin_settings import (
    admin_host_setting,
    admin_port_setting,
    control_port_setting,
    log_level_setting,
    port_setting,
)
from sidecar_common.backoff import Backoff
from sidecar_common.config_version import content_version, read_config_files, snapshot_root, visible_entries
from sidecar_common.heartbeat import MISSED_BEATS, Heartbeat
from sidecar_common.jsonlog import JsonFormatter, configure_logging
from sidecar_common.lifecycle import (
    EXIT_CONFIG,
    EXIT_FAILED,
    EXIT_FORCED,
    EXIT_OK,
    EXIT_UNAVAILABLE,
    Reloadable,
    Service,
    StartupError,
    run_service,
    startup_error,
)
from sidecar_common.settings import SettingsError, describe_settings, load_settings, parse_cli, setting
from sidecar_common.shutdown import GracefulShutdown

__all__ = [
    "EXIT_CONFIG",
    "EXIT_FAILED",
    "EXIT_FORCED",
    "EXIT_OK",
    "EXIT_UNAVAILABLE",
    "MISSED_BEATS",
    "AdminServer",
    "Backoff",
    "Endpoint",
    "GracefulShutdown",
    "Heartbeat",
    "JsonFormatter",
    "Reloadable",
    "Response",
    "Service",
    "SettingsError",
    "StartupError",
    "admin_host_setting",
    "admin_port_setting",
    "configure_logging",
    "content_version",
    "control_port_setting",
    "describe_settings",
    "json_response",
    "load_settings",
    "log_level_setting",
    "parse_cli",
    "port_setting",
    "read_config_files",
    "run_service",
    "setting",
    "snapshot_root",
    "startup_error",
    "visible_entries",
]
