"""Would the rendered NetworkPolicies let a pod connect? Kubernetes' ingress rules, evaluated offline.

Policies are additive: a pod that no Ingress policy selects takes every connection; a pod
that some do takes a connection when at least one of their rules admits the source (its
pod labels and namespace) on that port. Namespaces are matched by the label Kubernetes
gives every namespace, `kubernetes.io/metadata.name`. Egress is not evaluated.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Document = dict[str, Any]


@dataclass(frozen=True)
class Pod:
    """A pod as policies see it: its namespace and labels."""

    namespace: str
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def namespace_labels(self) -> dict[str, str]:
        return {"kubernetes.io/metadata.name": self.namespace}


def selects(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """Whether a label selector (matchLabels and matchExpressions) picks these labels; {} picks all."""
    if selector is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values") or []
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def _peer_admits(peer: dict[str, Any], source: Pod, policy_namespace: str) -> bool:
    if "ipBlock" in peer:
        return False  # pod IPs are not modelled; none of ours admits by address
    pod_selector = peer.get("podSelector")
    namespace_selector = peer.get("namespaceSelector")
    if namespace_selector is None:
        return source.namespace == policy_namespace and selects(pod_selector, source.labels)
    if not selects(namespace_selector, source.namespace_labels):
        return False
    return pod_selector is None or selects(pod_selector, source.labels)


def _port_admits(ports: list[dict[str, Any]] | None, port: int) -> bool:
    return not ports or any(entry.get("port") == port and entry.get("protocol", "TCP") == "TCP" for entry in ports)


def ingress_allowed(policies: list[Document], source: Pod, target: Pod, port: int) -> bool:
    """Whether `source` may open a TCP connection to `target` on `port` under these NetworkPolicies."""
    selecting = [
        policy
        for policy in policies
        if policy.get("kind") == "NetworkPolicy"
        and policy["metadata"].get("namespace", target.namespace) == target.namespace
        and "Ingress" in (policy["spec"].get("policyTypes") or ["Ingress"])
        and selects(policy["spec"].get("podSelector", {}), target.labels)
    ]
    if not selecting:
        return True
    for policy in selecting:
        namespace = policy["metadata"].get("namespace", target.namespace)
        for rule in policy["spec"].get("ingress") or []:
            peers = rule.get("from")
            from_ok = not peers or any(_peer_admits(peer, source, namespace) for peer in peers)
            if from_ok and _port_admits(rule.get("ports"), port):
                return True
    return False
