"""The app pod under compose behaves like a Kubernetes pod: one localhost, shared volumes, restricted containers."""

from __future__ import annotations

import pytest
import requests

from tests.e2e.stack import HTTP_TIMEOUT_SECONDS, Stack, inspect_container
from tests.support import wait_until

POD = ("app", "config-sidecar", "log-sidecar", "exporter", "mesh-proxy")
WEB_POD = ("web", "web-config-sidecar", "web-log-sidecar", "web-mesh-proxy")
HEALTHY_TIMEOUT_SECONDS = 90.0


@pytest.mark.parametrize("service", POD + WEB_POD)
def test_pod_container_becomes_healthy(stack: Stack, service: str) -> None:
    def healthy() -> bool:
        return bool(stack.inspect(service)["State"]["Health"]["Status"] == "healthy")

    wait_until(healthy, timeout=HEALTHY_TIMEOUT_SECONDS, interval=1.0, message=f"{service} healthy")


@pytest.mark.parametrize("service", POD + WEB_POD)
def test_pod_container_joins_the_pause_container_network_namespace(stack: Stack, service: str) -> None:
    pause_id = stack.inspect("pause" if service in POD else "web-pause")["Id"]
    assert stack.inspect(service)["HostConfig"]["NetworkMode"] == f"container:{pause_id}"


def test_pause_container_is_restricted_and_does_nothing_but_hold_the_namespace(stack: Stack) -> None:
    pause = stack.inspect("pause")
    assert pause["Config"]["User"] == "65535:65535"
    assert pause["HostConfig"]["ReadonlyRootfs"] is True
    assert pause["HostConfig"]["CapDrop"] == ["ALL"]
    # It publishes the pod's ports (every pod container listens in its namespace); not the app's
    # 8080, which listens on the pod's 127.0.0.1 only, behind its Envoy's 8443.
    published = {port.split("/")[0] for port, bindings in pause["NetworkSettings"]["Ports"].items() if bindings}
    assert published == {"8081", "8082", "9102", "8443", "9903"}


@pytest.mark.parametrize("base", ["config_sidecar", "log_sidecar", "exporter"])
def test_sidecar_answers_through_the_port_the_pause_container_publishes(stack: Stack, base: str) -> None:
    response = requests.get(f"{getattr(stack, base)}/livez", timeout=HTTP_TIMEOUT_SECONDS)
    assert response.status_code == 200


@pytest.mark.parametrize("service", POD + WEB_POD)
def test_pod_container_runs_non_root_on_a_read_only_root_filesystem(stack: Stack, service: str) -> None:
    container = stack.inspect(service)
    assert container["Config"]["User"] == "10001:10001"
    assert container["HostConfig"]["ReadonlyRootfs"] is True
    assert container["HostConfig"]["CapDrop"] == ["ALL"]
    assert stack.exec_in(service, "id", "-u").strip() == "10001"


def test_every_published_port_is_bound_to_loopback_only(stack: Stack) -> None:
    bindings = []
    for container_id in stack.container_ids():
        ports = inspect_container(container_id)["NetworkSettings"]["Ports"] or {}
        bindings += [binding for port_bindings in ports.values() if port_bindings for binding in port_bindings]
    assert bindings, "the stack publishes no port at all"
    assert {binding["HostIp"] for binding in bindings} == {"127.0.0.1"}


def test_web_tier_calls_the_api_tier_through_its_mesh_proxy(stack: Stack) -> None:
    body = stack.get_json(f"{stack.web}/api/greeting")
    assert body["service"] == "web"
    assert body["upstream"]["service"] == "demo-app"
    assert body["upstream"]["greeting"]


@pytest.mark.parametrize("base", ["web_config_sidecar", "web_log_sidecar"])
def test_web_pod_sidecar_answers_through_the_port_web_pause_publishes(stack: Stack, base: str) -> None:
    response = requests.get(f"{getattr(stack, base)}/livez", timeout=HTTP_TIMEOUT_SECONDS)
    assert response.status_code == 200
