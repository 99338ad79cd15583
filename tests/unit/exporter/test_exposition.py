"""One scrape: the deadline arithmetic, per-source up/duration, name collisions, and the self-metrics."""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from metrics_exporter.exposition import Exposition, fetch_budget, parse_scrape_timeout
from metrics_exporter.json_source import RuleErrorReason
from metrics_exporter.reloader import ReloadStatus
from metrics_exporter.self_metrics import SourceResult, self_metrics
from metrics_exporter.sources import SourceError
from metrics_exporter.statsd.ingest import IngestStats
from metrics_exporter.statsd.parser import Reason
from metrics_exporter.statsd.source import StatsdSource
from metrics_exporter.store import SeriesStore, StoreCounts
from tests.unit.exporter.conftest import render, samples_of, value


@pytest.mark.parametrize(
    ("header", "expected"),
    [(None, None), ("", None), ("10", 10.0), ("2.5", 2.5), ("0", None), ("-1", None), ("soon", None), ("inf", None)],
)
def test_parse_scrape_timeout(header: str | None, expected: float | None) -> None:
    assert parse_scrape_timeout(header) == expected


@pytest.mark.parametrize(
    ("scrape_timeout", "configured", "margin", "budget"),
    [
        (None, 5.0, 0.5, 5.0),  # no header: the configured timeout
        (10.0, 5.0, 0.5, 5.0),  # the configured timeout is already shorter
        (2.0, 5.0, 0.5, 1.5),  # the header minus the margin
        (0.4, 5.0, 0.5, 0.2),  # the margin would eat it all: half the header
    ],
)
def test_fetch_budget(scrape_timeout: float | None, configured: float, margin: float, budget: float) -> None:
    assert fetch_budget(scrape_timeout, configured, margin) == pytest.approx(budget)


class StaticSource:
    def __init__(self, name: str, families: list[Metric] | None = None, error: str = "") -> None:
        self.name = name
        self.families = families or []
        self.error = error
        self.timeouts: list[float] = []

    def collect(self, timeout: float) -> list[Metric]:
        self.timeouts.append(timeout)
        if self.error:
            raise SourceError(self.error)
        return self.families


def up_only(results: list[SourceResult], collisions: Mapping[str, int]) -> list[Metric]:
    up = GaugeMetricFamily("exporter_source_up", "up", labels=["source"])
    for result in results:
        up.add_metric([result.name], 1.0 if result.up else 0.0)
    dropped = GaugeMetricFamily("collisions", "test view of the collisions", labels=["metric"])
    for name, count in collisions.items():
        dropped.add_metric([name], count)
    return [up, dropped]


def test_each_source_gets_the_budget_and_a_failing_one_does_not_spoil_the_page() -> None:
    healthy = StaticSource("statsd", [GaugeMetricFamily("kept", "kept", value=1)])
    broken = StaticSource("json", error="connection")
    exposition = Exposition([healthy, broken], up_only, timeout_seconds=5, margin_seconds=0.5)
    found = samples_of(render(exposition.scrape(scrape_timeout=3)))
    assert value(found, "exporter_source_up", source="statsd") == 1
    assert value(found, "exporter_source_up", source="json") == 0
    assert value(found, "kept") == 1
    assert healthy.timeouts == broken.timeouts == [2.5]


class BuggySource:
    name = "json"

    def collect(self, timeout: float) -> list[Metric]:
        raise KeyError("a bug, not a SourceError")


def test_a_source_that_fails_unexpectedly_is_down_and_the_page_still_serves(caplog: pytest.LogCaptureFixture) -> None:
    healthy = StaticSource("statsd", [GaugeMetricFamily("kept", "kept", value=1)])
    exposition = Exposition([healthy, BuggySource()], up_only, timeout_seconds=5, margin_seconds=0.5)
    found = samples_of(render(exposition.scrape()))
    assert value(found, "exporter_source_up", source="json") == 0
    assert value(found, "exporter_source_up", source="statsd") == 1
    assert value(found, "kept") == 1
    assert any(record.exc_info for record in caplog.records if record.getMessage() == "source failed unexpectedly")


def test_a_dead_statsd_receiver_makes_the_statsd_source_down() -> None:
    alive = [True]
    store = SeriesStore()
    exposition = Exposition([StatsdSource(store, healthy=lambda: alive[0])], up_only, 5, 0.5)
    assert value(samples_of(render(exposition.scrape())), "exporter_source_up", source="statsd") == 1
    alive[0] = False
    assert value(samples_of(render(exposition.scrape())), "exporter_source_up", source="statsd") == 0


def test_a_family_name_exported_twice_is_left_out_and_counted() -> None:
    first = StaticSource("statsd", [GaugeMetricFamily("app_uptime_seconds", "from statsd", value=1)])
    second = StaticSource("json", [GaugeMetricFamily("app_uptime_seconds", "from json", value=2)])
    exposition = Exposition([first, second], up_only, timeout_seconds=5, margin_seconds=0.5)
    exposition.scrape()
    found = samples_of(render(exposition.scrape()))
    assert value(found, "app_uptime_seconds") == 1
    assert value(found, "collisions", metric="app_uptime_seconds") == 2


def test_render_negotiates_openmetrics() -> None:
    exposition = Exposition([StaticSource("statsd")], up_only, timeout_seconds=5, margin_seconds=0.5)
    body, content_type = exposition.render("application/openmetrics-text; version=1.0.0")
    assert content_type.startswith("application/openmetrics-text")
    assert body.endswith(b"# EOF\n")
    body, content_type = exposition.render("")
    assert content_type.startswith("text/plain; version=0.0.4")
    assert not body.endswith(b"# EOF\n")


def test_self_metrics_report_every_counter() -> None:
    ingest = IngestStats(packets=7, lines=9, unmapped=2)
    ingest.parse_errors[Reason.INVALID_VALUE] = 3
    ingest.dropped["rule"] = 4
    families = self_metrics(
        [SourceResult("statsd", True, 0.001), SourceResult("json", False, 0.25, "timeout")],
        ingest,
        StoreCounts(metrics=2, series=5, expired=1, dropped={"user_logins_total": 6}),
        ReloadStatus(False, successes=2, failures=1, last_success_time=1700000000.0, source="m.yaml", digest="d"),
        {("app_uptime_seconds", RuleErrorReason.NO_MATCH): 8},
        {"app_uptime_seconds": 1},
    )
    found = samples_of(render(families))
    expected = {
        ("exporter_source_up", (("source", "json"),)): 0,
        ("exporter_source_duration_seconds", (("source", "json"),)): 0.25,
        ("exporter_statsd_packets_total", ()): 7,
        ("exporter_statsd_lines_total", ()): 9,
        ("exporter_statsd_parse_errors_total", (("reason", "invalid_value"),)): 3,
        ("exporter_statsd_parse_errors_total", (("reason", "negative_counter"),)): 0,
        ("exporter_unmapped_total", ()): 2,
        ("exporter_statsd_dropped_total", (("reason", "rule"),)): 4,
        ("exporter_series_dropped_total", (("metric", "user_logins_total"),)): 6,
        ("exporter_series_dropped_total", (("metric", "app_uptime_seconds"),)): 1,
        ("exporter_statsd_metrics", ()): 2,
        ("exporter_statsd_series", ()): 5,
        ("exporter_series_expired_total", ()): 1,
        ("exporter_json_rule_errors_total", (("reason", "no_match"), ("rule", "app_uptime_seconds"))): 8,
        ("exporter_config_last_reload_successful", ()): 0,
        ("exporter_config_last_reload_success_timestamp_seconds", ()): 1700000000.0,
        ("exporter_config_reloads_total", (("result", "success"),)): 2,
        ("exporter_config_reloads_total", (("result", "failure"),)): 1,
    }
    for (name, labels), number in expected.items():
        assert value(found, name, **dict(labels)) == number, name
