"""Lab 05's Istio part against the manifests it runs on: what a user does there works as the lab says.

No cluster runs here, so the lab's kind blocks are `no-check`; these tests hold them to
the rendered manifests instead: the plaintext client is admitted by Pod Security and the
NetworkPolicies (so mTLS is what refuses it), web waits longer than its Envoy, and the
expected outputs are the ones Istio 1.27 prints with the install `make istio` does.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.manifests.network_policy import Pod, ingress_allowed
from tests.manifests.rendering import ROOT, Rendering
from tests.support.make import make_dry_run

LAB = ROOT / "docs" / "workshop" / "05-service-mesh.md"
NAMESPACE = "sidecar-lab"
ISTIO_OVERLAYS = ("kind-istio", "kind-istio-fault-delay", "kind-istio-fault-abort")
DEMO_APP = Pod(NAMESPACE, {"app.kubernetes.io/name": "demo-app", "app": "demo-app", "tier": "api"})
DURATION = re.compile(r"^(?P<value>[0-9.]+)(?P<unit>ms|s|m|h)$")
UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def seconds(duration: str) -> float:
    match = DURATION.match(duration)
    assert match, f"not a duration: {duration!r}"
    return float(match["value"]) * UNITS[match["unit"]]


def lab_client_pod() -> dict[str, Any]:
    """The Pod lab 05 applies with `kubectl apply -f - <<'EOF'`."""
    match = re.search(r"kubectl -n sidecar-lab apply -f - <<'EOF'\n(.*?)\nEOF\n", LAB.read_text(), re.DOTALL)
    assert match, "lab 05 no longer creates its plaintext client with a heredoc"
    pod: dict[str, Any] = yaml.safe_load(match.group(1))
    return pod


def restricted_problems(pod: dict[str, Any]) -> list[str]:
    """Why Pod Security Admission's `restricted` level (latest) would refuse this pod."""
    spec = pod["spec"]
    pod_security = spec.get("securityContext") or {}
    problems = []
    for container in spec.get("initContainers", []) + spec["containers"]:
        security = container.get("securityContext") or {}

        def effective(key: str, container_security: dict[str, Any] = security) -> Any:
            return container_security.get(key, pod_security.get(key))

        name = container["name"]
        if security.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{name}: allowPrivilegeEscalation != false")
        if "ALL" not in ((security.get("capabilities") or {}).get("drop") or []):
            problems.append(f"{name}: capabilities.drop lacks ALL")
        if set((security.get("capabilities") or {}).get("add") or []) - {"NET_BIND_SERVICE"}:
            problems.append(f"{name}: capabilities.add beyond NET_BIND_SERVICE")
        if effective("runAsNonRoot") is not True:
            problems.append(f"{name}: runAsNonRoot != true")
        if effective("runAsUser") == 0:
            problems.append(f"{name}: runAsUser 0")
        if (effective("seccompProfile") or {}).get("type") not in ("RuntimeDefault", "Localhost"):
            problems.append(f"{name}: seccompProfile not RuntimeDefault or Localhost")
        if security.get("privileged"):
            problems.append(f"{name}: privileged")
    if any("hostPath" in volume for volume in spec.get("volumes") or []):
        problems.append("hostPath volume")
    return problems


def policies(rendering: Rendering) -> list[dict[str, Any]]:
    return rendering.of_kind("NetworkPolicy")


@pytest.mark.parametrize("name", ISTIO_OVERLAYS)
def test_the_plaintext_client_gets_to_demo_app_so_mtls_is_what_refuses_it(overlay, name):
    pod = lab_client_pod()
    assert restricted_problems(pod) == [], "Pod Security 'restricted' would refuse the lab's client"
    labels = pod["metadata"]["labels"]
    assert labels.get("sidecar.istio.io/inject") == "false", "the client must stay outside the mesh"
    client = Pod(NAMESPACE, labels)
    assert ingress_allowed(policies(overlay(name)), client, DEMO_APP, 8080), "the NetworkPolicies drop it: curl hangs"
    # It is let through to the API port only.
    assert not ingress_allowed(policies(overlay(name)), client, DEMO_APP, 9102)
    # ...and no Service picks it up as an endpoint.
    for service in overlay(name).of_kind("Service"):
        selector = service["spec"].get("selector") or {}
        assert not selector or any(labels.get(k) != v for k, v in selector.items()), service["metadata"]["name"]


def test_the_checks_catch_a_bare_kubectl_run_pod(overlay):
    bare = {"metadata": {"labels": {"run": "plain"}}, "spec": {"containers": [{"name": "plain", "image": "curl"}]}}
    assert restricted_problems(bare)
    assert not ingress_allowed(policies(overlay("kind-istio")), Pod(NAMESPACE, {"run": "plain"}), DEMO_APP, 8080)
    web = Pod(NAMESPACE, {"app.kubernetes.io/name": "web", "tier": "web"})
    assert ingress_allowed(policies(overlay("kind-istio")), web, DEMO_APP, 8080)


def web_upstream_timeout(rendering: Rendering) -> float:
    (web,) = [doc for doc in rendering.of_kind("Deployment") if doc["metadata"]["name"] == "web"]
    app = next(c for c in web["spec"]["template"]["spec"]["containers"] if c["name"] == "app")
    env = {e["name"]: e.get("value") for e in app.get("env", [])}
    return float(env.get("APP_UPSTREAM_TIMEOUT_SECONDS") or 2.0)  # the app's default


def envoy_worst_case(rendering: Rendering) -> float:
    """The longest a call through web's Envoy can take: a route's fault delay, then its timeout."""
    worst = 0.0
    for service in rendering.of_kind("VirtualService"):
        for route in service["spec"]["http"]:
            delay = ((route.get("fault") or {}).get("delay") or {}).get("fixedDelay", "0s")
            worst = max(worst, seconds(delay) + seconds(route.get("timeout", "15s")))
    return worst


def test_web_waits_longer_than_its_envoy_in_every_mesh_rendering(renderings):
    """Else a delayed call is web's own 504 before Envoy's timeout or the delay can even show."""
    meshed = [r for r in renderings if r.of_kind("VirtualService")]
    assert len(meshed) >= 3
    for rendering in meshed:
        assert web_upstream_timeout(rendering) > envoy_worst_case(rendering), rendering.name


def test_the_chain_check_catches_the_old_default(overlay):
    # 2 s delay + the writes route's 5 s: web's default 2 s (without the mesh) would not do.
    assert envoy_worst_case(overlay("kind-istio-fault-delay")) == 7.0


def sample_after(marker: str) -> str:
    """The ```text sample that follows the first command block containing `marker`."""
    text = LAB.read_text()
    at = text.index(marker)
    match = re.search(r"```text\n(.*?)```", text[at:], re.DOTALL)
    assert match, f"no sample output after {marker!r}"
    return match.group(1)


def test_the_injected_init_containers_are_the_ones_istio_cni_gives():
    assert "components.cni.enabled=true" in make_dry_run("istio")
    names = sample_after("-o jsonpath='{range .items[*].spec.initContainers[*]}").split()
    # With CNI Istio injects istio-validation (istio-init needs NET_ADMIN); then Envoy, then ours.
    assert names[:2] == ["istio-validation", "istio-proxy"]
    assert "istio-init" not in names


def test_an_ejected_endpoint_reads_as_istioctl_prints_it():
    sample = sample_after("istioctl -n sidecar-lab proxy-config endpoint")
    header, *rows = [line.split() for line in sample.strip().splitlines()]
    assert header == ["ENDPOINT", "STATUS", "OUTLIER", "CHECK", "CLUSTER"]
    assert {(row[1], row[2]) for row in rows} == {("HEALTHY", "FAILED"), ("HEALTHY", "OK")}
    assert "UNHEALTHY" not in LAB.read_text()


def test_the_clean_up_leaves_no_mesh_policy_behind():
    clean_up = LAB.read_text().split("## Clean-up", 1)[1]
    assert "make undeploy" in clean_up


def test_the_lab_file_is_where_the_tests_read_it():
    assert Path(LAB).is_file()
