"""The manifests (and docker-compose.yml) say exactly what the services read: names, values, ports, mounts."""

from __future__ import annotations

import posixpath
import re
from pathlib import PurePosixPath
from typing import Any

import pytest
import yaml

from sidecar_common import SettingsError, load_settings
from tests.manifests.rendering import ROOT, Rendering, resource_name, unique_documents
from tests.manifests.service_contract import (
    architecture_contract,
    package_of,
    readme_variables,
    same_value,
    service_of_image,
    settings_class,
    settings_variables,
)

COMPOSE_FILE = ROOT / "docker-compose.yml"
# The compose service that owns the app pod's network namespace (Kubernetes' pause container).
COMPOSE_PAUSE = "pause"
COMPOSE_WEB_PAUSE = "web-pause"
# Placeholder for values Kubernetes fills in at run time (Secrets, the Downward API).
FROM_CLUSTER = "filled-in-by-kubernetes"
# Variables whose values legitimately differ between compose and Kubernetes, and why.
ALLOWED_COMPOSE_DIFFERENCES = {
    "POD_NAME": "compose names its single pod; Kubernetes uses the Downward API",
    "POD_NAMESPACE": "as POD_NAME",
    "NODE_NAME": "as POD_NAME",
}
CONTRACT_VOLUMES = {"config-source", "config", "logs", "log-state"}
COMPOSE_VARIABLE = re.compile(r"\$\{[^}]*\}")


def our_containers(renderings: list[Rendering]):
    """(rendering name, resource, container) for every container running one of our images."""
    for name, doc in unique_documents(renderings):
        spec = (doc.get("spec", {}).get("template") or {}).get("spec") or {}
        for container in spec.get("initContainers", []) + spec.get("containers", []):
            service = service_of_image(container["image"])
            if service:
                yield name, doc, spec, container, service


def literal_env(container: dict[str, Any]) -> dict[str, str]:
    """The container's environment as the process will see it (cluster-filled values stubbed)."""
    return {
        e["name"]: e.get("value", FROM_CLUSTER) if "valueFrom" not in e else FROM_CLUSTER
        for e in container.get("env", [])
    }


def uses_own_command(container: dict[str, Any]) -> bool:
    return "command" in container  # e.g. the Job's one-shot task: not the service's entrypoint


def test_every_variable_in_the_manifests_is_read_by_its_service(renderings):
    unknown = []
    for name, doc, _, container, service in our_containers(renderings):
        if uses_own_command(container):
            continue
        known = settings_variables(service)
        documented = readme_variables(service)
        for variable in literal_env(container):
            if variable not in known:
                unknown.append(f"{name}: {resource_name(doc)} {container['name']}: {service} does not read {variable}")
            elif documented is not None and variable not in documented:
                unknown.append(f"{name}: {variable} is missing from services/{service}/README.md's table")
    assert unknown == []


def test_every_container_configuration_is_accepted_by_its_service(renderings):
    refused = []
    for name, doc, _, container, service in our_containers(renderings):
        if uses_own_command(container):
            continue
        try:
            load_settings(settings_class(service), literal_env(container))
        except SettingsError as error:
            refused.append(f"{name}: {resource_name(doc)} {container['name']}: {error}")
    assert refused == []


def test_values_match_the_architecture_contract(renderings):
    contract = architecture_contract()
    assert set(contract) == {"demo_app", "config_sidecar", "log_sidecar", "metrics_exporter", "mesh_proxy"}
    drift = []
    for name, doc, _, container, service in our_containers(renderings):
        defaults = contract[package_of(service)]
        for variable, value in literal_env(container).items():
            expected = defaults.get(variable)
            if expected is not None and value != FROM_CLUSTER and not same_value(value, expected):
                drift.append(
                    f"{name}: {resource_name(doc)} {container['name']}: {variable}={value}, contract says {expected}"
                )
    assert drift == []


def test_ports_and_probes_follow_the_variables(renderings):
    expected_names = {"app": {"http"}, "config-sidecar": {"http-admin-cfg"}, "log-sidecar": {"http-admin-log"}}
    problems = []
    statsd_ports: dict[str, set[int | None]] = {}
    for name, doc, _, container, service in our_containers(renderings):
        if uses_own_command(container):
            continue
        settings = load_settings(settings_class(service), literal_env(container))
        listen = settings.port if service == "app" else settings.admin_port
        ports = {p["containerPort"]: p for p in container.get("ports", [])}
        where = f"{name}: {resource_name(doc)} {container['name']}"
        if listen not in ports:
            problems.append(f"{where}: listens on {listen} but declares ports {sorted(ports)}")
        control = getattr(settings, "control_port", None)  # loopback only: declaring it invites exposing it
        if control in ports:
            problems.append(f"{where}: declares its loopback control port {control}")
        elif service in expected_names and ports[listen]["name"] not in expected_names[service]:
            problems.append(f"{where}: port {listen} named {ports[listen]['name']}")
        if service == "exporter":
            statsd = ports.get(settings.statsd_port, {})
            if (statsd.get("name"), statsd.get("protocol")) != ("udp-statsd", "UDP"):
                problems.append(f"{where}: statsd port {settings.statsd_port} must be udp-statsd/UDP")
            if ports.get(listen, {}).get("name") != "metrics":
                problems.append(f"{where}: port {listen} must be named metrics")
        statsd_ports.setdefault(doc["metadata"]["name"], set()).add(getattr(settings, "statsd_port", None))
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            handler = (container.get(probe) or {}).get("httpGet")
            if handler and handler["port"] not in (listen, ports.get(listen, {}).get("name")):
                problems.append(f"{where}: {probe} probes port {handler['port']}, not {listen}")
    for workload, statsd in statsd_ports.items():
        if len(statsd - {None}) > 1:
            problems.append(f"{workload}: app and exporter disagree on STATSD_PORT: {statsd}")
    assert problems == []


def test_no_service_or_network_policy_names_a_control_port(renderings):
    """A control port is bound to 127.0.0.1: a Service or NetworkPolicy naming it is an exposure waiting to happen."""
    problems = []
    for rendering in renderings:
        control_ports = {
            getattr(load_settings(settings_class(service), literal_env(container)), "control_port", None)
            for _, _, _, container, service in our_containers([rendering])
            if not uses_own_command(container)
        } - {None}
        assert control_ports, f"{rendering.name}: no container has a control port; this test would prove nothing"
        for doc in rendering.of_kind("Service"):
            for port in doc["spec"].get("ports", []):
                if {port.get("port"), port.get("targetPort")} & control_ports:
                    problems.append(f"{rendering.name}: {resource_name(doc)} opens {port}")
        for doc in rendering.of_kind("NetworkPolicy"):
            for rule in doc["spec"].get("ingress", []) + doc["spec"].get("egress", []):
                for port in rule.get("ports", []):
                    if port.get("port") in control_ports:
                        problems.append(f"{rendering.name}: {resource_name(doc)} opens {port}")
    assert problems == []


def mounts_by_path(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {m["mountPath"]: m for m in container.get("volumeMounts", [])}


def mounted(workload: str, by_name: dict[str, dict[str, Any]], container: str, path: object) -> dict[str, Any]:
    """The volumeMount of `container` at `path`, failing the test if there is none."""
    found = mounts_by_path(by_name[container]).get(str(path))
    assert found, f"{workload}: {container} does not mount {path}"
    return found


@pytest.mark.parametrize("workload", ["demo-app", "web"])
def test_shared_volumes_connect_the_right_containers(overlay, workload):
    doc = next(d for d in overlay("kind").of_kind("Deployment") if d["metadata"]["name"] == workload)
    spec = doc["spec"]["template"]["spec"]
    by_name = {c["name"]: c for c in spec["initContainers"] + spec["containers"]}
    settings = {
        name: load_settings(settings_class(str(service_of_image(c["image"]))), literal_env(c))
        for name, c in by_name.items()
    }
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes.keys() >= CONTRACT_VOLUMES
    assert "configMap" in volumes["config-source"] or "projected" in volumes["config-source"]
    for name in ("config", "logs", "log-state"):
        assert "emptyDir" in volumes[name], name

    source = mounted(workload, by_name, "config-sidecar", settings["config-sidecar"].source_dir)
    assert (source["name"], source.get("readOnly")) == ("config-source", True)
    published = mounted(workload, by_name, "config-sidecar", settings["config-sidecar"].target_dir)
    assert (published["name"], published.get("readOnly", False)) == ("config", False)
    assert settings["app"].config_dir == settings["config-sidecar"].target_dir
    loaded = mounted(workload, by_name, "app", settings["app"].config_dir)
    assert (loaded["name"], loaded.get("readOnly")) == ("config", True)

    log_dir = PurePosixPath(str(settings["app"].log_file)).parent
    written = mounted(workload, by_name, "app", log_dir)
    assert (written["name"], written.get("readOnly", False)) == ("logs", False)
    for pattern in settings["log-sidecar"].paths:
        tailed = mounted(workload, by_name, "log-sidecar", posixpath.dirname(pattern))
        assert (tailed["name"], tailed.get("readOnly")) == ("logs", True)
    state = mounted(workload, by_name, "log-sidecar", settings["log-sidecar"].state_dir)
    assert (state["name"], state.get("readOnly", False)) == ("log-state", False)
    # The reload goes to the app's loopback control port (the pod's shared localhost), never the API port.
    assert settings["config-sidecar"].reload_url == f"http://localhost:{settings['app'].control_port}/-/reload"
    assert settings["exporter"].json_url.startswith(f"http://localhost:{settings['app'].port}/")


def compose_pod() -> dict[str, dict[str, Any]]:
    """The compose services that run our images in the app pod, by image service name."""
    if not COMPOSE_FILE.is_file():
        pytest.skip("docker-compose.yml does not exist yet (written in parallel): nothing to compare")
    services = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    pod = {}
    for service in services.values():
        image = str(service.get("image", "")).replace("${IMAGE_TAG:-0.1.0}", "0.1.0")
        our = service_of_image(image)
        # The pod = the containers sharing the pause container's network namespace.
        if our and service.get("network_mode") == f"service:{COMPOSE_PAUSE}":
            pod[our] = service
    return pod


def test_compose_pod_shares_the_namespace_of_a_pause_container_that_publishes_its_ports():
    services = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    pause = services[COMPOSE_PAUSE]
    # Nothing of ours runs there, and it never restarts on its own accord.
    assert service_of_image(str(pause["image"]).replace("${IMAGE_TAG:-0.1.0}", "0.1.0")) is None
    # Both pods: the api pod (the app's API is on its localhost only, behind its Envoy's 8443) and web's.
    for pause_name, members, ports, alias in (
        (
            COMPOSE_PAUSE,
            {"app", "config-sidecar", "log-sidecar", "exporter", "mesh-proxy"},
            {"8081", "8082", "9102", "8443", "9903"},
            "app",
        ),
        (
            COMPOSE_WEB_PAUSE,
            {"web", "web-config-sidecar", "web-log-sidecar", "web-mesh-proxy"},
            {"8080", "8081", "8082", "9903"},
            "web",
        ),
    ):
        pause = services[pause_name]
        joined = {name for name, service in services.items() if service.get("network_mode") == f"service:{pause_name}"}
        assert joined == members
        for name in joined:
            # A container in another's namespace cannot publish ports; the pause container does.
            assert not services[name].get("ports"), f"{name} publishes ports: publish them on {pause_name}"
            assert services[name]["depends_on"][pause_name]["condition"] == "service_started", name
        published = {str(port).rsplit(":", 1)[-1] for port in pause["ports"]}
        assert published == ports
        # The pod keeps the name others reach it by (web's Envoy's upstream, Prometheus's targets).
        assert alias in pause["networks"]["default"]["aliases"]


def compose_env(service: dict[str, Any]) -> dict[str, str]:
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) for item in environment)
    return {key: str(value) for key, value in environment.items() if not str(key).startswith("<<")}


def test_compose_variables_are_read_by_their_services():
    unknown = [
        f"compose {service}: {variable}"
        for service, definition in compose_pod().items()
        for variable in compose_env(definition)
        if variable not in settings_variables(service)
    ]
    assert unknown == []


def test_compose_and_kubernetes_configure_the_pod_alike(overlay):
    pod = compose_pod()
    assert set(pod) == {"app", "config-sidecar", "log-sidecar", "exporter", "mesh-proxy"}
    doc = next(d for d in overlay("kind").of_kind("Deployment") if d["metadata"]["name"] == "demo-app")
    spec = doc["spec"]["template"]["spec"]
    differences = []
    for container in spec["initContainers"] + spec["containers"]:
        service = str(service_of_image(container["image"]))
        kubernetes_env = literal_env(container)
        for variable, value in compose_env(pod[service]).items():
            if variable in ALLOWED_COMPOSE_DIFFERENCES or variable not in kubernetes_env:
                continue
            if kubernetes_env[variable] != FROM_CLUSTER and not same_value(kubernetes_env[variable], value):
                differences.append(f"{service} {variable}: compose {value!r}, kubernetes {kubernetes_env[variable]!r}")
        compose_mounts = {}
        for volume in pod[service].get("volumes") or []:
            parts = COMPOSE_VARIABLE.sub("VAR", str(volume)).split(":")
            if len(parts) >= 2:
                compose_mounts[parts[1]] = len(parts) > 2 and parts[2] == "ro"
        kubernetes_mounts = {path: bool(m.get("readOnly")) for path, m in mounts_by_path(container).items()}
        for path, read_only in compose_mounts.items():
            if kubernetes_mounts.get(path) != read_only:
                differences.append(
                    f"{service} mount {path}: compose read_only={read_only}, kubernetes {kubernetes_mounts.get(path)}"
                )
    assert differences == []
