"""The admin block every service declares the same way: LOG_LEVEL, ADMIN_HOST, ADMIN_PORT, CONTROL_PORT.

Each service's Settings dataclass writes, for example::

    log_level: str = log_level_setting()
    admin_host: str = admin_host_setting()
    admin_port: int = admin_port_setting(8081, "/livez, /readyz, /metrics and /status")

so that the names, the validation and the error messages are the same in every
sidecar. ``ADMIN_PORT`` is the read-only port kubelet probes and Prometheus
scrapes; ``CONTROL_PORT`` (only where a service has state-changing endpoints) is
always bound to the loopback address: the pod's shared localhost reaches it,
nothing outside the pod does.
"""

from __future__ import annotations

from typing import Any

from sidecar_common.settings import setting

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# Port 0 asks the kernel for a free port: tests use it; a pod never does.
PORT_MIN, PORT_MAX = 0, 65535
# Where state-changing endpoints listen: loopback only, never a variable, never 0.0.0.0.
CONTROL_HOST = "127.0.0.1"


def log_level_setting() -> Any:
    """``LOG_LEVEL``: case-insensitive, one of LOG_LEVELS."""
    return setting(
        "LOG_LEVEL", "INFO", "minimum log level: " + ", ".join(LOG_LEVELS), parse=str.upper, choices=LOG_LEVELS
    )


def admin_host_setting(default: str = "0.0.0.0") -> Any:
    """``ADMIN_HOST``: the address the read-only admin port binds (0.0.0.0 so kubelet's probes reach it)."""
    return setting("ADMIN_HOST", default, "address the admin port binds")


def admin_port_setting(default: int, serves: str, aliases: tuple[str, ...] = ()) -> Any:
    """``ADMIN_PORT``: the read-only port of probes, metrics and status."""
    return setting(
        "ADMIN_PORT", default, f"read-only admin port: {serves}", aliases=aliases, minimum=PORT_MIN, maximum=PORT_MAX
    )


def control_port_setting(default: int, serves: str) -> Any:
    """``CONTROL_PORT``: the loopback-only port of state-changing endpoints."""
    return setting(
        "CONTROL_PORT", default, f"control port on {CONTROL_HOST} only: {serves}", minimum=PORT_MIN, maximum=PORT_MAX
    )


def port_setting(env: str, default: int, help: str) -> Any:
    """Any other TCP/UDP port variable, with the same range and message as the admin block."""
    return setting(env, default, help, minimum=PORT_MIN, maximum=PORT_MAX)
