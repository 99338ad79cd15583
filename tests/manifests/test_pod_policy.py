"""Every rendered workload and Service follows the security, probe, resource and Istio rules."""

from __future__ import annotations

from tests.manifests.pod_policy import check_document
from tests.manifests.rendering import unique_documents


def test_every_workload_and_service_follows_the_rules(renderings):
    violations = []
    for name, doc in unique_documents(renderings):
        violations += [f"{name}: {violation}" for violation in check_document(doc)]
    assert violations == []


def test_every_container_was_checked(renderings):
    # Guards the test above against checking nothing: all our images and the backends.
    images = set()
    for _, doc in unique_documents(renderings):
        spec = (doc.get("spec", {}).get("template") or {}).get("spec") or {}
        images |= {c["image"].split(":")[0] for c in spec.get("initContainers", []) + spec.get("containers", [])}
    assert {
        "sidecar-lab/app",
        "sidecar-lab/config-sidecar",
        "sidecar-lab/log-sidecar",
        "sidecar-lab/exporter",
        "sidecar-lab/mesh-proxy",
        "quay.io/prometheus/prometheus",
        "docker.elastic.co/elasticsearch/elasticsearch",
        "docker.elastic.co/kibana/kibana",
    } <= images
