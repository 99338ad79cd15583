"""Fixtures of the e2e layer: the running compose stack, or a clean skip when there is none.

`make e2e` starts the CI stack (docker-compose.yml + docker-compose.ci.yml), runs these
tests with E2E_REQUIRE_STACK=1 (a missing stack is then a failure, not a skip) and
E2E_TEARDOWN=1 (the `make down` / `make clean` tests may stop the stack), and always
tears down. Run by hand against a stack you started, they skip the teardown tests.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from sidecar_common import content_version, read_config_files
from tests.e2e.config_edits import APP_CONFIG, RELOAD_TIMEOUT_SECONDS, app_config, write_atomically
from tests.e2e.stack import HTTP_TIMEOUT_SECONDS, REPO_ROOT, Stack
from tests.support import wait_until

# Tests that stop the stack run after every other e2e test.
TEARDOWN_MODULE = "test_teardown.py"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Move the teardown tests to the end: they stop the stack the others need."""
    teardown = [item for item in items if Path(str(item.fspath)).name == TEARDOWN_MODULE]
    rest = [item for item in items if Path(str(item.fspath)).name != TEARDOWN_MODULE]
    items[:] = rest + teardown


def _unavailable(reason: str) -> None:
    if os.environ.get("E2E_REQUIRE_STACK") == "1":
        pytest.fail(f"E2E_REQUIRE_STACK=1 but {reason}", pytrace=False)
    pytest.skip(f"{reason} (start it with `make e2e`, or `make up` + the CI override)")


@pytest.fixture(scope="session")
def stack() -> Stack:
    """The CI stack on 127.0.0.1, after checking it answers; skip (or fail) when it does not."""
    if shutil.which("docker") is None:
        _unavailable("no docker CLI on this machine")
    found = Stack.from_environment()
    try:
        requests.get(f"{found.config_sidecar}/livez", timeout=HTTP_TIMEOUT_SECONDS).raise_for_status()
    except requests.RequestException as error:
        _unavailable(f"no compose stack answers on {found.config_sidecar} ({type(error).__name__})")
    try:
        found.emulator_docs()
    except requests.RequestException:
        _unavailable(f"{found.elasticsearch} is not the Bulk-API emulator (the CI override swaps it in)")
    return found.with_discovered_config_source()


@pytest.fixture
def config_source(stack: Stack) -> Iterator[Path]:
    """The stack's config source directory, restored to its original content after the test."""
    source = stack.config_source
    if source is None or not (source / APP_CONFIG).is_file():
        pytest.skip("the stack's config source (E2E_CONFIG_SOURCE) is not a readable directory here")
    if source.resolve() == (REPO_ROOT / "config").resolve():
        pytest.skip("the stack mounts the repository's own ./config; these tests edit only a copy")
    original = (source / APP_CONFIG).read_text()
    original_version = content_version(read_config_files(source))
    yield source
    write_atomically(source / APP_CONFIG, original)
    wait_until(
        lambda: app_config(stack)["version"] == original_version,
        timeout=RELOAD_TIMEOUT_SECONDS,
        interval=0.5,
        message="the app back on the original config",
    )
