"""The policy checker itself: each rule fires on a deliberately broken spec."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.manifests.pod_policy import check_document, check_service

GOOD_CONTAINER: dict[str, Any] = {
    "name": "app",
    "image": "sidecar-lab/app:0.1.0",
    "ports": [{"name": "http", "containerPort": 8080}],
    "readinessProbe": {"httpGet": {"path": "/readyz", "port": 8080}},
    "livenessProbe": {"httpGet": {"path": "/livez", "port": 8080}},
    "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"cpu": "1", "memory": "64Mi"}},
    "securityContext": {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    },
}
GOOD_SIDECAR: dict[str, Any] = {
    **copy.deepcopy(GOOD_CONTAINER),
    "name": "log-sidecar",
    "restartPolicy": "Always",
    "ports": [{"name": "http-admin-log", "containerPort": 8082}],
    "readinessProbe": None,
    "startupProbe": {"httpGet": {"path": "/livez", "port": 8082}},
}


def deployment(containers=None, init_containers=None, pod_security=None, labels=None) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "demo"},
        "spec": {
            "template": {
                "metadata": {
                    "labels": labels
                    if labels is not None
                    else {
                        "app.kubernetes.io/name": "demo",
                        "app.kubernetes.io/version": "1",
                        "app": "demo",
                        "version": "v1",
                    }
                },
                "spec": {
                    "securityContext": pod_security
                    if pod_security is not None
                    else {"runAsNonRoot": True, "runAsUser": 10001, "seccompProfile": {"type": "RuntimeDefault"}},
                    "initContainers": init_containers if init_containers is not None else [copy.deepcopy(GOOD_SIDECAR)],
                    "containers": containers if containers is not None else [copy.deepcopy(GOOD_CONTAINER)],
                },
            }
        },
    }


def rules(doc: dict[str, Any]) -> set[str]:
    return {f"{v.container}:{v.rule}" for v in check_document(doc)}


def test_a_compliant_pod_passes():
    assert check_document(deployment()) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda c: c["securityContext"].pop("readOnlyRootFilesystem"), "app:security"),
        (lambda c: c["securityContext"].update(allowPrivilegeEscalation=True), "app:security"),
        (lambda c: c["securityContext"].update(capabilities={"drop": ["NET_RAW"]}), "app:security"),
        (lambda c: c["securityContext"].update(capabilities={"drop": ["ALL"], "add": ["NET_ADMIN"]}), "app:security"),
        (lambda c: c["securityContext"].update(privileged=True), "app:security"),
        (lambda c: c["securityContext"].update(runAsUser=1337), "app:istio"),
        (lambda c: c["securityContext"].update(runAsUser=0), "app:security"),
        (lambda c: c["securityContext"].update(seccompProfile={"type": "Unconfined"}), "app:security"),
        (lambda c: c["resources"].pop("limits"), "app:resources"),
        (lambda c: c["resources"]["requests"].pop("memory"), "app:resources"),
        (lambda c: c.pop("livenessProbe"), "app:probes"),
        (lambda c: c.pop("readinessProbe"), "app:probes"),
        (lambda c: c["ports"].append({"name": "envoy", "containerPort": 15090}), "app:istio"),
        (lambda c: c["ports"][0].update(hostPort=8080), "app:security"),
        (lambda c: c["livenessProbe"]["httpGet"].update(port=15021), "app:istio"),
    ],
)
def test_each_container_rule_catches_its_defect(change, expected):
    container = copy.deepcopy(GOOD_CONTAINER)
    change(container)
    assert expected in rules(deployment(containers=[container]))


def test_native_sidecars_are_checked_like_main_containers():
    sidecar = copy.deepcopy(GOOD_SIDECAR)
    sidecar.pop("startupProbe")
    sidecar.pop("livenessProbe")
    sidecar["securityContext"]["readOnlyRootFilesystem"] = False
    found = rules(deployment(init_containers=[sidecar]))
    assert {"log-sidecar:probes", "log-sidecar:security"} <= found


def test_pod_level_security_is_inherited_and_required():
    assert "app:security" in rules(deployment(pod_security={"runAsUser": 10001}))
    with_pod_level = deployment(
        pod_security={"runAsNonRoot": True, "runAsUser": 1337, "seccompProfile": {"type": "RuntimeDefault"}}
    )
    assert "app:istio" in rules(with_pod_level)


def test_missing_mesh_labels_are_reported():
    found = check_document(deployment(labels={"app": "demo"}))
    assert {v.detail for v in found} == {
        "pod template lacks label app.kubernetes.io/name",
        "pod template lacks label app.kubernetes.io/version",
        "pod template lacks label version",
    }


def test_run_once_containers_need_no_probes_but_everything_else():
    job = deployment()
    job["kind"] = "Job"
    task = job["spec"]["template"]["spec"]["containers"][0]
    task.pop("readinessProbe")
    task.pop("livenessProbe")
    assert check_document(job) == []
    task["securityContext"].pop("capabilities")
    assert rules(job) == {"app:security"}


@pytest.mark.parametrize(
    ("port", "ok"),
    [
        ({"name": "http", "port": 8080}, True),
        ({"name": "http-admin-cfg", "port": 8081}, True),
        ({"name": "udp-statsd", "port": 9125, "protocol": "UDP"}, True),
        ({"name": "metrics", "port": 9102, "appProtocol": "http"}, True),
        ({"name": "metrics", "port": 9102}, False),
        ({"name": "web", "port": 80}, False),
        ({"name": "http", "port": 15021}, False),
        ({"name": "tcp", "port": 9000, "targetPort": 15006}, False),
    ],
)
def test_service_port_rules(port, ok):
    service = {"kind": "Service", "metadata": {"name": "s"}, "spec": {"ports": [port]}}
    assert (check_service(service) == []) is ok
