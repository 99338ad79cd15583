"""Every overlay and every valid component combination renders, with the expected shape."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from sidecar_common import load_settings
from tests.manifests.rendering import (
    COMPONENTS,
    K8S,
    OVERLAYS,
    RenderError,
    Rendering,
    combination_problem,
    kustomize,
    valid_combinations,
    write_combination,
)
from tests.manifests.service_contract import settings_class

APP_POD_DEPLOYMENTS = ("demo-app", "web")
NATIVE_SIDECARS = ["config-sidecar", "log-sidecar", "exporter"]
# The native sidecars an overlay adds after those three, in order.
EXTRA_SIDECARS = {
    "kind-agent": ["prometheus-agent"],
    "kind-mesh": ["mesh-proxy"],
    "kind-mesh-fault-abort": ["mesh-proxy"],
}


def deployment(rendering: Rendering, name: str) -> dict[str, Any]:
    matches = [doc for doc in rendering.of_kind("Deployment") if doc["metadata"]["name"] == name]
    assert len(matches) == 1, f"{rendering.name}: expected one Deployment {name}"
    return matches[0]


def pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = doc["spec"]["template"]["spec"]
    return spec


def test_every_overlay_and_valid_combination_renders(renderings):
    expected = len(OVERLAYS) + len(valid_combinations())
    assert len(renderings) == expected
    for rendering in renderings:
        kinds = {doc["kind"] for doc in rendering.documents}
        assert {"Namespace", "Deployment", "Service", "Job", "NetworkPolicy"} <= kinds, rendering.name
        namespaced = [doc for doc in rendering.documents if doc["kind"] != "Namespace"]
        assert {doc["metadata"].get("namespace") for doc in namespaced} == {"sidecar-lab"}, rendering.name


def test_combination_rules_cover_every_component():
    combos = valid_combinations()
    for component in COMPONENTS:
        assert any(component in combo for combo in combos), f"{component} is never rendered"
    assert combination_problem(["istio-fault-abort"]) is not None
    assert combination_problem(["observability", "prometheus-agent", "classic-sidecars"]) is not None
    assert combination_problem(["observability", "istio", "istio-fault-delay"]) is None
    assert combination_problem(["mesh-envoy", "istio"]) is not None
    assert combination_problem(["mesh-envoy", "classic-sidecars"]) is not None
    assert combination_problem(["observability", "prometheus-agent", "mesh-envoy"]) is None


@pytest.mark.parametrize("name", OVERLAYS)
def test_overlay_pods_use_native_sidecars_unless_classic(overlay, name):
    rendering = overlay(name)
    for app in APP_POD_DEPLOYMENTS:
        spec = pod_spec(deployment(rendering, app))
        init_names = [c["name"] for c in spec.get("initContainers", [])]
        main_names = [c["name"] for c in spec["containers"]]
        if name == "kind-classic":
            assert init_names == []
            assert main_names == [*NATIVE_SIDECARS, "app"]
            assert all("restartPolicy" not in c for c in spec["containers"])
        else:
            # The config sidecar first, the others before the app; the agent (if any) last.
            assert init_names[:3] == NATIVE_SIDECARS
            assert main_names == ["app"]
            assert all(c["restartPolicy"] == "Always" for c in spec["initContainers"])
            assert init_names[3:] == EXTRA_SIDECARS.get(name, [])


def test_config_sidecar_gates_the_app_on_its_first_publish(overlay):
    spec = pod_spec(deployment(overlay("kind"), "demo-app"))
    config_sidecar = spec["initContainers"][0]
    assert config_sidecar["name"] == "config-sidecar"
    probe = config_sidecar["startupProbe"]
    # /readyz turns 200 only after the first publish; it must not be /livez.
    assert probe["httpGet"] == {"path": "/readyz", "port": 8081}
    # Long enough for a first publish on a slow node, short enough to notice a broken one.
    assert 20 <= probe["periodSeconds"] * probe["failureThreshold"] <= 300


def test_log_sidecar_drain_fits_in_the_grace_period(overlay):
    for name in ("kind", "kind-classic", "kind-mesh"):
        spec = pod_spec(deployment(overlay(name), "demo-app"))
        everything = spec.get("initContainers", []) + spec["containers"]
        log_sidecar = next(c for c in everything if c["name"] == "log-sidecar")
        drain = float(next(e["value"] for e in log_sidecar["env"] if e["name"] == "LOG_DRAIN_SECONDS"))
        app_pre_stop, gunicorn_graceful = 5, 20
        classic_pre_stop = 25 if name == "kind-classic" else 0
        # Our Envoy stops after the app and before the log sidecar: its drain time comes in between.
        proxy = next((c for c in everything if c["name"] == "mesh-proxy"), None)
        envoy_drain = 0
        if proxy is not None:
            env = {e["name"]: e["value"] for e in proxy["env"] if "value" in e}
            envoy_drain = load_settings(settings_class("mesh-proxy"), env).drain_seconds
        used = (classic_pre_stop if classic_pre_stop else app_pre_stop + gunicorn_graceful) + envoy_drain + drain
        assert used < spec["terminationGracePeriodSeconds"], name


def test_job_log_sidecar_is_native_so_the_job_can_complete(overlay):
    job = next(doc for doc in overlay("kind").of_kind("Job") if doc["metadata"]["name"] == "log-once")
    spec = job["spec"]["template"]["spec"]
    assert spec["restartPolicy"] == "Never"
    assert [c["name"] for c in spec["initContainers"]] == ["log-sidecar"]
    assert spec["initContainers"][0]["restartPolicy"] == "Always"
    assert [c["name"] for c in spec["containers"]] == ["task"]


def test_image_tags_and_pull_policy(renderings):
    for rendering in renderings:
        for doc in rendering.of_kind("Deployment", "Job"):
            for container in pod_spec(doc).get("initContainers", []) + pod_spec(doc)["containers"]:
                image = container["image"]
                assert ":" in image.rsplit("/", 1)[-1], f"{image}: pin a tag"
                assert not image.endswith(":latest"), image
                if image.startswith("sidecar-lab/"):
                    assert image.endswith(":0.1.0"), image
                    # kind load puts them in the node's image store; there is no registry.
                    assert container["imagePullPolicy"] == "IfNotPresent", image


def test_kind_port_mappings_match_the_node_ports(overlay):
    cluster = yaml.safe_load((K8S / "kind-cluster.yaml").read_text())
    mappings = cluster["nodes"][0]["extraPortMappings"]
    assert all(m["listenAddress"] == "127.0.0.1" for m in mappings), "never expose the lab beyond localhost"
    mapped = {m["containerPort"] for m in mappings}
    node_ports = {
        port["nodePort"]
        for doc in overlay("kind").of_kind("Service")
        for port in doc["spec"]["ports"]
        if "nodePort" in port
    }
    assert node_ports == mapped


def config_files(directory: Path) -> list[str]:
    """Every file below `directory`, as relative paths (mesh/routes.yaml), dotfiles left out."""
    return sorted(
        str(p.relative_to(directory))
        for p in directory.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(directory).parts)
    )


def test_base_config_mirrors_the_compose_config_directory():
    compose_config = Path(K8S.parent / "config")
    k8s_config = K8S / "base" / "config"
    files = config_files(compose_config)
    assert "mesh/routes.yaml" in files, "the mesh policy moved: follow it here"
    assert config_files(k8s_config) == files
    for name in files:
        assert (k8s_config / name).read_text() == (compose_config / name).read_text(), (
            f"k8s/base/config/{name} differs from config/{name}: copy it over"
        )
    names = [name for name in files if "/" not in name]
    volume = next(
        v
        for v in pod_spec(yaml.safe_load((K8S / "base" / "deployment-demo-app.yaml").read_text()))["volumes"]
        if v["name"] == "config-source"
    )
    assert sorted(item["key"] for item in volume["configMap"]["items"]) == names


def test_a_broken_kustomization_is_reported(tmp_path):
    workdir = write_combination(tmp_path / "broken", ["no-such-component"])
    with pytest.raises(RenderError, match="no-such-component"):
        kustomize(workdir)


def test_web_config_mirrors_the_compose_web_config():
    compose_config = K8S.parent / "deploy" / "compose" / "web" / "config"
    k8s_config = K8S / "base" / "web-config"
    names = sorted(p.name for p in compose_config.iterdir() if p.is_file())
    assert sorted(p.name for p in k8s_config.iterdir()) == names
    for name in names:
        assert (k8s_config / name).read_text() == (compose_config / name).read_text(), (
            f"k8s/base/web-config/{name} differs from deploy/compose/web/config/{name}: copy it over"
        )
    schema = json.loads((K8S.parent / "services" / "config-sidecar" / "schemas" / "app.schema.json").read_text())
    jsonschema.validate(yaml.safe_load((k8s_config / "app.yaml").read_text()), schema)


def config_maps_used_by(pod: dict[str, Any]) -> set[str]:
    """Every ConfigMap a pod spec reads: volumes (plain or projected), env and envFrom."""
    used = set()
    for volume in pod.get("volumes", []):
        if "configMap" in volume:
            used.add(volume["configMap"]["name"])
        for source in volume.get("projected", {}).get("sources", []):
            if "configMap" in source:
                used.add(source["configMap"]["name"])
    for container in pod.get("initContainers", []) + pod["containers"]:
        for env in container.get("env", []):
            ref = env.get("valueFrom", {}).get("configMapKeyRef")
            if ref:
                used.add(ref["name"])
        for source in container.get("envFrom", []):
            if "configMapRef" in source:
                used.add(source["configMapRef"]["name"])
    return used


def test_web_reads_only_its_own_config_and_its_chaos_is_off(renderings):
    """demo-app's chaos knobs (labs 01, 05) must make demo-app fail, never web before it calls demo-app."""
    for rendering in renderings:
        web = pod_spec(deployment(rendering, "web"))
        used = config_maps_used_by(web)
        assert "web-config" in used, f"{rendering.name}: web does not read web-config"
        assert "app-config" not in used, f"{rendering.name}: web reads demo-app's app-config"
        config_map = next(doc for doc in rendering.of_kind("ConfigMap") if doc["metadata"]["name"] == "web-config")
        chaos = yaml.safe_load(config_map["data"]["app.yaml"]).get("chaos") or {}
        assert not chaos.get("error_rate"), f"{rendering.name}: web's chaos.error_rate is on"
        assert not chaos.get("latency_ms"), f"{rendering.name}: web's chaos.latency_ms is on"
