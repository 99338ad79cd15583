"""Render the kustomize overlays and every valid component combination, offline, with kubectl."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.support.tools import require_tool

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
OVERLAYS = tuple(sorted(p.name for p in (K8S / "overlays").iterdir() if (p / "kustomization.yaml").is_file()))
# The order components are listed in: observability first, the agent and our Envoy before
# istio and classic-sidecars (mesh-envoy puts its proxy before the agent either way).
COMPONENTS = (
    "observability",
    "prometheus-operator",
    "prometheus-agent",
    "mesh-envoy",
    "istio",
    "istio-fault-delay",
    "istio-fault-abort",
    "classic-sidecars",
)
KUSTOMIZE_TIMEOUT_SECONDS = 60

Document = dict[str, Any]


@dataclass(frozen=True)
class Rendering:
    """One kustomize build: its name (overlay or component list) and its documents."""

    name: str
    documents: tuple[Document, ...]

    def of_kind(self, *kinds: str) -> list[Document]:
        return [doc for doc in self.documents if doc.get("kind") in kinds]


def combination_problem(combination: Iterable[str]) -> str | None:
    """Say why a set of components cannot be used together, or None if it can."""
    chosen = set(combination)
    faults = chosen & {"istio-fault-delay", "istio-fault-abort"}
    if faults and "istio" not in chosen:
        return "the fault-injection components patch the istio component's VirtualService"
    if len(faults) > 1:
        return "one fault-injection lab at a time: both patch the same routes"
    if "prometheus-agent" in chosen and "observability" not in chosen:
        return "the agent remote-writes to the observability component's Prometheus"
    if "prometheus-agent" in chosen and "classic-sidecars" in chosen:
        return "the agent is a native sidecar; classic-sidecars is for clusters without them"
    if "mesh-envoy" in chosen and chosen & {"istio", *faults}:
        return "mesh-envoy and istio are the same mesh without and with a control plane: never two Envoys in one pod"
    if "mesh-envoy" in chosen and "classic-sidecars" in chosen:
        return "our Envoy must be up before the app starts, which only a native sidecar guarantees"
    return None


def valid_combinations() -> list[tuple[str, ...]]:
    """Every non-empty component set that combination_problem accepts, in COMPONENTS order."""
    combos = []
    for size in range(1, len(COMPONENTS) + 1):
        for combination in itertools.combinations(COMPONENTS, size):
            if combination_problem(combination) is None:
                combos.append(combination)
    return combos


def kubectl() -> str:
    """The pinned kubectl in .venv/bin (its built-in kustomize renders); a skip without it, a failure in CI."""
    return require_tool("kubectl", "its built-in kustomize renders the overlays")


def kustomize(directory: Path) -> list[Document]:
    """Run `kubectl kustomize directory` and parse every document it prints."""
    result = subprocess.run(
        [kubectl(), "kustomize", str(directory)],
        capture_output=True,
        text=True,
        timeout=KUSTOMIZE_TIMEOUT_SECONDS,
        check=False,
    )
    if result.returncode != 0:
        raise RenderError(directory, result.stderr.strip())
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


class RenderError(Exception):
    """kustomize refused a kustomization."""

    def __init__(self, directory: Path, stderr: str) -> None:
        super().__init__(f"kubectl kustomize {directory} failed: {stderr}")
        self.directory = directory
        self.stderr = stderr


def write_combination(workdir: Path, components: Iterable[str]) -> Path:
    """Write a kustomization of the base plus `components` into workdir and return it."""
    workdir.mkdir(parents=True, exist_ok=True)
    relative = Path(os.path.relpath(K8S, workdir))
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [str(relative / "base")],
        "components": [str(relative / "components" / name) for name in components],
    }
    (workdir / "kustomization.yaml").write_text(yaml.safe_dump(kustomization, sort_keys=False))
    return workdir


def render_all(workdir: Path) -> list[Rendering]:
    """Render every overlay and every valid component combination (in parallel)."""
    jobs: list[tuple[str, Path]] = [(f"overlay {name}", K8S / "overlays" / name) for name in OVERLAYS]
    for combination in valid_combinations():
        name = "+".join(combination)
        jobs.append((f"base+{name}", write_combination(workdir / name, combination)))
    with ThreadPoolExecutor(max_workers=4) as pool:
        documents = list(pool.map(lambda job: kustomize(job[1]), jobs))
    return [Rendering(name, tuple(docs)) for (name, _), docs in zip(jobs, documents, strict=True)]


def unique_documents(renderings: Iterable[Rendering]) -> Iterator[tuple[str, Document]]:
    """Yield each distinct document once, with the name of the first rendering that has it."""
    seen: set[str] = set()
    for rendering in renderings:
        for doc in rendering.documents:
            key = json.dumps(doc, sort_keys=True)
            if key not in seen:
                seen.add(key)
                yield rendering.name, doc


def resource_name(doc: Document) -> str:
    """`Kind/name` of a document, for messages."""
    return f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
