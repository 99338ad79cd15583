"""The real Prometheus container scrapes the pod, counts exactly the requests sent, and feeds the dashboard."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.stack import APP_PORT_IN_POD, HTTP_TIMEOUT_SECONDS, REPO_ROOT, Stack
from tests.support import wait_until

SCRAPE_TIMEOUT_SECONDS = 60.0
POD_JOBS = ("exporter", "config-sidecar", "log-sidecar")
DASHBOARD = REPO_ROOT / "deploy/compose/grafana/dashboards/sidecar-lab.json"
# A status only this test asks for: health checks, /stats scrapes, reloads and the web
# tier's calls all answer 200, so the 418 series counts our requests and nothing else.
PROBE_STATUS = "418"
PROBE_REQUESTS = 25
# Every series the Grafana dashboard plots, as the exporter and sidecars name them.
DASHBOARD_SERIES = (
    "http_requests_total",
    "http_request_duration_seconds_bucket",
    "app_config_info",
    "app_requests_in_flight",
    "config_sidecar_published_version_info",
    "config_sidecar_drift",
    "log_sidecar_lag_bytes",
    "log_sidecar_documents_total",
    "log_sidecar_sink_up",
    # The mesh panels, by the names the real Envoy writes (api pod's Envoy: app="demo-app").
    "envoy_http_downstream_rq_total",
    "envoy_http_downstream_rq_xx",
    "envoy_http_downstream_rq_time_bucket",
    "envoy_listener_ssl_handshake",
    "envoy_listener_ssl_connection_error",
    "envoy_cluster_upstream_rq_retry",
    "envoy_http_fault_aborts_injected",
    "envoy_http_rbac_denied",
)


def target_health(stack: Stack) -> dict[str, str]:
    """Health of every active scrape target, by job."""
    body = stack.get_json(f"{stack.prometheus}/api/v1/targets", state="active")
    return {target["labels"]["job"]: target["health"] for target in body["data"]["activeTargets"]}


def exporter_probe_count(stack: Stack) -> float:
    """The exporter's own http_requests_total{status=PROBE_STATUS} (0 before the first one)."""
    text = requests.get(f"{stack.exporter}/metrics", timeout=HTTP_TIMEOUT_SECONDS).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "http_requests_total" and sample.labels.get("status") == PROBE_STATUS
    )


def test_prometheus_scrapes_every_container_of_the_pod(stack: Stack) -> None:
    def pod_jobs_up() -> bool:
        health = target_health(stack)
        return all(health.get(job) == "up" for job in POD_JOBS)

    wait_until(pod_jobs_up, timeout=SCRAPE_TIMEOUT_SECONDS, interval=1.0, message=f"Prometheus targets {POD_JOBS} up")
    assert {job: target_health(stack).get(job) for job in POD_JOBS} == dict.fromkeys(POD_JOBS, "up")


def test_app_request_counter_in_prometheus_equals_the_requests_sent(stack: Stack) -> None:
    expr = f'sum(http_requests_total{{job="exporter",status="{PROBE_STATUS}"}}) or vector(0)'
    # Start from a value Prometheus has caught up with, so the difference is ours alone.
    start = exporter_probe_count(stack)
    wait_until(
        lambda: stack.prometheus_value(expr) == start,
        timeout=SCRAPE_TIMEOUT_SECONDS,
        interval=1.0,
        message="Prometheus caught up with the exporter",
    )

    answers = stack.in_pod(APP_PORT_IN_POD, f"/api/work?status={PROBE_STATUS}", count=PROBE_REQUESTS)
    assert [answer.status for answer in answers] == [int(PROBE_STATUS)] * PROBE_REQUESTS

    expected = start + PROBE_REQUESTS
    wait_until(
        lambda: stack.prometheus_value(expr) == expected,
        timeout=SCRAPE_TIMEOUT_SECONDS,
        interval=1.0,
        message=f"Prometheus counting {expected} requests with status {PROBE_STATUS}",
    )
    # Two more scrapes later it still says exactly that: every gunicorn worker counted once.
    seen_at = time.time()
    wait_until(
        lambda: (stack.prometheus_value('max(timestamp(up{job="exporter"}))') or 0) > seen_at + 5,
        timeout=SCRAPE_TIMEOUT_SECONDS,
        interval=1.0,
        message="two more scrapes of the exporter",
    )
    assert stack.prometheus_value(expr) == expected
    total = stack.prometheus_value('sum(http_requests_total{job="exporter"})')
    assert total is not None
    assert total >= expected


def dashboard_queries() -> list[str]:
    """Every PromQL expression of the provisioned Grafana dashboard, variables filled in."""
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text())
    expressions = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    return [expr.replace("$app", "demo-app").replace("$__rate_interval", "1m") for expr in expressions]


@pytest.mark.parametrize("expr", dashboard_queries())
def test_grafana_dashboard_query_is_valid_promql(stack: Stack, expr: str) -> None:
    stack.prometheus_query(expr)


@pytest.mark.parametrize("series", DASHBOARD_SERIES)
def test_series_the_dashboard_plots_exists_in_prometheus(stack: Stack, series: str) -> None:
    # The emulator ships logs and requests flow, so each of these has a sample once scraped.
    requests.get(f"{stack.web}/api/greeting", timeout=HTTP_TIMEOUT_SECONDS)  # web -> mesh -> the app
    wait_until(
        lambda: stack.prometheus_query(f'count({{__name__="{series}",app="demo-app"}})'),
        timeout=SCRAPE_TIMEOUT_SECONDS,
        interval=1.0,
        message=f"series {series} in Prometheus",
    )
