"""Run every checked block of the workshop labs and assert the output each lab promises.

Blocks marked ``local`` and ``local-es`` run against ``scripts/local_pod.py``
started once per session in a sandbox on free ports; ``offline`` blocks run in
a sandbox with no pod; ``compose`` blocks run against the compose CI stack when
it is up (``make e2e``), else they are skipped with the reason.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.e2e.stack import HTTP_TIMEOUT_SECONDS, Stack
from tests.labs.block_runner import check_block
from tests.labs.markdown_blocks import parse_lab
from tests.labs.running_pod import ROOT, LocalPod
from tests.labs.sandbox import block_environment
from tests.support.tools import find_tool, install_hint, programs_needed, tools_required

pytestmark = pytest.mark.integration

LABS = sorted((ROOT / "docs" / "workshop").glob("[0-9][0-9]-*.md"))
COMPOSE_LABS = [path for path in LABS if "<!-- check: compose" in path.read_text()]


@dataclass(frozen=True)
class Place:
    """Where a block runs: its working directory and the variables its commands use."""

    cwd: Path
    env: dict[str, str]


def compose_stack() -> Stack:
    """The compose CI stack, as tests/e2e finds it; skip (or fail under `make e2e`) when it is not up."""
    found = Stack.from_environment()
    try:
        requests.get(f"{found.config_sidecar}/livez", timeout=HTTP_TIMEOUT_SECONDS).raise_for_status()
        found.emulator_docs()
    except requests.RequestException as exc:
        where = f"{found.config_sidecar} or {found.elasticsearch}"
        reason = f"the compose CI stack is not up ({where}: {type(exc).__name__})"
        if os.environ.get("E2E_REQUIRE_STACK") == "1":
            pytest.fail(f"E2E_REQUIRE_STACK=1 but {reason}", pytrace=False)
        pytest.skip(f"{reason}; `make e2e` runs these blocks")
    return found


def test_labs_exist() -> None:
    assert len(LABS) >= 7, f"expected labs 00..06 in docs/workshop, found {[p.name for p in LABS]}"


@pytest.mark.parametrize("lab_path", LABS, ids=lambda path: path.stem)
def test_lab_blocks_without_a_cluster(lab_path: Path, request: pytest.FixtureRequest) -> None:
    """Each local, local-es and offline block of the lab, in order, does what the lab says."""
    lab = parse_lab(lab_path)
    blocks = [block for block in lab.blocks if block.target != "compose"]
    if not blocks:
        pytest.skip(f"{lab_path.name} has no block that runs without a cluster or compose")
    places: dict[str, Place] = {}

    def place_for(target: str) -> Place:
        if target not in places:
            places[target] = _prepare(target, request)
        return places[target]

    skipped = []
    for block in blocks:
        missing = [tool for tool in programs_needed(block.script, block.needs) if find_tool(tool) is None]
        if missing:
            hints = "; ".join(f"{tool}: {install_hint(tool)}" for tool in missing)
            if tools_required():
                pytest.fail(f"{block.where} needs {', '.join(missing)}, which CI must install ({hints})", pytrace=False)
            skipped.append(f"{block.where} (needs {hints})")
            continue
        place = place_for(block.target)
        check_block(block, place.cwd, place.env)
    if skipped:
        pytest.skip(f"{len(blocks) - len(skipped)} blocks passed; skipped {', '.join(skipped)}")


def _prepare(target: str, request: pytest.FixtureRequest) -> Place:
    """Get the pod a target needs (started once per session) with the repository's config back in it."""
    if target == "offline":
        sandbox: Path = request.getfixturevalue("offline_sandbox")
        return Place(sandbox, block_environment({}))
    fixture = {"local": "local_pod", "local-es": "local_es_pod"}[target]
    pod: LocalPod = request.getfixturevalue(fixture)
    pod.reset_config()
    return Place(pod.sandbox, block_environment(pod.env))


@pytest.mark.e2e
@pytest.mark.parametrize("lab_path", COMPOSE_LABS, ids=lambda path: path.stem)
def test_lab_blocks_against_the_compose_ci_stack(lab_path: Path) -> None:
    """Each compose block runs in the repository against the stack `make e2e` starts.

    Blocks only read, or edit web's config source through ``$WEB_CONFIG_SOURCE`` (the stack's
    throwaway copy under `make e2e`; the repository's deploy/compose/web/config for a reader).
    """
    blocks = [block for block in parse_lab(lab_path).blocks if block.target == "compose"]
    assert blocks, f"{lab_path.name} mentions a compose check but has no compose block"
    stack = compose_stack().with_discovered_config_source()
    ports = {name: str(port) for name, port in stack.ports.items()}
    # The stack's copy of web's config source: the blocks edit it where a reader edits the repository's.
    where = {"WEB_CONFIG_SOURCE": str(stack.web_config_source)} if stack.web_config_source else {}
    env = block_environment({**ports, **where, "ES_URL": stack.elasticsearch})
    for block in blocks:
        check_block(block, ROOT, env)
