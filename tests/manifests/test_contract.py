"""The manifests (and docker-compose.yml) say exactly what the services read: names, values, ports, mounts."""

from __future__ import annotations

import copy
import fnmatch
import posixpath
import re
from pathlib import PurePosixPath
from typing import Any

import pytest
import yaml

from sidecar_common import SettingsError, load_settings
from tests.manifests.network_policy import selects
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
        defaults = contract.get(package_of(service), {})  # not every service is in the table
        for variable, value in literal_env(container).items():
            expected = defaults.get(variable)
            if expected is not None and value != FROM_CLUSTER and not same_value(value, expected):
                drift.append(
                    f"{name}: {resource_name(doc)} {container['name']}: {variable}={value}, contract says {expected}"
                )
    assert drift == []


LOOPBACK = ("127.0.0.1", "localhost", "::1")


def loopback_ports(service: str, settings: Any) -> set[int]:
    """The ports a container binds to 127.0.0.1 only: nothing outside the pod may name them."""
    control: int | None = getattr(settings, "control_port", None)  # the app's and the exporter's
    ports = set() if control is None else {control}
    if service == "app" and settings.host in LOOPBACK:
        ports.add(settings.port)  # the API behind the mesh proxy (components/mesh-envoy)
    if service == "mesh-proxy":
        ports |= {settings.admin_port, settings.outbound_port}  # always bound to 127.0.0.1 by the proxy
    return ports


def public_ports(service: str, settings: Any) -> dict[int, str | None]:
    """The ports the kubelet and other pods reach, each with the containerPort name it must have (None: any)."""
    if service == "app":
        return {} if settings.host in LOOPBACK else {settings.port: "http"}
    if service == "mesh-proxy":
        return {settings.inbound_port: "https-mesh", settings.stats_port: "http-mesh-stats"}
    names = {"config-sidecar": "http-admin-cfg", "log-sidecar": "http-admin-log", "exporter": "metrics"}
    return {settings.admin_port: names[service]}


def test_ports_and_probes_follow_the_variables(renderings):
    problems = []
    statsd_ports: dict[str, set[int | None]] = {}
    for name, doc, _, container, service in our_containers(renderings):
        if uses_own_command(container):
            continue
        settings = load_settings(settings_class(service), literal_env(container))
        listen = public_ports(service, settings)
        hidden = loopback_ports(service, settings)
        ports = {p["containerPort"]: p for p in container.get("ports", [])}
        where = f"{name}: {resource_name(doc)} {container['name']}"
        for number, port_name in listen.items():
            if number not in ports:
                problems.append(f"{where}: listens on {number} but declares ports {sorted(ports)}")
            elif port_name is not None and ports[number]["name"] != port_name:
                problems.append(f"{where}: port {number} named {ports[number]['name']}, not {port_name}")
        for number in hidden & set(ports):  # declaring a loopback port invites exposing it
            problems.append(f"{where}: declares its loopback-only port {number}")
        if service == "exporter":
            statsd = ports.get(settings.statsd_port, {})
            if (statsd.get("name"), statsd.get("protocol")) != ("udp-statsd", "UDP"):
                problems.append(f"{where}: statsd port {settings.statsd_port} must be udp-statsd/UDP")
        statsd_ports.setdefault(doc["metadata"]["name"], set()).add(getattr(settings, "statsd_port", None))
        probe_ports = set(listen) | {ports[number]["name"] for number in listen if number in ports}
        if service == "mesh-proxy":  # Envoy's /ready on the stats port, never the admin port
            probe_ports = {settings.stats_port, ports.get(settings.stats_port, {}).get("name")}
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            spec = container.get(probe) or {}
            handler = spec.get("httpGet") or spec.get("tcpSocket")
            if handler and handler["port"] not in probe_ports:
                problems.append(f"{where}: {probe} probes port {handler['port']}, not one of {sorted(listen)}")
            if spec and not listen and "exec" not in spec:
                problems.append(f"{where}: {probe} must be an exec probe: the kubelet cannot reach a loopback port")
    for workload, statsd in statsd_ports.items():
        if len(statsd - {None}) > 1:
            problems.append(f"{workload}: app and exporter disagree on STATSD_PORT: {statsd}")
    assert problems == []


def pod_labels(doc: dict[str, Any]) -> dict[str, str]:
    labels: dict[str, str] = doc["spec"]["template"]["metadata"].get("labels") or {}
    return labels


def loopback_exposures(rendering: Rendering) -> list[str]:
    """Services and NetworkPolicies of a rendering that name a port some pod binds to 127.0.0.1 only."""
    hidden: dict[str, tuple[dict[str, str], set[int]]] = {}
    for _, doc, _, container, service in our_containers([rendering]):
        if uses_own_command(container):
            continue
        settings = load_settings(settings_class(service), literal_env(container))
        hidden.setdefault(resource_name(doc), (pod_labels(doc), set()))[1].update(loopback_ports(service, settings))
    assert any(ports for _, ports in hidden.values()), f"{rendering.name}: no loopback port; this proves nothing"
    problems = []
    for workload, (labels, ports) in hidden.items():
        for doc in rendering.of_kind("Service"):
            selector = doc["spec"].get("selector")
            if not selector or not selects({"matchLabels": selector}, labels):
                continue
            for port in doc["spec"].get("ports", []):
                if {port.get("port"), port.get("targetPort")} & ports:
                    problems.append(f"{rendering.name}: {resource_name(doc)} opens {port} of {workload}")
        for doc in rendering.of_kind("NetworkPolicy"):
            rules = list(doc["spec"].get("ingress", [])) if selects(doc["spec"].get("podSelector", {}), labels) else []
            for rule in doc["spec"].get("egress", []):  # other pods' way to this one
                if any(selects(peer.get("podSelector"), labels) for peer in rule.get("to", [])):
                    rules.append(rule)
            for rule in rules:
                for port in rule.get("ports", []):
                    if port.get("port") in ports:
                        problems.append(f"{rendering.name}: {resource_name(doc)} opens {port} of {workload}")
    return problems


def test_no_service_or_network_policy_names_a_loopback_port(renderings):
    """A port bound to 127.0.0.1 (control ports, the meshed API, Envoy's admin and outbound):
    a Service or NetworkPolicy naming it is an exposure waiting to happen."""
    problems = []
    for rendering in renderings:
        problems += loopback_exposures(rendering)
    assert problems == []


def test_the_loopback_check_catches_a_service_still_pointing_at_the_meshed_api(overlay):
    meshed = overlay("kind-mesh")
    service = copy.deepcopy(next(d for d in meshed.of_kind("Service") if d["metadata"]["name"] == "demo-app"))
    service["spec"]["ports"].append({"name": "http", "port": 8080, "targetPort": 8080})
    broken = Rendering(meshed.name, (*meshed.documents, service))
    assert any("Service/demo-app opens" in problem for problem in loopback_exposures(broken))


def mounts_by_path(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {m["mountPath"]: m for m in container.get("volumeMounts", [])}


def mounted(workload: str, by_name: dict[str, dict[str, Any]], container: str, path: object) -> dict[str, Any]:
    """The volumeMount of `container` at `path`, failing the test if there is none."""
    found = mounts_by_path(by_name[container]).get(str(path))
    assert found, f"{workload}: {container} does not mount {path}"
    return found


@pytest.mark.parametrize("name", ["kind", "kind-mesh"])
@pytest.mark.parametrize("workload", ["demo-app", "web"])
def test_shared_volumes_connect_the_right_containers(overlay, name, workload):
    doc = next(d for d in overlay(name).of_kind("Deployment") if d["metadata"]["name"] == workload)
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
    if "mesh-proxy" in by_name:
        check_mesh_proxy_volumes(workload, spec, by_name, settings)


def check_mesh_proxy_volumes(
    workload: str, spec: dict[str, Any], by_name: dict[str, dict[str, Any]], settings: dict[str, Any]
) -> None:
    """Our Envoy reads the config sidecar's publish, its pod's Secret, and writes where the log sidecar reads."""
    mesh = settings["mesh-proxy"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    policy = mounted(workload, by_name, "mesh-proxy", mesh.policy_dir)
    assert (policy["name"], policy.get("readOnly")) == ("config", True)
    assert mesh.policy_dir == settings["config-sidecar"].target_dir
    # The policy files are nested items of the pod's ConfigMap: mesh/routes.yaml, mesh/clusters.yaml.
    items = {item["path"] for item in volumes["config-source"]["configMap"]["items"]}
    assert {"mesh/routes.yaml", "mesh/clusters.yaml"} <= items
    certs = mounted(workload, by_name, "mesh-proxy", mesh.cert_dir)
    assert certs.get("readOnly") is True
    secret = volumes[certs["name"]]["secret"]
    assert secret["secretName"] == f"mesh-certs-{spec['serviceAccountName']}"
    assert secret["defaultMode"] & 0o007 == 0, "the workload key is for the pod's group only"
    run = mounted(workload, by_name, "mesh-proxy", mesh.run_dir)
    assert "emptyDir" in volumes[run["name"]]
    assert not run.get("readOnly")
    access_log = PurePosixPath(mesh.access_log)
    written = mounted(workload, by_name, "mesh-proxy", access_log.parent)
    assert (written["name"], written.get("readOnly", False)) == ("logs", False)
    assert any(fnmatch.fnmatch(str(access_log), pattern) for pattern in settings["log-sidecar"].paths), (
        "the log sidecar does not ship Envoy's access log"
    )
    # Everything the proxy mounts is one of these: no other volume, no other container's.
    assert {m["name"] for m in by_name["mesh-proxy"]["volumeMounts"]} == {"config", certs["name"], "mesh-run", "logs"}


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


def target_port_problems(rendering: Rendering) -> list[str]:
    """Service ports that would have no endpoint: a target nothing declares, or a name only a native sidecar has.

    A named targetPort declared only by a native sidecar (an init container) resolves from
    Kubernetes 1.33 on (kubernetes/kubernetes#128850); before, the Service has no endpoint.
    """
    problems = []
    workloads = [doc for doc in rendering.documents if doc.get("kind") in ("Deployment", "StatefulSet", "Job")]
    for service in rendering.of_kind("Service"):
        selector = service["spec"].get("selector")
        pods = [w for w in workloads if selector and selects({"matchLabels": selector}, pod_labels(w))]
        for port in service["spec"].get("ports", []):
            target = port.get("targetPort", port["port"])
            for workload in pods:
                spec = workload["spec"]["template"]["spec"]
                regular = [p for c in spec["containers"] for p in c.get("ports", [])]
                sidecars = [
                    p
                    for c in spec.get("initContainers", [])
                    if c.get("restartPolicy") == "Always"
                    for p in c.get("ports", [])
                ]
                key = "name" if isinstance(target, str) else "containerPort"
                where = f"{rendering.name}: {resource_name(service)} port {port['name']} -> {resource_name(workload)}"
                if any(p[key] == target for p in regular):
                    continue
                if any(p[key] == target for p in sidecars):
                    if key == "name":
                        problems.append(
                            f"{where}: '{target}' is a native sidecar's port name: before 1.33, use its number"
                        )
                    continue
                problems.append(f"{where}: no container declares {target}")
    return problems


def test_every_service_port_has_an_endpoint_on_every_supported_kubernetes(renderings):
    problems = []
    for rendering in renderings:
        problems += target_port_problems(rendering)
    assert problems == []


def test_the_target_port_check_catches_a_named_sidecar_port(overlay):
    rendering = overlay("kind")
    service = copy.deepcopy(next(d for d in rendering.of_kind("Service") if d["metadata"]["name"] == "demo-app"))
    service["spec"]["ports"][1]["targetPort"] = "metrics"  # the exporter's port, a native sidecar
    service["spec"]["ports"][2]["targetPort"] = 9999
    problems = target_port_problems(Rendering(rendering.name, (service,)))
    assert problems == []  # no workload in that rendering: nothing selected, nothing to say
    problems = target_port_problems(Rendering(rendering.name, (*rendering.documents, service)))
    assert any("'metrics' is a native sidecar's port name" in p for p in problems)
    assert any("no container declares 9999" in p for p in problems)
