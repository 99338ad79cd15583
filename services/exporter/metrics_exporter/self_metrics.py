"""The exporter's own metrics: per-source up and duration, what the statsd path received, rejected and dropped."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from metrics_exporter.json_source import RuleErrorReason
from metrics_exporter.reloader import ReloadStatus
from metrics_exporter.statsd.ingest import IngestStats
from metrics_exporter.store import StoreCounts


@dataclass(frozen=True)
class SourceResult:
    """How one source answered this scrape."""

    name: str
    up: bool
    duration_seconds: float
    error: str = ""


def self_metrics(
    sources: list[SourceResult],
    ingest: IngestStats,
    store: StoreCounts,
    reload: ReloadStatus,
    json_rule_errors: Mapping[tuple[str, RuleErrorReason], int],
    collisions: Mapping[str, int],
) -> list[Metric]:
    """Build every ``exporter_*`` family from plain numbers (a pure function, so it is easy to test)."""
    up = GaugeMetricFamily("exporter_source_up", "1 if the source answered this scrape, 0 if not.", labels=["source"])
    duration = GaugeMetricFamily(
        "exporter_source_duration_seconds", "Time this scrape spent collecting from the source.", labels=["source"]
    )
    for result in sources:
        up.add_metric([result.name], 1.0 if result.up else 0.0)
        duration.add_metric([result.name], result.duration_seconds)

    errors = CounterMetricFamily(
        "exporter_statsd_parse_errors_total",
        "statsd packets, lines or tags rejected, by reason (invalid_tag: the tag was dropped, the line kept).",
        labels=["reason"],
    )
    for reason, count in ingest.parse_errors.items():
        errors.add_metric([reason.value], count)
    dropped = CounterMetricFamily(
        "exporter_statsd_dropped_total",
        "statsd lines deliberately not exported: by a drop rule, or unmapped with EXPORTER_UNMAPPED=drop.",
        labels=["reason"],
    )
    for reason_name, count in ingest.dropped.items():
        dropped.add_metric([reason_name], count)

    series_dropped = CounterMetricFamily(
        "exporter_series_dropped_total",
        "Updates refused because a metric reached EXPORTER_MAX_SERIES_PER_METRIC (or a set its member cap), "
        "or families left out because their name was already exported.",
        labels=["metric"],
    )
    merged = dict(store.dropped)
    for name, count in collisions.items():
        merged[name] = merged.get(name, 0) + count
    for name, count in sorted(merged.items()):
        series_dropped.add_metric([name], count)

    rule_errors = CounterMetricFamily(
        "exporter_json_rule_errors_total",
        "JSON rule matches that produced no sample, by rule and reason.",
        labels=["rule", "reason"],
    )
    for (rule, rule_reason), count in sorted(json_rule_errors.items()):
        rule_errors.add_metric([rule, rule_reason.value], count)

    reloads = CounterMetricFamily(
        "exporter_config_reloads_total", "Mapping reloads (SIGHUP or POST /-/reload), by result.", labels=["result"]
    )
    reloads.add_metric(["success"], reload.successes)
    reloads.add_metric(["failure"], reload.failures)

    return [
        up,
        duration,
        CounterMetricFamily("exporter_statsd_packets_total", "UDP packets received.", value=ingest.packets),
        CounterMetricFamily(
            "exporter_statsd_lines_total", "statsd lines received (parsed or not).", value=ingest.lines
        ),
        errors,
        CounterMetricFamily(
            "exporter_unmapped_total",
            "statsd lines no mapping rule matched (exported under a sanitized name, or dropped).",
            value=ingest.unmapped,
        ),
        dropped,
        series_dropped,
        GaugeMetricFamily(
            "exporter_statsd_metrics",
            "statsd metric names currently held; EXPORTER_MAX_METRICS caps them, a name whose series expired is freed.",
            value=store.metrics,
        ),
        GaugeMetricFamily("exporter_statsd_series", "statsd series currently held.", value=store.series),
        CounterMetricFamily(
            "exporter_series_expired_total", "statsd series removed after their ttl.", value=store.expired
        ),
        rule_errors,
        GaugeMetricFamily(
            "exporter_config_last_reload_successful",
            "1 if the last mapping (re)load succeeded, 0 if the last reload was refused.",
            value=1.0 if reload.last_successful else 0.0,
        ),
        GaugeMetricFamily(
            "exporter_config_last_reload_success_timestamp_seconds",
            "Unix time of the last successful mapping (re)load.",
            value=reload.last_success_time,
        ),
        reloads,
    ]
