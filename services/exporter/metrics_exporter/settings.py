"""The exporter's settings, read once from the environment into a frozen dataclass."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from urllib.parse import urlsplit

from sidecar_common import (
    SettingsError,
    admin_host_setting,
    admin_port_setting,
    control_port_setting,
    log_level_setting,
    port_setting,
    setting,
)


class UnmappedPolicy(StrEnum):
    """What happens to a statsd metric that no mapping rule matches."""

    EXPORT = "export"
    DROP = "drop"


MIN_READ_BUFFER_BYTES = 65536


@dataclass(frozen=True)
class Settings:
    """Every variable the exporter reads; ``--help`` and the README table list the same fields."""

    log_level: str = log_level_setting()
    admin_host: str = admin_host_setting()
    # EXPORTER_PORT: the older name, still read (compose, manifests and the architecture table use it).
    admin_port: int = admin_port_setting(9102, "/metrics, /livez and /readyz", aliases=("EXPORTER_PORT",))
    control_port: int = control_port_setting(9101, "POST /-/reload")
    statsd_port: int = port_setting("STATSD_PORT", 9125, "UDP port that receives statsd/DogStatsD lines")
    statsd_host: str = setting("STATSD_HOST", "0.0.0.0", "address the statsd UDP socket binds")
    config_file: Path | None = setting(
        "EXPORTER_CONFIG", None, "mapping YAML (statsd rules and json rules); unset = the built-in default mapping"
    )
    json_url: str = setting(
        "EXPORTER_JSON_URL", "http://localhost:8080/stats", "JSON stats fetched at scrape time; empty disables it"
    )
    json_timeout_seconds: float = setting(
        "EXPORTER_JSON_TIMEOUT_SECONDS",
        5.0,
        "longest a JSON fetch may take (the scrape timeout may shorten it)",
        exclusive_minimum=0,
    )
    scrape_timeout_margin_seconds: float = setting(
        "EXPORTER_SCRAPE_TIMEOUT_MARGIN_SECONDS",
        0.5,
        "subtracted from X-Prometheus-Scrape-Timeout-Seconds so /metrics answers before Prometheus gives up",
        minimum=0,
    )
    unmapped: str = setting(
        "EXPORTER_UNMAPPED",
        UnmappedPolicy.EXPORT.value,
        "export (sanitized name) or drop statsd metrics no rule matches",
        choices=tuple(policy.value for policy in UnmappedPolicy),
    )
    max_series_per_metric: int = setting(
        "EXPORTER_MAX_SERIES_PER_METRIC",
        1000,
        "new label sets beyond this per metric are dropped and counted",
        minimum=1,
    )
    max_metrics: int = setting(
        "EXPORTER_MAX_METRICS", 1000, "new statsd metric names beyond this are rejected", minimum=1
    )
    default_ttl_seconds: float = setting(
        "EXPORTER_DEFAULT_TTL_SECONDS", 0.0, "expire statsd series not updated for this long; 0 = never", minimum=0
    )
    statsd_read_buffer_bytes: int = setting(
        "STATSD_READ_BUFFER_BYTES",
        8388608,
        "SO_RCVBUF requested for the UDP socket (the kernel caps it)",
        minimum=MIN_READ_BUFFER_BYTES,
    )

    def validate(self) -> None:
        """Refuse values that parse but cannot work, naming the variable (ranges are declared above)."""
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
