"""Fixtures for the lab checks: a sandbox, the local pod in it, and the pod with an Elasticsearch stand-in."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sink_emulators.elasticsearch import BulkEmulator
from tests.labs.running_pod import ROOT, LocalPod
from tests.labs.sandbox import make_sandbox


def _start(tmp_path_factory: pytest.TempPathFactory, name: str, env: dict[str, str]) -> LocalPod:
    base = tmp_path_factory.mktemp(name)
    sandbox = make_sandbox(ROOT, base / "repo")
    return LocalPod(sandbox, base / "local_pod.out", env).start()


@pytest.fixture(scope="session")
def local_pod(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPod]:
    """What a reader gets from ``make local``: LOG_SINK=file, in a sandbox, on free ports."""
    pod = _start(tmp_path_factory, "local-pod", {})
    yield pod
    pod.stop()


@pytest.fixture(scope="session")
def es_emulator() -> Iterator[BulkEmulator]:
    """The Bulk-API emulator the labs start with ``python -m sink_emulators.elasticsearch``, in-process."""
    emulator = BulkEmulator(host="127.0.0.1", port=0)
    emulator.start()
    yield emulator
    emulator.stop()


@pytest.fixture(scope="session")
def local_es_pod(tmp_path_factory: pytest.TempPathFactory, es_emulator: BulkEmulator) -> Iterator[LocalPod]:
    """What ``ES_URL=http://127.0.0.1:9200 make local`` gives, with the emulator as Elasticsearch."""
    pod = _start(tmp_path_factory, "local-es-pod", {"ES_URL": es_emulator.url})
    yield pod
    pod.stop()


@pytest.fixture
def offline_sandbox(tmp_path: Path) -> Path:
    """A sandbox with no pod, for blocks that only render or inspect files."""
    return make_sandbox(ROOT, tmp_path / "repo")
