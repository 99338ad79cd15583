"""`make down` leaves no container or network behind; `make clean` also removes the volumes.

These stop the stack, so conftest.py runs them after every other e2e test, and only when
E2E_TEARDOWN=1 (`make e2e` sets it): run by hand, they would stop your stack.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.e2e.stack import REPO_ROOT, Stack, run_docker

MAKE_TIMEOUT_SECONDS = 300

pytestmark = pytest.mark.skipif(
    os.environ.get("E2E_TEARDOWN") != "1", reason="stops the stack: runs only with E2E_TEARDOWN=1 (make e2e)"
)


@pytest.fixture(autouse=True)
def keep_a_failed_stack(request: pytest.FixtureRequest) -> None:
    """After an earlier failure, leave the stack up so `make e2e` can print its logs."""
    if request.session.testsfailed:
        pytest.skip(f"{request.session.testsfailed} earlier e2e test(s) failed: the stack is kept for its logs")


def run_make(target: str) -> None:
    completed = subprocess.run(
        ["make", "--no-print-directory", target],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=MAKE_TIMEOUT_SECONDS,
        check=False,
    )
    assert completed.returncode == 0, f"make {target} failed:\n{completed.stdout}\n{completed.stderr}"


def project_resources(stack: Stack, kind: str) -> list[str]:
    """Names of the project's networks or volumes, found by compose's project label."""
    label = f"label=com.docker.compose.project={stack.project}"
    return sorted(run_docker(["docker", kind, "ls", "-q", "--filter", label]).split())


def test_make_down_removes_every_container_and_network_and_keeps_the_volumes(stack: Stack) -> None:
    assert stack.container_ids(all_states=True), "no container of the stack to remove"
    volumes = project_resources(stack, "volume")
    assert volumes, "the stack has no volume to keep"

    run_make("down")

    assert stack.container_ids(all_states=True) == []
    assert project_resources(stack, "network") == []
    assert project_resources(stack, "volume") == volumes


def test_make_clean_also_removes_the_volumes(stack: Stack) -> None:
    run_make("clean")

    assert stack.container_ids(all_states=True) == []
    assert project_resources(stack, "network") == []
    assert project_resources(stack, "volume") == []
