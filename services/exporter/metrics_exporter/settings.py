"""The exporter's settings, read once from the environment into a frozen dataclass."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from urllib.parse import urlsplit

from sidecar_common import SettingsError, setting


class UnmappedPolicy(StrEnum):
    """What happens to a statsd metric that no mapping rule matches."""

    EXPORT = "export"
    DROP = "drop"


MIN_READ_BUFFER_BYTES = 65536


@dataclass(frozen=True)
class Settings:
    """Every variable the exporter reads; ``--help`` and the README table list the same fields."""

    port: int = setting("EXPORTER_PORT", 9102, "HTTP port for /metrics, /livez, /readyz and /-/reload")
    host: str = setting("EXPORTER_HOST", "0.0.0.0", "address the HTTP server binds")
    statsd_port: int = setting("STATSD_PORT", 9125, "UDP port that receives statsd/DogStatsD lines")
    statsd_host: str = setting("STATSD_HOST", "0.0.0.0", "address the statsd UDP socket binds")
    config_file: Path | None = setting(
        "EXPORTER_CONFIG", None, "mapping YAML (statsd rules and json rules); unset = the built-in default mapping"
    )
    json_url: str = setting(
        "EXPORTER_JSON_URL", "http://localhost:8080/stats", "JSON stats fetched at scrape time; empty disables it"
    )
    json_timeout_seconds: float = setting(
        "EXPORTER_JSON_TIMEOUT_SECONDS", 5.0, "longest a JSON fetch may take (the scrape timeout may shorten it)"
    )
    scrape_timeout_margin_seconds: float = setting(
        "EXPORTER_SCRAPE_TIMEOUT_MARGIN_SECONDS",
        0.5,
        "subtracted from X-Prometheus-Scrape-Timeout-Seconds so /metrics answers before Prometheus gives up",
    )
    # Annotated str (the settings loader parses by annotation); the parser still refuses unknown values.
    unmapped: str = setting(
        "EXPORTER_UNMAPPED",
        UnmappedPolicy.EXPORT.value,
        "export (sanitized name) or drop statsd metrics no rule matches",
        parse=UnmappedPolicy,
    )
    max_series_per_metric: int = setting(
        "EXPORTER_MAX_SERIES_PER_METRIC", 1000, "new label sets beyond this per metric are dropped and counted"
    )
    max_metrics: int = setting("EXPORTER_MAX_METRICS", 1000, "new statsd metric names beyond this are rejected")
    default_ttl_seconds: float = setting(
        "EXPORTER_DEFAULT_TTL_SECONDS", 0.0, "expire statsd series not updated for this long; 0 = never"
    )
    statsd_read_buffer_bytes: int = setting(
        "STATSD_READ_BUFFER_BYTES", 8388608, "SO_RCVBUF requested for the UDP socket (the kernel caps it)"
    )
    log_level: str = setting("EXPORTER_LOG_LEVEL", "INFO", "DEBUG, INFO, WARNING or ERROR")

    def validate(self) -> None:
        """Refuse values that parse but cannot work, naming the variable."""
        for variable, port in (("EXPORTER_PORT", self.port), ("STATSD_PORT", self.statsd_port)):
            if not 0 <= port <= 65535:
                raise SettingsError(variable, f"port {port} out of range 0..65535")
        if self.json_timeout_seconds <= 0:
            raise SettingsError("EXPORTER_JSON_TIMEOUT_SECONDS", "must be > 0")
        if self.scrape_timeout_margin_seconds < 0:
            raise SettingsError("EXPORTER_SCRAPE_TIMEOUT_MARGIN_SECONDS", "must be >= 0")
        if self.max_series_per_metric < 1:
            raise SettingsError("EXPORTER_MAX_SERIES_PER_METRIC", "must be >= 1")
        if self.max_metrics < 1:
            raise SettingsError("EXPORTER_MAX_METRICS", "must be >= 1")
        if self.default_ttl_seconds < 0:
            raise SettingsError("EXPORTER_DEFAULT_TTL_SECONDS", "must be >= 0")
        if self.statsd_read_buffer_bytes < MIN_READ_BUFFER_BYTES:
            raise SettingsError("STATSD_READ_BUFFER_BYTES", f"must be >= {MIN_READ_BUFFER_BYTES}")
        if self.log_level.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise SettingsError("EXPORTER_LOG_LEVEL", f"unknown level {self.log_level!r}")
        if self.json_url:
            problem = _http_url_problem(self.json_url)
            if problem:
                raise SettingsError("EXPORTER_JSON_URL", problem)


def _http_url_problem(url: str) -> str | None:
    """Why ``url`` cannot be fetched over HTTP (checked here, so a typo exits 2 instead of crashing later)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return "must start with http:// or https://"
    try:
        parts.port  # noqa: B018 - urllib parses the port lazily and raises on a bad one
    except ValueError:
        return "has an invalid port"
    if not parts.hostname:
        return "has no host"
    return None
