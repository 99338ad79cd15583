"""`make deploy`'s helpers against stand-ins for docker, kind and kubectl: image pre-loading and stuck rollouts.

The real tools need a cluster; the stand-ins record what the scripts ask of them and
answer as the tools would, so what a user sees on a slow first deploy is tested here.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.manifests.rendering import ROOT
from tests.support.make import make_dry_run
from tests.support.stand_ins import stand_in
from tests.support.tools import require_tool

ELASTICSEARCH = "docker.elastic.co/elasticsearch/elasticsearch:8.15.3"
KIBANA = "docker.elastic.co/kibana/kibana:8.15.3"
PROMETHEUS = "quay.io/prometheus/prometheus:v3.5.0"
MIN_ROLLOUT_SECONDS = 600  # an Elasticsearch pull on the node plus a JVM start on a laptop


def preload(tmp_path: Path, overlay: str, present: set[str]) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """Run kind-preload.sh with a docker that has `present` and a kind that logs its calls."""
    kubectl = require_tool("kubectl", "its built-in kustomize renders the overlay")
    calls = tmp_path / "kind-calls"
    docker = stand_in(
        tmp_path / "docker",
        "# image inspect IMAGE: present only for the images the test put here\n"
        f'case " {" ".join(sorted(present))} " in *" ${{@: -1}} "*) exit 0 ;; *) exit 1 ;; esac\n',
    )
    kind = stand_in(tmp_path / "kind", f'echo "$*" >> {calls}\n')
    result = subprocess.run(
        [str(ROOT / "scripts" / "kind-preload.sh"), "sidecar-lab", overlay, "0.1.0"],
        env={**os.environ, "DOCKER": str(docker), "KIND": str(kind), "KUBECTL": kubectl},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return result, calls.read_text().splitlines() if calls.exists() else []


def test_images_this_machine_has_are_loaded_into_kind_and_the_rest_named(tmp_path: Path) -> None:
    result, kind_calls = preload(tmp_path, "kind", present={ELASTICSEARCH})
    assert result.returncode == 0, result.stderr
    assert kind_calls == [f"load docker-image --name sidecar-lab {ELASTICSEARCH}"]
    assert KIBANA in result.stderr
    assert PROMETHEUS in result.stderr
    assert "ROLLOUT_TIMEOUT" in result.stderr
    assert "sidecar-lab/" not in result.stdout + result.stderr  # ours: make deploy loads them


def test_an_overlay_without_third_party_images_loads_and_says_nothing(tmp_path: Path) -> None:
    result, kind_calls = preload(tmp_path, "kind-lite", present={ELASTICSEARCH})
    assert result.returncode == 0, result.stderr
    assert kind_calls == []
    assert result.stderr == ""


def test_deploy_preloads_before_it_applies_and_waits_long_enough() -> None:
    out = make_dry_run("deploy")
    preload_at = out.find("scripts/kind-preload.sh sidecar-lab kind")
    apply_at = out.find("apply -f -")
    assert 0 <= preload_at < apply_at, out
    match = re.search(r"scripts/k8s-wait.sh kind-sidecar-lab (\d+)s", out)
    assert match, out
    assert int(match.group(1)) >= MIN_ROLLOUT_SECONDS


@pytest.mark.parametrize(
    ("waiting", "advice"),
    [
        ("ImagePullBackOff ", "docker pull"),
        ("ContainerCreating ", "ROLLOUT_TIMEOUT=1200s"),
        ("CrashLoopBackOff ", "describe pods"),
    ],
)
def test_a_stuck_rollout_is_explained(tmp_path: Path, waiting: str, advice: str) -> None:
    kubectl = stand_in(
        tmp_path / "kubectl",
        'case " $* " in\n'
        '  *" get deployments "*) echo deployment.apps/elasticsearch ;;\n'
        '  *" rollout status "*) echo "error: timed out waiting for the condition" >&2; exit 1 ;;\n'
        f'  *" get pods --output "*) printf "{waiting}" ;;\n'
        '  *" get pods"*) echo "elasticsearch-6c9f   0/2   Pending   0   10m" ;;\n'
        "esac\n",
    )
    result = subprocess.run(
        [str(ROOT / "scripts" / "k8s-wait.sh"), "kind-sidecar-lab", "1s"],
        env={**os.environ, "KUBECTL": str(kubectl)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "deployment.apps/elasticsearch is not ready after 1s" in result.stderr
    assert advice in result.stderr


def server_check(
    tmp_path: Path, minimum: str, version_json: str, exit_code: int = 0
) -> subprocess.CompletedProcess[str]:
    """Run k8s-server-version.sh against a kubectl whose `version -o json` prints `version_json`."""
    (tmp_path / "version.json").write_text(version_json)
    kubectl = stand_in(tmp_path / "kubectl", f"cat {tmp_path / 'version.json'}\nexit {exit_code}\n")
    return subprocess.run(
        [str(ROOT / "scripts" / "k8s-server-version.sh"), "kind-sidecar-lab", minimum],
        env={**os.environ, "KUBECTL": str(kubectl)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def version_json(major: str, minor: str) -> str:
    return json.dumps(
        {
            "clientVersion": {"major": "1", "minor": "37", "gitVersion": "v1.37.0"},
            "kustomizeVersion": "v5.7.1",
            "serverVersion": {"major": major, "minor": minor, "gitVersion": f"v{major}.{minor.rstrip('+')}.4"},
        },
        indent=2,
    )


@pytest.mark.parametrize(
    ("major", "minor", "accepted"),
    [("1", "28", False), ("1", "29", True), ("1", "37", True), ("1", "29+", True), ("1", "9", False), ("2", "0", True)],
)
def test_deploy_refuses_a_cluster_too_old_for_native_sidecars(tmp_path: Path, major: str, minor: str, accepted: bool):
    result = server_check(tmp_path, "1.29", version_json(major, minor))
    assert (result.returncode == 0) is accepted, result.stdout + result.stderr
    if not accepted:
        assert f"runs Kubernetes {major}.{minor.rstrip('+')}; the lab needs 1.29 or newer" in result.stderr
        assert "make kind-down" in result.stderr
        assert "K8S_OVERLAY=kind-classic" in result.stderr


def test_an_unreachable_cluster_is_named(tmp_path: Path) -> None:
    client_only = json.dumps({"clientVersion": {"major": "1", "minor": "37"}})
    result = server_check(tmp_path, "1.29", client_only, exit_code=1)
    assert result.returncode == 1
    assert "cannot read the server version of context kind-sidecar-lab" in result.stderr


def test_deploy_checks_the_version_after_creating_and_before_anything_else() -> None:
    out = make_dry_run("deploy")
    create_at = out.find("kind create cluster")
    check_at = out.find("scripts/k8s-server-version.sh kind-sidecar-lab 1.29")
    images_at = out.find("make images")
    assert 0 <= create_at < check_at < images_at, out


def test_the_kind_node_image_is_pinned_by_digest_to_a_validated_version() -> None:
    cluster = yaml.safe_load((ROOT / "k8s" / "kind-cluster.yaml").read_text())
    images = {node.get("image") for node in cluster["nodes"]}
    assert len(images) == 1
    (image,) = images
    match = re.fullmatch(r"kindest/node:v(\d+)\.(\d+)\.(\d+)@sha256:[0-9a-f]{64}", str(image))
    assert match, f"pin kindest/node:vX.Y.Z@sha256:... from kind's release notes, not {image!r}"
    pinned = (int(match.group(1)), int(match.group(2)))
    assert pinned >= (1, 29), "native sidecars need Kubernetes 1.29"
    validated = re.search(r"^K8S_VERSION \?= (\d+)\.(\d+)$", (ROOT / "mk" / "k8s.mk").read_text(), re.M)
    assert validated, "mk/k8s.mk sets no K8S_VERSION"
    assert pinned == (int(validated.group(1)), int(validated.group(2))), "k8s-render validates another version"
