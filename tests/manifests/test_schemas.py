"""Schema validation: Kubernetes objects with kubernetes-validate, Istio and operator CRs with their CRD models."""

from __future__ import annotations

import copy

import kubernetes_validate  # type: ignore[import-untyped]
import pytest

from tests.manifests.crd_schemas import is_custom_resource, validate_custom_resource
from tests.manifests.rendering import resource_name, unique_documents

# 1.29: the first release with native sidecars on by default (the floor of this lab);
# 1.33: native sidecars GA; 1.37: the default node image of kind v0.33.
KUBERNETES_VERSIONS = ("1.29", "1.33", "1.37")
# components/classic-sidecars exists for clusters older than 1.29.
CLASSIC_VERSION = "1.28"


def kubernetes_problems(doc: dict[str, object], version: str) -> list[str]:
    try:
        kubernetes_validate.validate(doc, version, strict=True)
    except kubernetes_validate.ValidationError as error:
        path = ".".join(str(part) for part in error.path)
        return [f"{resource_name(doc)} (Kubernetes {version}) {path}: {error.message}"]
    return []


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_kubernetes_objects_match_the_api_schema(renderings, version):
    problems = []
    for _, doc in unique_documents(renderings):
        if not is_custom_resource(doc):
            problems += kubernetes_problems(doc, version)
    assert problems == []


def test_classic_sidecars_render_is_valid_on_kubernetes_before_native_sidecars(renderings):
    classic = [r for r in renderings if "classic" in r.name]
    assert classic
    problems = []
    for _, doc in unique_documents(classic):
        if not is_custom_resource(doc):
            problems += kubernetes_problems(doc, CLASSIC_VERSION)
            spec = (doc.get("spec", {}).get("template") or {}).get("spec", {})
            if any(c.get("restartPolicy") == "Always" for c in spec.get("initContainers", [])):
                problems.append(f"{resource_name(doc)} still has a native sidecar")
    assert problems == []


def test_istio_and_prometheus_operator_resources_match_their_crds(renderings):
    checked = 0
    problems = []
    for name, doc in unique_documents(renderings):
        if is_custom_resource(doc):
            checked += 1
            problems += [f"{name}: {resource_name(doc)}: {p}" for p in validate_custom_resource(doc)]
    assert checked >= 8  # PeerAuthentication x3, DestinationRule, VirtualService x3, AuthorizationPolicy x2, ...
    assert problems == []


def test_kubernetes_schema_check_catches_a_typo(overlay):
    deployment = copy.deepcopy(overlay("kind").of_kind("Deployment")[0])
    deployment["spec"]["template"]["spec"]["containers"][0]["imagePulPolicy"] = "Always"
    assert kubernetes_problems(deployment, "1.37")


def test_crd_check_catches_a_typo_and_a_bad_value(overlay):
    virtual_service = copy.deepcopy(overlay("kind-istio").of_kind("VirtualService")[0])
    virtual_service["spec"]["http"][0]["timout"] = "3s"
    assert any("timout: unknown field" in p for p in validate_custom_resource(virtual_service))
    peer = copy.deepcopy(overlay("kind-istio").of_kind("PeerAuthentication")[0])
    peer["spec"]["mtls"]["mode"] = "STRICTEST"
    assert validate_custom_resource(peer)
