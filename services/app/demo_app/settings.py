"""The app's settings: every environment variable it reads, parsed once into one frozen object."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from sidecar_common import SettingsError, setting

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
MAX_WORKERS = 64
MAX_THREADS = 256
MAX_UPSTREAM_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class Settings:
    """Environment of the demo app; ``python -m demo_app --help`` lists it."""

    port: int = setting("APP_PORT", 8080, "TCP port gunicorn listens on")
    host: str = setting("APP_HOST", "0.0.0.0", "address gunicorn binds (0.0.0.0 = every interface of the pod)")
    config_dir: Path = setting("APP_CONFIG_DIR", Path("/etc/app/config"), "directory of config files (YAML/JSON)")
    log_file: Path | None = setting(
        "APP_LOG_FILE", Path("/var/log/app/app.log"), "JSON log lines also go here (empty = stdout only)"
    )
    db_host: str = setting("DB_HOST", "localhost", "database host named in /api/greeting (the classic env example)")
    upstream_url: str | None = setting(
        "APP_UPSTREAM_URL", None, "base URL of an upstream demo app called by /api/greeting (unset = none)"
    )
    upstream_timeout_seconds: float = setting(
        "APP_UPSTREAM_TIMEOUT_SECONDS", 2.0, "connect+read timeout of the upstream call, seconds"
    )
    statsd_host: str = setting("STATSD_HOST", "localhost", "statsd (exporter) host for UDP metrics (empty = none)")
    statsd_port: int = setting("STATSD_PORT", 9125, "statsd UDP port")
    workers: int = setting("APP_WORKERS", 2, "gunicorn worker processes")
    threads: int = setting("APP_THREADS", 4, "threads per gunicorn worker")
    name: str = setting("APP_NAME", "demo-app", "service name in logs and /stats (the web tier sets web)")
    log_level: str = setting("LOG_LEVEL", "INFO", "minimum log level: DEBUG, INFO, WARNING, ERROR or CRITICAL")

    def validate(self) -> None:
        """Refuse values that parse but cannot work, naming the variable."""
        for variable, port in (("APP_PORT", self.port), ("STATSD_PORT", self.statsd_port)):
            if not 1 <= port <= 65535:
                raise SettingsError(variable, f"{port} is not a port (1-65535)")
        if not 1 <= self.workers <= MAX_WORKERS:
            raise SettingsError("APP_WORKERS", f"{self.workers} is outside 1-{MAX_WORKERS}")
        if not 1 <= self.threads <= MAX_THREADS:
            raise SettingsError("APP_THREADS", f"{self.threads} is outside 1-{MAX_THREADS}")
        if not 0 < self.upstream_timeout_seconds <= MAX_UPSTREAM_TIMEOUT_SECONDS:
            raise SettingsError(
                "APP_UPSTREAM_TIMEOUT_SECONDS",
                f"{self.upstream_timeout_seconds} is outside (0, {MAX_UPSTREAM_TIMEOUT_SECONDS:g}]",
            )
        if self.upstream_url is not None:
            parts = urlsplit(self.upstream_url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise SettingsError("APP_UPSTREAM_URL", f"{self.upstream_url!r} is not an http(s) URL")
        if self.log_level.upper() not in LOG_LEVELS:
            raise SettingsError("LOG_LEVEL", f"{self.log_level!r} is not one of {', '.join(LOG_LEVELS)}")
        if not self.name.strip():
            raise SettingsError("APP_NAME", "must not be empty")
