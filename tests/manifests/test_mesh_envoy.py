"""components/mesh-envoy and its overlays: our Envoy as a native sidecar, without Istio, checked offline.

No cluster runs here. These tests hold the rendered manifests to what the mesh needs to
work on one: the proxy's place in the start and stop order, identities that match the
ServiceAccounts, an API that only the mesh reaches, exec probes that really probe, policy
in the ConfigMaps that the proxy's own check (and the real Envoy) accepts, and the issuing
step (scripts/mesh-certs.sh) against a kubectl stand-in.
"""

from __future__ import annotations

import base64
import os
import re
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from mesh_proxy import ca, cert_dir
from sidecar_common import load_settings
from tests.manifests.network_policy import Pod, ingress_allowed
from tests.manifests.rendering import (
    OVERLAYS,
    ROOT,
    Rendering,
    combination_problem,
    kustomize,
    valid_combinations,
    write_combination,
)
from tests.manifests.service_contract import settings_class
from tests.support import free_tcp_port
from tests.support.kubelet import KubeletVolume
from tests.support.make import make_dry_run
from tests.support.stand_ins import stand_in
from tests.support.tools import require_tool

NAMESPACE = "sidecar-lab"
MESH_OVERLAYS = ("kind-mesh", "kind-mesh-fault-abort")
POLICY_KEYS = {"mesh-routes.yaml": "mesh/routes.yaml", "mesh-clusters.yaml": "mesh/clusters.yaml"}
SECRET_KEYS = {cert_dir.TLS_CERT, cert_dir.TLS_KEY, cert_dir.CA_CERT}

Document = dict[str, Any]


# -- reading a rendering -------------------------------------------------------------------


def deployment(rendering: Rendering, name: str) -> Document:
    (doc,) = [d for d in rendering.of_kind("Deployment") if d["metadata"]["name"] == name]
    return doc


def pod(rendering: Rendering, name: str) -> dict[str, Any]:
    spec: dict[str, Any] = deployment(rendering, name)["spec"]["template"]["spec"]
    return spec


def container(rendering: Rendering, workload: str, name: str) -> dict[str, Any]:
    spec = pod(rendering, workload)
    return next(c for c in spec.get("initContainers", []) + spec["containers"] if c["name"] == name)


def env(c: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in c.get("env", []) if "value" in e}


def settings_of(rendering: Rendering, workload: str, name: str, service: str) -> Any:
    return load_settings(settings_class(service), env(container(rendering, workload, name)))


def meshed(rendering: Rendering) -> bool:
    return any(
        c["name"] == "mesh-proxy"
        for doc in rendering.of_kind("Deployment")
        for c in doc["spec"]["template"]["spec"].get("initContainers", [])
    )


def runs_istio(rendering: Rendering) -> bool:
    namespace = next(iter(rendering.of_kind("Namespace")))
    return "istio.io/" in " ".join(d["apiVersion"] for d in rendering.documents) or (
        namespace["metadata"].get("labels", {}).get("istio-injection") == "enabled"
    )


def config_map(rendering: Rendering, name: str) -> dict[str, str]:
    (doc,) = [d for d in rendering.of_kind("ConfigMap") if d["metadata"]["name"] == name]
    data: dict[str, str] = doc["data"]
    return data


@pytest.fixture(scope="module")
def meshed_renderings(renderings: list[Rendering]) -> list[Rendering]:
    found = [r for r in renderings if meshed(r)]
    assert {f"overlay {name}" for name in MESH_OVERLAYS} <= {r.name for r in found}
    return found


# -- never two meshes ----------------------------------------------------------------------


def test_mesh_envoy_and_istio_are_never_combined(renderings):
    assert not [c for c in valid_combinations() if "mesh-envoy" in c and {"istio", "classic-sidecars"} & set(c)]
    assert "never two Envoys" in str(combination_problem(["observability", "mesh-envoy", "istio"]))
    both = [r.name for r in renderings if meshed(r) and runs_istio(r)]
    assert both == []
    assert any(runs_istio(r) for r in renderings)
    assert any(meshed(r) for r in renderings)


def test_the_two_meshes_built_together_would_be_caught(tmp_path):
    """kustomize itself would build the pair: the rule is what refuses it, and the check sees it."""
    rendering = Rendering("istio+mesh-envoy", tuple(kustomize(write_combination(tmp_path, ["mesh-envoy", "istio"]))))
    assert meshed(rendering)
    assert runs_istio(rendering)


def test_meshed_pods_opt_out_of_istio_injection(meshed_renderings):
    """Should the namespace still carry istio-injection=enabled from `make istio`, Istio leaves these pods alone."""
    for rendering in meshed_renderings:
        for workload in ("demo-app", "web"):
            labels = deployment(rendering, workload)["spec"]["template"]["metadata"]["labels"]
            assert labels.get("sidecar.istio.io/inject") == "false", rendering.name


# -- the pod: order, identity, reachability ----------------------------------------------


def test_the_proxy_starts_after_the_config_and_before_the_app(meshed_renderings):
    for rendering in meshed_renderings:
        for workload in ("demo-app", "web"):
            names = [c["name"] for c in pod(rendering, workload)["initContainers"]]
            # After the exporter (so after the config sidecar's first publish and the log sidecar,
            # which then outlives it), before the agent if any; the app comes after all of them.
            assert names[:4] == ["config-sidecar", "log-sidecar", "exporter", "mesh-proxy"], rendering.name
            assert [c["name"] for c in pod(rendering, workload)["containers"]] == ["app"]
            proxy = container(rendering, workload, "mesh-proxy")
            assert proxy["restartPolicy"] == "Always"
            stats = settings_of(rendering, workload, "mesh-proxy", "mesh-proxy").stats_port
            assert proxy["startupProbe"]["httpGet"] == {"path": "/ready", "port": stats}


def test_the_order_does_not_depend_on_the_component_order(tmp_path):
    rendering = Rendering(
        "x", tuple(kustomize(write_combination(tmp_path, ["observability", "mesh-envoy", "prometheus-agent"])))
    )
    names = [c["name"] for c in pod(rendering, "demo-app")["initContainers"]]
    assert names == ["config-sidecar", "log-sidecar", "exporter", "mesh-proxy", "prometheus-agent"]


def test_identities_are_the_pods_service_accounts(meshed_renderings):
    for rendering in meshed_renderings:
        accounts = {d["metadata"]["name"] for d in rendering.of_kind("ServiceAccount")}
        account = {w: pod(rendering, w)["serviceAccountName"] for w in ("demo-app", "web")}
        assert set(account.values()) <= accounts
        identity = {w: ca.spiffe_id(NAMESPACE, account[w]) for w in account}
        api = settings_of(rendering, "demo-app", "mesh-proxy", "mesh-proxy")
        web = settings_of(rendering, "web", "mesh-proxy", "mesh-proxy")
        assert api.allowed_principals == (identity["web"],), rendering.name
        assert web.upstream_principal == identity["demo-app"], rendering.name
        assert web.allowed_principals == (), "nobody calls web through the mesh"
        assert api.upstream_addresses == (), "demo-app calls nobody"
        for workload in ("demo-app", "web"):
            secrets = {v["secret"]["secretName"] for v in pod(rendering, workload)["volumes"] if "secret" in v}
            assert secrets == {f"mesh-certs-{account[workload]}"}, rendering.name


def test_web_calls_its_envoy_and_its_envoy_calls_the_demo_app_service_on_the_mesh_port(meshed_renderings):
    for rendering in meshed_renderings:
        web_app = settings_of(rendering, "web", "app", "app")
        web_proxy = settings_of(rendering, "web", "mesh-proxy", "mesh-proxy")
        api_proxy = settings_of(rendering, "demo-app", "mesh-proxy", "mesh-proxy")
        assert web_app.upstream_url == f"http://127.0.0.1:{web_proxy.outbound_port}"
        (service,) = [d for d in rendering.of_kind("Service") if d["metadata"]["name"] == "demo-app"]
        (mesh_port,) = [p for p in service["spec"]["ports"] if p["name"] == "https-mesh"]
        assert mesh_port["appProtocol"] == "https"
        assert web_proxy.upstream_addresses == (f"demo-app:{mesh_port['port']}",), "a Service, never pod IPs"
        declared = {p["name"]: p["containerPort"] for p in container(rendering, "demo-app", "mesh-proxy")["ports"]}
        assert mesh_port["targetPort"] == declared["https-mesh"] == api_proxy.inbound_port
        assert 8080 not in {p["port"] for p in service["spec"]["ports"]}, "nothing may bypass demo-app's Envoy"
        api_app = settings_of(rendering, "demo-app", "app", "app")
        assert api_app.host == "127.0.0.1"
        assert (api_proxy.app_host, api_proxy.app_port) == ("127.0.0.1", api_app.port)


PEERS = {
    "web": Pod(NAMESPACE, {"app.kubernetes.io/name": "web", "app": "web", "tier": "web"}),
    "demo-app": Pod(NAMESPACE, {"app.kubernetes.io/name": "demo-app", "app": "demo-app", "tier": "api"}),
    "prometheus": Pod(NAMESPACE, {"app.kubernetes.io/name": "prometheus"}),
    "operator-prometheus": Pod("monitoring", {"app.kubernetes.io/name": "prometheus"}),
    "istio-gateway": Pod("istio-system", {"istio": "ingressgateway"}),
    "ingress-nginx": Pod("ingress-nginx", {"app.kubernetes.io/name": "ingress-nginx"}),
    "elsewhere": Pod("default", {"app": "curl"}),
}
PORTS = (8080, 8443, 9903, 9102, 8081, 8082)


def reachable(rendering: Rendering) -> set[tuple[str, str, int]]:
    """Every (source, target, port) the rendering's NetworkPolicies admit, for the app pods."""
    policies = rendering.of_kind("NetworkPolicy")
    return {
        (source, target, port)
        for source, peer in PEERS.items()
        for target in ("demo-app", "web")
        for port in PORTS
        if source != target and ingress_allowed(policies, peer, PEERS[target], port)
    }


def test_the_mesh_opens_8443_from_web_and_9903_to_prometheus_and_nothing_else(overlay):
    before, after = reachable(overlay("kind")), reachable(overlay("kind-mesh"))
    prometheus = {(p, t, 9903) for p in ("prometheus", "operator-prometheus") for t in ("demo-app", "web")}
    assert after - before == {("web", "demo-app", 8443)} | prometheus
    # What closes: the plaintext API of demo-app, for web and the ingress gateways alike.
    assert before - after == {(s, "demo-app", 8080) for s in ("web", "istio-gateway", "ingress-nginx")}


def test_the_egress_follows_the_call_to_the_mesh_port(overlay):
    (egress,) = [
        d for d in overlay("kind-mesh").of_kind("NetworkPolicy") if d["metadata"]["name"] == "web-egress-to-demo-app"
    ]
    assert [p["port"] for rule in egress["spec"]["egress"] for p in rule["ports"]] == [8443]


# -- the app's probes run in the pod -------------------------------------------------------


class HealthStub:
    """An app stand-in on 127.0.0.1: /livez 200, /readyz the status the test sets, anything else 404."""

    def __init__(self) -> None:
        self.ready_status = 200
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status = {"/livez": 200, "/readyz": stub.ready_status}.get(self.path, 404)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_tcp_port()), Handler)
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def health_stub() -> Iterator[HealthStub]:
    stub = HealthStub()
    yield stub
    stub.close()


def run_probe(probe: dict[str, Any], port: int) -> int:
    """Run an exec probe's command as the kubelet would in the app container (APP_PORT set)."""
    command = list(probe["exec"]["command"])
    assert command[0] == "python"
    command[0] = sys.executable
    result = subprocess.run(
        command, env={"APP_PORT": str(port)}, capture_output=True, timeout=probe["timeoutSeconds"] + 5, check=False
    )
    return result.returncode


def test_the_meshed_apps_exec_probes_ask_the_app_itself(overlay, health_stub):
    app = container(overlay("kind-mesh"), "demo-app", "app")
    probes = {name: app[name] for name in ("startupProbe", "readinessProbe", "livenessProbe")}
    assert all(set(p) >= {"exec", "timeoutSeconds"} for p in probes.values())
    assert {name: p["exec"]["command"][-1] for name, p in probes.items()} == {
        "startupProbe": "/livez",
        "readinessProbe": "/readyz",
        "livenessProbe": "/livez",
    }
    assert {name: run_probe(p, health_stub.port) for name, p in probes.items()} == dict.fromkeys(probes, 0)
    health_stub.ready_status = 503  # e.g. no config loaded yet: not ready, still live
    assert run_probe(probes["readinessProbe"], health_stub.port) != 0
    assert run_probe(probes["livenessProbe"], health_stub.port) == 0
    closed = free_tcp_port()  # nothing listens: the app is down
    assert run_probe(probes["livenessProbe"], closed) != 0


# -- policy: in the ConfigMaps, accepted by the proxy's own check ------------------------


def policies(rendering: Rendering) -> dict[str, dict[str, str]]:
    """The mesh policy each meshed pod mounts: workload -> {mesh/routes.yaml: text, ...}."""
    found = {}
    for workload in ("demo-app", "web"):
        (source,) = [v for v in pod(rendering, workload)["volumes"] if v["name"] == "config-source"]
        items = {item["key"]: item["path"] for item in source["configMap"]["items"]}
        assert {key: items.get(key) for key in POLICY_KEYS} == POLICY_KEYS, "never subPath, always nested items"
        data = config_map(rendering, source["configMap"]["name"])
        found[workload] = {path: data[key] for key, path in POLICY_KEYS.items()}
    return found


def check_policy(directory: Path) -> subprocess.CompletedProcess[str]:
    """The proxy's own check: JSON Schema, then the real `envoy --mode validate`."""
    return subprocess.run(
        [sys.executable, "-m", "mesh_proxy", "check-policy", str(directory)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_every_mesh_policy_in_a_config_map_passes_the_proxys_check(meshed_renderings, tmp_path):
    distinct = {tuple(sorted(files.items())) for r in meshed_renderings for files in policies(r).values()}
    assert len(distinct) == 2  # the default, and the fault lab's
    for number, files in enumerate(distinct):
        directory = tmp_path / str(number)
        for path, text in files:
            (directory / path).parent.mkdir(parents=True, exist_ok=True)
            (directory / path).write_text(text)
        result = check_policy(directory)
        assert result.returncode == 0, result.stdout + result.stderr
    # ...and the check can fail: a route timeout Envoy cannot parse.
    routes = directory / "mesh" / "routes.yaml"
    routes.write_text(routes.read_text().replace("timeout: 2s", "timeout: soon"))
    assert check_policy(directory).returncode != 0


IMAGE_SCHEMAS = {  # what services/Dockerfile's config-sidecar stage copies to /etc/config-sidecar/schemas
    "/etc/config-sidecar/schemas/app.schema.json": ROOT / "services/config-sidecar/schemas/app.schema.json",
    "/etc/config-sidecar/schemas/mesh-policy.schema.json": ROOT / "services/mesh-proxy/schemas/mesh-policy.schema.json",
}


def test_the_config_sidecar_validates_every_mesh_policy_item_before_envoy_sees_it(meshed_renderings):
    dockerfile = (ROOT / "services/Dockerfile").read_text()
    assert "COPY services/mesh-proxy/schemas/mesh-policy.schema.json /etc/config-sidecar/schemas/" in dockerfile
    for rendering in meshed_renderings:
        for workload in ("demo-app", "web"):
            settings = settings_of(rendering, workload, "config-sidecar", "config-sidecar")
            schemas = settings.schema_map()
            assert set(POLICY_KEYS.values()) <= set(schemas), (rendering.name, workload, sorted(schemas))
            for target, (path, _) in schemas.items():
                assert str(path) in IMAGE_SCHEMAS, (target, path)
                assert IMAGE_SCHEMAS[str(path)].is_file()
            assert schemas["mesh/routes.yaml"][0].name == "mesh-policy.schema.json"
            assert schemas["app.yaml"][0].name == "app.schema.json"


def route(routes_text: str) -> dict[str, Any]:
    document = yaml.safe_load(routes_text)
    first: dict[str, Any] = document["resources"][0]["virtual_hosts"][0]["routes"][0]
    return first


def seconds(duration: str) -> float:
    assert duration.endswith("s"), duration
    return float(duration[:-1])


def test_web_waits_longer_than_its_envoy(meshed_renderings):
    """Else a delayed call is web's own timeout, before Envoy's timeout (a 504 it relays) or the delay shows."""
    for rendering in meshed_renderings:
        outbound = route(policies(rendering)["web"]["mesh/routes.yaml"])
        fault = outbound["typed_per_filter_config"]["envoy.filters.http.fault"]
        # The fault filter runs before the router: the delay (even at 0 %: one edit away), then the timeout.
        worst = seconds(fault["delay"]["fixed_delay"]) + seconds(outbound["route"]["timeout"])
        web = settings_of(rendering, "web", "app", "app")
        assert web.upstream_timeout_seconds > worst, rendering.name
        default = load_settings(settings_class("app"), {}).upstream_timeout_seconds
        assert default <= worst, "the check would pass without the patch: it proves nothing"


def test_the_fault_lab_changes_one_number_in_webs_config_map_and_no_pod(overlay):
    plain, fault = overlay("kind-mesh"), overlay("kind-mesh-fault-abort")
    expected = route(policies(plain)["web"]["mesh/routes.yaml"])
    abort = expected["typed_per_filter_config"]["envoy.filters.http.fault"]["abort"]
    assert abort["percentage"]["numerator"] == 0
    abort["percentage"]["numerator"] = 20
    assert route(policies(fault)["web"]["mesh/routes.yaml"]) == expected
    assert abort["http_status"] == 503
    assert policies(fault)["demo-app"] == policies(plain)["demo-app"]
    # Same pod templates: applying it over kind-mesh restarts nothing (Envoy reloads the routes).
    changed = [
        resource
        for resource in ("Deployment", "Job", "Service", "NetworkPolicy")
        for a, b in zip(plain.of_kind(resource), fault.of_kind(resource), strict=True)
        if a != b
    ]
    assert changed == []
    assert [d["metadata"]["name"] for d in fault.of_kind("ConfigMap") if d not in plain.of_kind("ConfigMap")] == [
        "web-config"
    ]


# -- Prometheus finds Envoy ----------------------------------------------------------------


def test_prometheus_and_the_pod_monitor_scrape_envoys_stats_port(overlay):
    rendering = overlay("kind-mesh")
    proxy = container(rendering, "demo-app", "mesh-proxy")
    stats = settings_of(rendering, "demo-app", "mesh-proxy", "mesh-proxy").stats_port
    (port_name,) = [p["name"] for p in proxy["ports"] if p["containerPort"] == stats]
    central = yaml.safe_load((ROOT / "k8s/components/observability/prometheus/prometheus.yml").read_text())
    jobs = [
        job
        for job in central["scrape_configs"]
        if any(r.get("regex") == port_name and r.get("action") == "keep" for r in job.get("relabel_configs", []))
    ]
    assert [job.get("metrics_path") for job in jobs] == ["/stats/prometheus"]
    monitor = yaml.safe_load((ROOT / "k8s/components/prometheus-operator/podmonitor.yaml").read_text())
    (endpoint,) = [e for e in monitor["spec"]["podMetricsEndpoints"] if e["port"] == port_name]
    assert endpoint["path"] == "/stats/prometheus"
    # The in-pod agent scrapes the pod's exporters, not Envoy: its pods must not be dropped here.
    for relabel in [*jobs[0]["relabel_configs"], *endpoint.get("relabelings", [])]:
        assert relabel.get("action") != "drop", relabel


# -- the issuing step: scripts/mesh-certs.sh against a kubectl stand-in -------------------


class IssuingRun:
    """One run of scripts/mesh-certs.sh; kubectl renders and builds Secrets for real, the cluster is a stand-in."""

    def __init__(self, tmp_path: Path, overlay: str, *, namespace_exists: bool = True, days: str = "7") -> None:
        real = require_tool("kubectl", "its built-in kustomize renders the overlay")
        tmp_path.mkdir(parents=True, exist_ok=True)
        self.applied = tmp_path / "applied.yaml"
        self.ca_dir = tmp_path / "ca"
        self.scratch = tmp_path / "scratch"
        self.scratch.mkdir(exist_ok=True)
        kubectl = stand_in(
            tmp_path / "kubectl",
            'case " $* " in\n'
            f'  *" kustomize "* | *" create secret "*) exec {real} "$@" ;;\n'
            f'  *" get namespace "*) {"echo namespace/sidecar-lab" if namespace_exists else "exit 1"} ;;\n'
            f'  *" --context kind-sidecar-lab apply -f - "*) {{ cat; echo "---"; }} >> {self.applied} ;;\n'
            '  *) echo "unexpected kubectl $*" >&2; exit 3 ;;\n'
            "esac\n",
        )
        self.result = subprocess.run(
            [str(ROOT / "scripts" / "mesh-certs.sh"), "kind-sidecar-lab", overlay],
            env={
                **os.environ,
                "KUBECTL": str(kubectl),
                "MESH_PYTHON": sys.executable,
                "MESH_CA_DIR": str(self.ca_dir),
                "MESH_CERT_DAYS": days,
                "TMPDIR": str(self.scratch),
            },
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def secrets(self) -> dict[str, Document]:
        if not self.applied.exists():
            return {}
        return {d["metadata"]["name"]: d for d in yaml.safe_load_all(self.applied.read_text()) if d}


def materialise(secret: Document, directory: Path) -> Path:
    """The Secret as the kubelet mounts it (..data swap, visible links): the proxy's MESH_CERT_DIR."""
    files = {key: base64.b64decode(value) for key, value in secret["data"].items()}
    KubeletVolume(directory, default_mode=0o440).write(files)
    return directory


def test_the_issuing_step_gives_each_pod_its_own_identity_and_keeps_the_ca_key_home(tmp_path, overlay):
    run = IssuingRun(tmp_path, "kind-mesh")
    assert run.result.returncode == 0, run.result.stdout + run.result.stderr
    secrets = run.secrets()
    rendering = overlay("kind-mesh")
    expected = {f"mesh-certs-{pod(rendering, w)['serviceAccountName']}": w for w in ("demo-app", "web")}
    assert set(secrets) == set(expected)
    ca_key = (run.ca_dir / ca.CA_KEY).read_bytes()
    assert stat.S_IMODE((run.ca_dir / ca.CA_KEY).stat().st_mode) == 0o600
    applied = [base64.b64decode(value) for secret in secrets.values() for value in secret["data"].values()]
    assert not [value for value in applied if ca_key in value], "the CA key left this machine"
    now = datetime.now(UTC)
    for name, workload in expected.items():
        secret = secrets[name]
        assert secret["type"] == "kubernetes.io/tls"
        assert secret["metadata"]["namespace"] == NAMESPACE
        assert set(secret["data"]) == SECRET_KEYS
        mounted = materialise(secret, tmp_path / "mounted" / name)
        assert cert_dir.check(mounted, now) is None, "the proxy would refuse to start with it"
        certificate = ca.load_certificate(mounted / cert_dir.TLS_CERT)
        account = pod(rendering, workload)["serviceAccountName"]
        assert ca.uri_sans(certificate) == [ca.spiffe_id(NAMESPACE, account)]
        lifetime = certificate.not_valid_after_utc - now
        assert timedelta(days=6, hours=23) < lifetime <= timedelta(days=7, minutes=5)
        assert (mounted / cert_dir.CA_CERT).read_bytes() == (run.ca_dir / ca.CA_CERT).read_bytes()
    assert list(run.scratch.iterdir()) == [], "workload keys left behind in the temporary directory"


def test_running_the_issuing_step_again_rotates_under_the_same_ca(tmp_path):
    first = IssuingRun(tmp_path / "1", "kind-mesh")
    assert first.result.returncode == 0, first.result.stderr
    second_dir = tmp_path / "2"
    second_dir.mkdir()
    (second_dir / "ca").symlink_to(first.ca_dir)  # the same machine, the same CA directory
    second = IssuingRun(second_dir, "kind-mesh")
    assert second.result.returncode == 0, second.result.stderr
    for name, secret in first.secrets().items():
        again = second.secrets()[name]
        assert again["data"][cert_dir.CA_CERT] == secret["data"][cert_dir.CA_CERT], (
            "a new CA: every pod distrusts the others"
        )
        assert again["data"][cert_dir.TLS_KEY] != secret["data"][cert_dir.TLS_KEY]
        assert again["data"][cert_dir.TLS_CERT] != secret["data"][cert_dir.TLS_CERT]


def test_an_overlay_without_the_mesh_gets_no_certificates(tmp_path):
    run = IssuingRun(tmp_path, "kind")
    assert run.result.returncode == 0, run.result.stderr
    assert "nothing to issue" in run.result.stdout
    assert run.secrets() == {}
    assert not run.ca_dir.exists()


def test_the_issuing_step_needs_the_namespace_first(tmp_path):
    run = IssuingRun(tmp_path, "kind-mesh", namespace_exists=False)
    assert run.result.returncode == 1
    assert "namespace sidecar-lab does not exist" in run.result.stderr
    assert "apply the overlay first" in run.result.stderr
    assert run.secrets() == {}


@pytest.mark.parametrize("days", ["1", "0", "seven", "1.5"])
def test_a_lifetime_shorter_than_the_alert_window_is_refused(tmp_path, days):
    run = IssuingRun(tmp_path, "kind-mesh", days=days)
    assert run.result.returncode == 2
    assert "MESH_CERT_DAYS" in run.result.stderr


# -- make -----------------------------------------------------------------------------------


def test_deploy_with_the_mesh_issues_certificates_after_the_apply_and_before_the_wait(tmp_path):
    venv = tmp_path / "venv"
    out = make_dry_run("deploy", "K8S_OVERLAY=kind-mesh", "IMAGE_TAG=9.9.9", f"VENV={venv}")
    steps = [
        f"-m venv {venv}",
        "kind load docker-image --name sidecar-lab sidecar-lab/mesh-proxy:9.9.9",
        "scripts/k8s-render.sh kind-mesh 9.9.9 | kubectl --context kind-sidecar-lab apply -f -",
        f"MESH_PYTHON={venv}/bin/python",
        "scripts/mesh-certs.sh kind-sidecar-lab kind-mesh",
        "scripts/k8s-wait.sh kind-sidecar-lab",
    ]
    positions = [out.find(step) for step in steps]
    assert -1 not in positions, out
    assert positions == sorted(positions), out
    plain = make_dry_run("deploy", f"VENV={venv}")
    assert "mesh-certs.sh" not in plain
    assert "mesh-proxy" not in plain
    assert f"-m venv {venv}" not in plain


def test_the_makefiles_mesh_overlays_are_the_ones_that_mount_certificates(renderings):
    listed = re.search(r"^K8S_MESH_OVERLAYS := (.*)$", (ROOT / "mk" / "k8s.mk").read_text(), re.M)
    assert listed
    mounting = {
        r.name.removeprefix("overlay ")
        for r in renderings
        if r.name.startswith("overlay ")
        and any(
            v["name"] == "mesh-certs" for d in r.of_kind("Deployment") for v in d["spec"]["template"]["spec"]["volumes"]
        )
    }
    assert set(listed.group(1).split()) == mounting == set(MESH_OVERLAYS)
    assert set(MESH_OVERLAYS) <= set(OVERLAYS)


def test_make_mesh_certs_rotates_with_the_same_script():
    out = make_dry_run("mesh-certs", "K8S_OVERLAY=kind-mesh", "MESH_CERT_DAYS=3")
    assert "MESH_CERT_DAYS=3 scripts/mesh-certs.sh kind-sidecar-lab kind-mesh" in out


def test_the_applied_secret_shape_is_what_the_pods_mount(overlay):
    """kubectl builds the Secret, the pod spec names it: keys and name must agree."""
    for workload in ("demo-app", "web"):
        (volume,) = [v for v in pod(overlay("kind-mesh"), workload)["volumes"] if v["name"] == "mesh-certs"]
        assert "items" not in volume["secret"], "every key of the Secret, as the proxy expects them"
        assert volume["secret"]["defaultMode"] == 0o440
        assert not volume["secret"].get("optional"), "a missing Secret must hold the pod, not start it without mTLS"
