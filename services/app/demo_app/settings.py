"""The app's settings: every environment variable it reads, parsed once into one frozen object."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from sidecar_common import SettingsError, control_port_setting, log_level_setting, port_setting, setting

MAX_WORKERS = 64
MAX_THREADS = 256
MAX_UPSTREAM_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class Settings:
    """Environment of the demo app; ``python -m demo_app --help`` lists it."""

    port: int = port_setting("APP_PORT", 8080, "TCP port of the API, probes and /stats (bound on APP_HOST)")
    host: str = setting("APP_HOST", "0.0.0.0", "address the API port binds (0.0.0.0 = every interface of the pod)")
    control_port: int = control_port_setting(8079, "POST /-/reload (the config sidecar's call)")
    config_dir: Path = setting("APP_CONFIG_DIR", Path("/etc/app/config"), "directory of config files (YAML/JSON)")
    log_file: Path | None = setting(
        "APP_LOG_FILE", Path("/var/log/app/app.log"), "JSON log lines also go here (empty = stdout only)"
    )
    db_host: str = setting("DB_HOST", "localhost", "database host named in /api/greeting (the classic env example)")
    upstream_url: str | None = setting(
        "APP_UPSTREAM_URL", None, "base URL of an upstream demo app called by /api/greeting (unset = none)"
    )
    upstream_timeout_seconds: float = setting(
        "APP_UPSTREAM_TIMEOUT_SECONDS",
        2.0,
        "connect+read timeout of the upstream call, seconds",
        exclusive_minimum=0,
        maximum=MAX_UPSTREAM_TIMEOUT_SECONDS,
    )
    statsd_host: str = setting("STATSD_HOST", "localhost", "statsd (exporter) host for UDP metrics (empty = none)")
    # Where packets go, so unlike a port to listen on, 0 means nothing.
    statsd_port: int = setting("STATSD_PORT", 9125, "statsd UDP port", minimum=1, maximum=65535)
    workers: int = setting("APP_WORKERS", 2, "gunicorn worker processes", minimum=1, maximum=MAX_WORKERS)
    threads: int = setting("APP_THREADS", 4, "threads per gunicorn worker", minimum=1, maximum=MAX_THREADS)
    name: str = setting("APP_NAME", "demo-app", "service name in logs and /stats (the web tier sets web)")
    log_level: str = log_level_setting()

    def validate(self) -> None:
        """Refuse combinations and values the declared rules cannot express, naming the variable."""
        if self.control_port in (0, self.port):
            # The config sidecar must know where to POST: a fixed port of its own.
            raise SettingsError("CONTROL_PORT", f"{self.control_port} must be a fixed port other than APP_PORT")
        if self.upstream_url is not None:
            parts = urlsplit(self.upstream_url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise SettingsError("APP_UPSTREAM_URL", f"{self.upstream_url!r} is not an http(s) URL")
        if not self.name.strip():
            raise SettingsError("APP_NAME", "must not be empty")
