"""The Kubernetes make targets: listed by `make help`, and correct as a dry run (no cluster here)."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest
import yaml

from tests.manifests.rendering import ROOT
from tests.support.make import make
from tests.support.tools import require_tool

TARGETS = ("deploy", "istio", "undeploy", "kind-down", "k8s-render", "mesh-certs", "test-manifests")


def help_targets() -> list[str]:
    """Every target `make help` lists."""
    result = make("help")
    assert result.returncode == 0, result.stderr
    return [line.split()[0].replace("\x1b[36m", "") for line in result.stdout.splitlines() if line.strip()]


def test_help_lists_every_kubernetes_target():
    assert set(TARGETS) <= set(help_targets())


def test_every_target_that_runs_a_venv_tool_builds_the_venv_first(tmp_path):
    """On a fresh clone (no .venv), a target calling .venv/bin/... must run `make install` before it."""
    venv = tmp_path / "venv"
    missing = []
    for target in help_targets():
        # One stream, in order: k8s-render runs install with its output on stderr.
        result = subprocess.run(
            ["make", "--no-print-directory", "-n", target, f"VENV={venv}"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, f"make -n {target}: {result.stdout}"
        lines = result.stdout.splitlines()
        uses = [number for number, line in enumerate(lines) if f"{venv}/bin/" in line]
        created = [number for number, line in enumerate(lines) if f"-m venv {venv}" in line]
        if uses and not (created and created[0] <= uses[0]):
            missing.append(target)
    assert missing == [], f"these targets use {venv}/bin before creating it: add `install` (see k8s-render)"


def test_deploy_dry_run_shows_every_step_in_order():
    result = make("-n", "deploy", "IMAGE_TAG=9.9.9", "K8S_OVERLAY=kind-lite")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    steps = [
        "kind get clusters",
        "kind create cluster --name sidecar-lab --config k8s/kind-cluster.yaml",
        "make images IMAGE_TAG=9.9.9",
        "kind load docker-image --name sidecar-lab sidecar-lab/app:9.9.9",
        "scripts/k8s-render.sh kind-lite 9.9.9 | kubectl --context kind-sidecar-lab apply -f -",
        "scripts/k8s-wait.sh kind-sidecar-lab",
    ]
    positions = [out.find(step) for step in steps]
    assert -1 not in positions, out
    assert positions == sorted(positions), out
    for image in ("app", "config-sidecar", "log-sidecar", "exporter"):
        assert f"sidecar-lab/{image}:9.9.9" in out


def test_istio_dry_run_installs_with_cni_and_native_sidecars():
    result = make("-n", "istio")
    assert result.returncode == 0, result.stderr
    assert "--set profile=demo" in result.stdout
    assert "--set components.cni.enabled=true" in result.stdout
    assert "ENABLE_NATIVE_SIDECARS=true" in result.stdout
    assert "scripts/k8s-render.sh kind-istio" in result.stdout
    assert "rollout restart deployment" in result.stdout


def restart_selectors(dry_run: str) -> list[dict[str, str] | None]:
    """The label selector of each `rollout restart` in a dry run (None: restarts every Deployment)."""
    found: list[dict[str, str] | None] = []
    for line in dry_run.splitlines():
        if "rollout restart" not in line:
            continue
        words = line.split()
        selector = None
        for index, word in enumerate(words):
            if word in ("--selector", "-l") and index + 1 < len(words):
                selector = words[index + 1]
            elif word.startswith(("--selector=", "-l=")):
                selector = word.split("=", 1)[1]
        found.append(dict(pair.split("=", 1) for pair in selector.split(",")) if selector else None)
    return found


def selected(selector: dict[str, str] | None, doc: dict[str, Any]) -> bool:
    labels = doc["metadata"].get("labels") or {}
    return selector is None or all(labels.get(key) == value for key, value in selector.items())


@pytest.mark.parametrize("istio_overlay", ["kind-istio", "kind-istio-fault-delay", "kind-istio-fault-abort"])
def test_make_istio_restarts_the_app_pods_and_never_elasticsearch(overlay, istio_overlay):
    """Elasticsearch keeps its data, its users too, on an emptyDir: a restart empties it."""
    result = make("-n", "istio", f"ISTIO_OVERLAY={istio_overlay}")
    assert result.returncode == 0, result.stderr
    selectors = restart_selectors(result.stdout)
    assert selectors, "make istio restarts nothing: pods from before the mesh would keep running without Envoy"
    deployments = overlay(istio_overlay).of_kind("Deployment")
    restarted = {doc["metadata"]["name"] for selector in selectors for doc in deployments if selected(selector, doc)}
    assert restarted == {"demo-app", "web"}


def test_the_restart_check_catches_a_restart_of_everything():
    assert restart_selectors("kubectl -n sidecar-lab rollout restart deployment") == [None]
    assert restart_selectors("kubectl rollout restart deployment -l a=b,c=d") == [{"a": "b", "c": "d"}]


@pytest.mark.parametrize("istio_overlay", ["kind-istio", "kind-istio-fault-delay", "kind-istio-fault-abort"])
def test_joining_the_mesh_leaves_every_other_pod_template_unchanged(overlay, istio_overlay):
    """Applying kind-istio over kind must not roll the backends either: a new template is a new pod."""
    before = {doc["metadata"]["name"]: doc for doc in overlay("kind").of_kind("Deployment")}
    after = {doc["metadata"]["name"]: doc for doc in overlay(istio_overlay).of_kind("Deployment")}
    assert set(before) == set(after)
    rolled = [
        name
        for name, doc in after.items()
        if name not in ("demo-app", "web") and doc["spec"]["template"] != before[name]["spec"]["template"]
    ]
    assert rolled == [], f"{istio_overlay} changes the pod template of {rolled}: applying it restarts them"


@pytest.mark.parametrize(
    ("target", "command"),
    [("undeploy", "delete namespace sidecar-lab"), ("kind-down", "kind delete cluster --name sidecar-lab")],
)
def test_teardown_dry_runs(target, command):
    result = make("-n", target)
    assert result.returncode == 0, result.stderr
    assert command in result.stdout


def test_k8s_render_prints_the_overlay_with_the_requested_tag():
    require_tool("kubectl", "its built-in kustomize renders the overlays")
    result = make("k8s-render", "K8S_OVERLAY=kind-lite", "IMAGE_TAG=2.0.0")
    assert result.returncode == 0, result.stderr
    documents = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    images = {
        container["image"]
        for doc in documents
        if doc["kind"] in ("Deployment", "Job")
        for container in doc["spec"]["template"]["spec"].get("initContainers", [])
        + doc["spec"]["template"]["spec"]["containers"]
    }
    assert images == {f"sidecar-lab/{name}:2.0.0" for name in ("app", "config-sidecar", "log-sidecar", "exporter")}


def test_render_script_refuses_an_unknown_overlay_and_a_bad_tag():
    script = str(ROOT / "scripts" / "k8s-render.sh")
    for args in (["no-such-overlay"], ["kind", "bad tag!"]):
        result = subprocess.run([script, *args], capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode == 2, result.stderr
