"""The sidecar's Prometheus metrics; the names are an interface (README's Metrics; dashboards and alerts use them)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

SYNC_RESULTS = ("published", "unchanged", "invalid", "error")
# From a fast inotify path (~tens of ms) up to kubelet-scale delays and a down app.
PROPAGATION_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


class SidecarMetrics:
    """Every series the config sidecar exports, registered on the given registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.syncs = Counter("config_sidecar_syncs", "Sync passes by result.", ["result"], registry=registry)
        for result in SYNC_RESULTS:
            self.syncs.labels(result)  # export zeros, so rate() works from the first scrape
        self.validation_failures = Counter(
            "config_sidecar_validation_failures",
            "Distinct source versions refused by validation (parse error or schema violation).",
            registry=registry,
        )
        # Which files hold up the newest source version: a bad mesh/routes.yaml reads differently
        # from a bad app.yaml on a dashboard or in an alert. One series per refused file (a handful).
        self.refused_files = Gauge(
            "config_sidecar_refused_files",
            "1 for each file of the newest source version that failed validation (none while it is published).",
            ["file"],
            registry=registry,
        )
        self.reload_attempts = Counter(
            "config_sidecar_reload_attempts", "Reload requests or signals sent to the app.", registry=registry
        )
        self.reload_failures = Counter(
            "config_sidecar_reload_failures",
            "Reload attempts that failed or were not acknowledged with the published version.",
            registry=registry,
        )
        self.last_success = Gauge(
            "config_sidecar_last_success_timestamp_seconds",
            "Unix time of the last sync that ended with the source published (or already published).",
            registry=registry,
        )
        # Labelled gauges rather than Info: an Info exports a label-less "1" before the first
        # version is known, which would read as "some version is published".
        self.published_version = Gauge(
            "config_sidecar_published_version_info",
            "1 for the version of the set published into the target dir.",
            ["version"],
            registry=registry,
        )
        self.applied_version = Gauge(
            "config_sidecar_applied_version_info",
            "1 for the version the app last acknowledged.",
            ["version"],
            registry=registry,
        )
        self.drift = Gauge(
            "config_sidecar_drift",
            "1 while the published version is not yet acknowledged by the app.",
            registry=registry,
        )
        self.propagation = Histogram(
            "config_sidecar_propagation_seconds",
            "Time from the change being detected to the app acknowledging the new version.",
            buckets=PROPAGATION_BUCKETS,
            registry=registry,
        )


def show_version(gauge: Gauge, version: str | None) -> None:
    """Make ``version`` the only series of an ``*_version_info`` gauge (none while unknown)."""
    gauge.clear()
    if version is not None:
        gauge.labels(version).set(1)
