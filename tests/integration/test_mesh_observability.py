"""What the mesh proxy shows: JSON access-log lines the log sidecar ships, stats a real Prometheus scrapes.

Envoy writes one JSON line per request (ECS names, as the app's log) to the pod's
log volume; the log sidecar (a real process, LOG_SINK=file) picks it up with its
default ``*.log`` glob. Debian's Prometheus scrapes ``/stats/prometheus`` on the
stats port and sees web's outbound requests and the api's inbound ones.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.integration.log_sidecar_process import Sidecar
from tests.integration.mesh_pod import API, WEB, MeshProxy, StartApp, StartProxy, get
from tests.support import wait_until
from tests.support.prometheus import StartPrometheus


@pytest.fixture
def pods(start_app: StartApp, start_proxy: StartProxy) -> tuple[MeshProxy, MeshProxy]:
    """(web, api): web's proxy in front of the api's, both writing access logs into their logs/."""
    api = start_proxy("api", API, app_port=start_app("api").port)
    return start_proxy("web", WEB, upstream_ports=(api.inbound_port,)), api


def access_lines(proxy: MeshProxy) -> list[dict[str, Any]]:
    if not proxy.access_log.exists():
        return []
    return [json.loads(line) for line in proxy.access_log.read_text().splitlines()]


def test_access_log_lines_are_ecs_json_and_the_log_sidecar_ships_them(
    tmp_path: Path, pods: tuple[MeshProxy, MeshProxy], sidecars: list[Sidecar]
) -> None:
    web, api = pods
    for _ in range(3):
        assert get(web.outbound_port, "/api/greeting")[0] == 200
    assert get(web.outbound_port, "/api/missing")[0] == 200  # the scripted app answers any path
    # Envoy flushes its access log at least every second.
    wait_until(lambda: len(access_lines(api)) == 4 and len(access_lines(web)) == 4, timeout=10, message="lines")
    inbound = access_lines(api)[0]
    assert inbound["network.direction"] == "inbound"
    assert inbound["http.request.method"] == "GET"
    assert inbound["url.original"] == "/api/greeting"
    assert inbound["http.response.status_code"] == 200
    assert inbound["tls.client.x509.alternative_names"] == "spiffe://sidecar-lab.local/ns/sidecar-lab/sa/web"
    assert inbound["envoy.upstream_cluster"] == "local_app"
    outbound = access_lines(web)[0]
    assert outbound["network.direction"] == "outbound"
    assert outbound["tls.server.x509.alternative_names"] == "spiffe://sidecar-lab.local/ns/sidecar-lab/sa/demo-app"
    assert outbound["http.request.id"] == inbound["http.request.id"]  # one request id across both proxies

    shipped = tmp_path / "shipped.ndjson"
    sidecar = Sidecar(
        tmp_path,
        LOG_PATHS=str(api.logs / "*.log"),
        LOG_SINK="file",
        LOG_FILE_SINK_PATH=str(shipped),
    )
    sidecars.append(sidecar.start())

    def shipped_access_lines() -> list[dict[str, Any]]:
        if not shipped.exists():
            return []
        documents = [json.loads(line) for line in shipped.read_text().splitlines() if line.strip()]
        return [doc for doc in documents if doc.get("event.dataset") == "envoy.access"]

    sidecar.process.wait_for(lambda: len(shipped_access_lines()) == 4, "the access lines shipped")
    first = shipped_access_lines()[0]
    assert first["log"]["file"]["path"] == str(api.access_log)
    assert first["@timestamp"] == inbound["@timestamp"]


def test_prometheus_scrapes_envoy_on_the_stats_port(
    pods: tuple[MeshProxy, MeshProxy], prometheus: StartPrometheus
) -> None:
    web, api = pods
    value = prometheus([web.stats_port, api.stats_port], metrics_path="/stats/prometheus").value
    for _ in range(5):
        assert get(web.outbound_port, "/api/greeting")[0] == 200

    wait_until(lambda: value("sum(up)") == 2, timeout=30, message="both targets up")
    wait_until(
        lambda: value('sum(envoy_cluster_upstream_rq_completed{envoy_cluster_name="upstream"})') == 5,
        timeout=30,
        message="web's outbound requests scraped",
    )
    inbound_2xx = (
        'sum(envoy_http_downstream_rq_xx{envoy_http_conn_manager_prefix="inbound",envoy_response_code_class="2"})'
    )
    assert value(inbound_2xx) == 5
    assert value("sum(envoy_http_rbac_allowed)") == 5
