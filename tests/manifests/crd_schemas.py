"""Validate Istio and prometheus-operator resources against their published CRD schemas.

The schemas come as pydantic models generated from the projects' CRDs (PyPI
cloudcoil-models-istio, cloudcoil-models-prometheus-operator). pydantic ignores unknown
keys by default, so a typo such as `timout:` would pass silently: after validating, the
parsed model is dumped back and every key of the input that did not survive is reported
as an unknown field -- the same strictness as `kubectl apply --validate=strict`.
"""

from __future__ import annotations

from typing import Any

import pydantic
from cloudcoil.models.istio.networking import v1 as istio_networking
from cloudcoil.models.istio.security import v1 as istio_security
from cloudcoil.models.prometheus_operator import v1 as prometheus_operator

MODELS: dict[tuple[str, str], type[pydantic.BaseModel]] = {
    ("networking.istio.io/v1", "DestinationRule"): istio_networking.DestinationRule,
    ("networking.istio.io/v1", "VirtualService"): istio_networking.VirtualService,
    ("networking.istio.io/v1", "Gateway"): istio_networking.Gateway,
    ("networking.istio.io/v1", "ServiceEntry"): istio_networking.ServiceEntry,
    ("security.istio.io/v1", "PeerAuthentication"): istio_security.PeerAuthentication,
    ("security.istio.io/v1", "AuthorizationPolicy"): istio_security.AuthorizationPolicy,
    ("monitoring.coreos.com/v1", "PodMonitor"): prometheus_operator.PodMonitor,
    ("monitoring.coreos.com/v1", "ServiceMonitor"): prometheus_operator.ServiceMonitor,
    ("monitoring.coreos.com/v1", "PrometheusRule"): prometheus_operator.PrometheusRule,
}
CUSTOM_GROUPS = ("istio.io", "coreos.com")


def is_custom_resource(doc: dict[str, Any]) -> bool:
    """True for the Istio and prometheus-operator kinds this module is responsible for."""
    group = str(doc.get("apiVersion", "")).split("/")[0]
    return group.endswith(CUSTOM_GROUPS)


def validate_custom_resource(doc: dict[str, Any]) -> list[str]:
    """Return every schema problem of one Istio/prometheus-operator document (empty = valid)."""
    key = (str(doc.get("apiVersion")), str(doc.get("kind")))
    model = MODELS.get(key)
    if model is None:
        return [f"no CRD model for {key[0]} {key[1]}: add it to MODELS or use a supported version"]
    try:
        parsed = model.model_validate(doc)
    except pydantic.ValidationError as error:
        return [f"{'.'.join(str(part) for part in problem['loc'])}: {problem['msg']}" for problem in error.errors()]
    kept = parsed.model_dump(mode="json", by_alias=True, exclude_unset=True)
    return [f"{path}: unknown field" for path in unknown_fields(doc, kept)]


def unknown_fields(given: Any, kept: Any, path: str = "") -> list[str]:
    """Paths of keys present in `given` but dropped from `kept` (the model's round trip)."""
    if isinstance(given, dict) and isinstance(kept, dict):
        found = []
        for key, value in given.items():
            child = f"{path}.{key}" if path else str(key)
            if key not in kept:
                found.append(child)
            else:
                found += unknown_fields(value, kept[key], child)
        return found
    if isinstance(given, list) and isinstance(kept, list):
        found = []
        for index, (value, kept_value) in enumerate(zip(given, kept, strict=False)):
            found += unknown_fields(value, kept_value, f"{path}[{index}]")
        return found
    return []
