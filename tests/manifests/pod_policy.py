"""Security, probe and Istio-readiness rules every rendered workload and Service must follow.

Each check returns a list of Violations (empty = compliant), so a test can show every
problem at once and a unit test can feed a deliberately broken spec and see it caught.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

Document = dict[str, Any]

# Ports Istio's sidecar and agent use inside every pod (istio.io "Application requirements").
ISTIO_RESERVED_PORTS = frozenset({15000, 15001, 15002, 15004, 15006, 15008, 15020, 15021, 15053, 15090})
ISTIO_PROXY_UID = 1337
# Service port names Istio reads as a protocol: `<protocol>[-<suffix>]`.
ISTIO_PROTOCOLS = ("http", "http2", "https", "grpc", "grpc-web", "mongo", "mysql", "redis", "tcp", "tls", "udp")
SERVICE_PORT_NAME = re.compile(rf"^({'|'.join(re.escape(p) for p in ISTIO_PROTOCOLS)})(-[a-z0-9-]+)?$")
REQUIRED_POD_LABELS = ("app.kubernetes.io/name", "app.kubernetes.io/version", "app", "version")
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job")


@dataclass(frozen=True)
class Violation:
    """One rule broken by one resource (and container, where it applies)."""

    resource: str
    container: str | None
    rule: str
    detail: str

    def __str__(self) -> str:
        where = self.resource + (f" container {self.container}" if self.container else "")
        return f"{where}: {self.rule}: {self.detail}"


@dataclass(frozen=True)
class Container:
    """A container of a pod spec and the part it plays in the pod's lifecycle."""

    spec: dict[str, Any]
    role: str  # "main", "sidecar" (native), "init" (run once) or "task" (a Job's main container)

    @property
    def name(self) -> str:
        return str(self.spec.get("name"))

    @property
    def long_running(self) -> bool:
        return self.role in ("main", "sidecar")


def pod_template(doc: Document) -> dict[str, Any] | None:
    """The pod template of a workload (metadata + spec), None for other kinds."""
    kind = doc.get("kind")
    spec = doc.get("spec") or {}
    if kind in WORKLOAD_KINDS:
        template: dict[str, Any] | None = spec.get("template")
        return template
    if kind == "CronJob":
        job_template: dict[str, Any] | None = spec.get("jobTemplate", {}).get("spec", {}).get("template")
        return job_template
    if kind == "Pod":
        return {"metadata": doc.get("metadata", {}), "spec": spec}
    return None


def containers(doc: Document, pod_spec: dict[str, Any]) -> Iterator[Container]:
    """Every container of the pod, init containers first, each with its lifecycle role."""
    run_to_completion = doc.get("kind") in ("Job", "CronJob")
    for spec in pod_spec.get("initContainers") or []:
        yield Container(spec, "sidecar" if spec.get("restartPolicy") == "Always" else "init")
    for spec in pod_spec.get("containers") or []:
        yield Container(spec, "task" if run_to_completion else "main")


def check_workload(doc: Document) -> list[Violation]:
    """Check one workload: labels, pod and container security, probes, resources, ports."""
    template = pod_template(doc)
    if template is None:
        return []
    resource = f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
    pod_spec = template.get("spec") or {}
    violations = [
        Violation(resource, None, "labels", f"pod template lacks label {label}")
        for label in REQUIRED_POD_LABELS
        if label not in (template.get("metadata", {}).get("labels") or {})
    ]
    pod_security = pod_spec.get("securityContext") or {}
    if pod_spec.get("hostNetwork") or pod_spec.get("hostPID") or pod_spec.get("hostIPC"):
        violations.append(Violation(resource, None, "host-namespaces", "hostNetwork/hostPID/hostIPC must stay off"))
    for container in containers(doc, pod_spec):
        violations += check_container(resource, container, pod_security)
    return violations


def check_container(resource: str, container: Container, pod_security: dict[str, Any]) -> list[Violation]:
    """Check one container against the restricted profile, Istio's rules, probes and resources."""
    spec = container.spec
    name = container.name
    found: list[Violation] = []

    def broken(rule: str, detail: str) -> None:
        found.append(Violation(resource, name, rule, detail))

    security = spec.get("securityContext") or {}

    def effective(key: str) -> Any:
        return security.get(key, pod_security.get(key))

    if effective("runAsNonRoot") is not True:
        broken("security", "runAsNonRoot must be true (container or pod)")
    uid = effective("runAsUser")
    if uid == 0:
        broken("security", "runAsUser 0 (root)")
    if uid == ISTIO_PROXY_UID:
        broken("istio", f"runAsUser {ISTIO_PROXY_UID} is the Istio proxy's UID: its traffic would bypass Envoy")
    if security.get("allowPrivilegeEscalation") is not False:
        broken("security", "allowPrivilegeEscalation must be false")
    if security.get("readOnlyRootFilesystem") is not True:
        broken("security", "readOnlyRootFilesystem must be true (mount an emptyDir where it writes)")
    if security.get("privileged"):
        broken("security", "privileged container")
    capabilities = security.get("capabilities") or {}
    if "ALL" not in (capabilities.get("drop") or []):
        broken("security", "capabilities.drop must contain ALL")
    if capabilities.get("add"):
        broken("security", f"capabilities.add {capabilities['add']} (restricted allows none we need)")
    seccomp = (effective("seccompProfile") or {}).get("type")
    if seccomp not in ("RuntimeDefault", "Localhost"):
        broken("security", f"seccompProfile.type must be RuntimeDefault, got {seccomp!r}")

    resources = spec.get("resources") or {}
    for section in ("requests", "limits"):
        for kind in ("cpu", "memory"):
            if kind not in (resources.get(section) or {}):
                broken("resources", f"no {section}.{kind}")

    probes = {probe for probe in ("startupProbe", "readinessProbe", "livenessProbe") if spec.get(probe)}
    if container.long_running:
        if "livenessProbe" not in probes:
            broken("probes", f"a long-running {container.role} container needs a livenessProbe")
        if not probes & {"readinessProbe", "startupProbe"}:
            broken("probes", f"a long-running {container.role} container needs a readinessProbe or startupProbe")
    elif container.role == "init" and probes:
        broken("probes", "a run-once init container cannot have probes (the API server rejects them)")

    for port in spec.get("ports") or []:
        number = port.get("containerPort")
        if number in ISTIO_RESERVED_PORTS:
            broken("istio", f"containerPort {number} is reserved by Istio's sidecar")
        if port.get("hostPort"):
            broken("security", f"hostPort {port['hostPort']} on containerPort {number}")
    for probe in probes:
        port = _probe_port(spec[probe])
        if isinstance(port, int) and port in ISTIO_RESERVED_PORTS:
            broken("istio", f"{probe} on port {port}, reserved by Istio's sidecar")
    if container.role == "sidecar" and spec.get("lifecycle", {}).get("postStart"):
        broken("lifecycle", "a native sidecar's postStart hook would delay every container after it")
    return found


def _probe_port(probe: dict[str, Any]) -> Any:
    for handler in ("httpGet", "tcpSocket", "grpc"):
        if handler in probe:
            return probe[handler].get("port")
    return None


def check_service(doc: Document) -> list[Violation]:
    """Every Service port is named `<protocol>[-suffix]` or declares appProtocol, and avoids Istio's ports."""
    if doc.get("kind") != "Service":
        return []
    resource = f"Service/{doc.get('metadata', {}).get('name')}"
    found = []
    for port in doc.get("spec", {}).get("ports") or []:
        name = port.get("name", "")
        if not SERVICE_PORT_NAME.match(name) and not port.get("appProtocol"):
            found.append(
                Violation(
                    resource, None, "istio", f"port {name!r} is not named <protocol>[-suffix] and has no appProtocol"
                )
            )
        for field in ("port", "targetPort"):
            if port.get(field) in ISTIO_RESERVED_PORTS:
                found.append(Violation(resource, None, "istio", f"{field} {port[field]} is reserved by Istio"))
    return found


def check_document(doc: Document) -> list[Violation]:
    """All the rules that apply to one rendered document."""
    return check_workload(doc) + check_service(doc)
