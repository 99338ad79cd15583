"""The mesh on the compose stack: web → web's Envoy → mTLS → the api pod's Envoy → the app, and its knobs.

Both pods' Envoys are the real mesh-proxy image; the certificates come from the one-shot
mesh-ca; web's policy is its config source (the throwaway copy E2E_WEB_CONFIG_SOURCE),
published by web's config sidecar into the directory its Envoy watches.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from sidecar_common import content_version, read_config_files
from tests.e2e.config_edits import RELOAD_TIMEOUT_SECONDS, write_atomically
from tests.e2e.stack import APP_PORT_IN_POD, HTTP_TIMEOUT_SECONDS, Stack, field
from tests.support import wait_until

API_IDENTITY = "spiffe://sidecar-lab.local/ns/sidecar-lab/sa/demo-app"
WEB_IDENTITY = "spiffe://sidecar-lab.local/ns/sidecar-lab/sa/web"
INBOUND_PORT_IN_POD = 8443
OUTBOUND_PORT_IN_POD = 8001
ROUTES = "mesh/routes.yaml"
SCRAPE_TIMEOUT_SECONDS = 60.0
SHIPPING_TIMEOUT_SECONDS = 60.0
SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>[^}]*)\})? (?P<value>\S+)$")
LABEL = re.compile(r'(\w+)="([^"]*)"')


def envoy_stat(url: str, name: str, **labels: str) -> float:
    """One Envoy series from a pod's stats port (/stats/prometheus), summed over the other labels.

    By the names Envoy writes (and Prometheus stores): a counter without ``_total``.
    """
    text = requests.get(f"{url}/stats/prometheus", timeout=HTTP_TIMEOUT_SECONDS).text
    total = 0.0
    for line in text.splitlines():
        match = SAMPLE.match(line)
        if match and match["name"] == name:
            found = dict(LABEL.findall(match["labels"] or ""))
            if all(found.get(key) == value for key, value in labels.items()):
                total += float(match["value"])
    return total


def web_status(stack: Stack) -> int:
    return requests.get(f"{stack.web}/api/greeting", timeout=HTTP_TIMEOUT_SECONDS).status_code


@pytest.fixture
def web_config_source(stack: Stack) -> Iterator[Path]:
    """Web's config source (the e2e copy), its policy put back after the test."""
    source = stack.web_config_source
    if source is None or not (source / ROUTES).is_file():
        pytest.skip("the stack's web config source (E2E_WEB_CONFIG_SOURCE) is not a readable directory here")
    if source.resolve() == (Path(__file__).resolve().parents[2] / "deploy/compose/web/config").resolve():
        pytest.skip("the stack mounts the repository's own web config; these tests edit only a copy")
    original = (source / ROUTES).read_text()
    yield source
    write_atomically(source / ROUTES, original)
    version = content_version(read_config_files(source))
    wait_until(
        lambda: published_version(stack) == version,
        timeout=RELOAD_TIMEOUT_SECONDS,
        interval=0.5,
        message="web's original policy published again",
    )
    wait_until(lambda: web_status(stack) == 200, timeout=RELOAD_TIMEOUT_SECONDS, interval=0.5, message="web 200")


def web_sidecar_status(stack: Stack) -> dict[str, Any]:
    status: dict[str, Any] = stack.get_json(f"{stack.web_config_sidecar}/status")
    return status


def published_version(stack: Stack) -> str | None:
    version = web_sidecar_status(stack)["published"]["version"]
    return str(version) if version is not None else None


def test_web_reaches_the_api_through_both_envoys_over_mtls(stack: Stack) -> None:
    request_id = f"e2e-mesh-{uuid.uuid4()}"
    response = requests.get(f"{stack.web}/api/greeting", headers={"X-Request-Id": request_id}, timeout=10)
    assert response.status_code == 200, response.text
    assert response.json()["upstream"]["service"] == "demo-app"
    # Web's Envoy opened the connection over TLS; the api pod's Envoy took it on its inbound listener.
    assert envoy_stat(stack.web_mesh_stats, "envoy_cluster_ssl_handshake", envoy_cluster_name="upstream") >= 1
    assert envoy_stat(stack.mesh_stats, "envoy_listener_ssl_handshake", envoy_listener_address="0.0.0.0_8443") >= 1

    # The api pod's Envoy logged the caller's identity from its certificate, and the log sidecar shipped it.
    def inbound_doc() -> dict[str, Any] | None:
        for doc in stack.emulator_docs("logs-app-*").values():
            if field(doc, "http.request.id") == request_id and field(doc, "network.direction") == "inbound":
                return doc
        return None

    doc = wait_until(inbound_doc, timeout=SHIPPING_TIMEOUT_SECONDS, interval=0.5, message="the inbound access log")
    assert doc is not None
    assert field(doc, "tls.client.x509.alternative_names") == WEB_IDENTITY
    assert field(doc, "http.response.status_code") == 200


def test_plaintext_to_the_inbound_port_is_refused_inside_the_pod_and_from_the_host(stack: Stack) -> None:
    (inside,) = stack.in_pod(INBOUND_PORT_IN_POD, "/api/greeting")
    assert inside.status is None, inside  # no HTTP answer: the TLS listener drops plain text
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{stack.ports['MESH_INBOUND_PORT']}/api/greeting", timeout=10)


def test_the_app_is_reachable_only_on_its_pods_localhost(stack: Stack) -> None:
    assert stack.app_get("/readyz").status == 200
    # From the web pod, the api pod's 8080 is closed (the app listens on its pod's 127.0.0.1).
    (direct,) = stack.in_pod(APP_PORT_IN_POD, "/api/greeting", pod="web", host="app")
    assert direct.status is None, direct
    assert direct.error is not None
    assert "refused" in direct.error.lower()


def test_the_api_pods_envoy_admits_web_on_the_api_paths_only(stack: Stack) -> None:
    # From web's pod, through web's outbound port: as web's app would call.
    api, ops = (
        stack.in_pod(OUTBOUND_PORT_IN_POD, "/api/greeting", pod="web"),
        stack.in_pod(OUTBOUND_PORT_IN_POD, "/stats", pod="web"),
    )
    assert api[0].status == 200, api
    assert (ops[0].status, ops[0].body) == (403, "RBAC: access denied")


def test_the_fault_knob_in_webs_config_source_works_and_a_bad_policy_is_refused(
    stack: Stack, web_config_source: Path
) -> None:
    routes = web_config_source / ROUTES
    original = routes.read_text()
    aborts_before = envoy_stat(stack.web_mesh_stats, "envoy_http_fault_aborts_injected")

    # A policy that does not fit the schema: web's config sidecar refuses it, Envoy never sees it.
    write_atomically(
        routes,
        original.replace(
            "numerator: 0, denominator: HUNDRED}  # abort", "numerator: 150, denominator: HUNDRED}  # abort"
        ),
    )
    status = wait_until(
        lambda: (s := web_sidecar_status(stack))["last_error"] and s,
        timeout=RELOAD_TIMEOUT_SECONDS,
        interval=0.5,
        message="web's config sidecar refusing the 150 % fault",
    )
    assert status["last_error"]["file"] == ROUTES
    assert [web_status(stack) for _ in range(5)] == [200] * 5

    # All calls aborted by web's Envoy (no retry helps: the fault filter answers before the router).
    write_atomically(
        routes,
        original.replace(
            "numerator: 0, denominator: HUNDRED}  # abort", "numerator: 100, denominator: HUNDRED}  # abort"
        ),
    )
    wait_until(lambda: web_status(stack) == 503, timeout=RELOAD_TIMEOUT_SECONDS, interval=0.5, message="aborts")
    body = requests.get(f"{stack.web}/api/greeting", timeout=HTTP_TIMEOUT_SECONDS).json()
    assert body["upstream_status"] == 503
    assert envoy_stat(stack.web_mesh_stats, "envoy_http_fault_aborts_injected") > aborts_before

    # Reverted: calls go through again (the fixture checks that too after the test).
    write_atomically(routes, original)
    wait_until(lambda: web_status(stack) == 200, timeout=RELOAD_TIMEOUT_SECONDS, interval=0.5, message="reverted")


def test_prometheus_scrapes_both_envoys_and_loads_the_alert_rules(stack: Stack) -> None:
    def mesh_targets_up() -> bool:
        body = stack.get_json(f"{stack.prometheus}/api/v1/targets", state="active")
        pods = {
            target["labels"]["pod"]
            for target in body["data"]["activeTargets"]
            if target["labels"]["job"] == "mesh-proxy" and target["health"] == "up"
        }
        return pods == {"demo-app-0", "web-0"}

    wait_until(mesh_targets_up, timeout=SCRAPE_TIMEOUT_SECONDS, interval=1.0, message="both Envoys scraped")
    requests.get(f"{stack.web}/api/greeting", timeout=HTTP_TIMEOUT_SECONDS)
    wait_until(
        lambda: (
            len(stack.prometheus_query('envoy_http_downstream_rq_xx{job="mesh-proxy",envoy_response_code_class="2"}'))
            >= 4
        ),  # inbound and outbound, both pods
        timeout=SCRAPE_TIMEOUT_SECONDS,
        interval=1.0,
        message="Envoy's request counters in Prometheus",
    )
    rules = stack.get_json(f"{stack.prometheus}/api/v1/rules")
    groups = {group["name"]: group for group in rules["data"]["groups"]}
    assert "sidecar-lab" in groups, json.dumps(rules)[:2000]
    assert len(groups["sidecar-lab"]["rules"]) >= 1
