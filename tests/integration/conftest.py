"""Fixtures for the integration layer: the Bulk-API emulator, log sidecar, mesh proxy and Prometheus processes."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sink_emulators.elasticsearch import BulkEmulator
from tests.integration.log_sidecar_process import Sidecar
from tests.integration.mesh_pod import MeshProxy, Pki, StartApp, StartProxy, scripted_app
from tests.support.prometheus import Prometheus, StartPrometheus


@pytest.fixture
def es() -> Iterator[BulkEmulator]:
    with BulkEmulator() as emulator:
        yield emulator


@pytest.fixture
def sidecars() -> Iterator[list[Sidecar]]:
    started: list[Sidecar] = []
    yield started
    for sidecar in started:
        if sidecar.process.running():
            sidecar.stop()


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki(tmp_path / "pki")


@pytest.fixture
def start_app() -> Iterator[StartApp]:
    """Start a scripted app behind an inbound side; every one is stopped after the test."""
    with contextlib.ExitStack() as started:
        yield lambda name, fail_everything=False: started.enter_context(scripted_app(name, fail_everything))


@pytest.fixture
def proxies() -> Iterator[list[MeshProxy]]:
    """Mesh proxies to stop after the test (each is Envoy after its start)."""
    started: list[MeshProxy] = []
    yield started
    for proxy in started:
        proxy.stop()


@pytest.fixture
def start_proxy(tmp_path: Path, pki: Pki, proxies: list[MeshProxy]) -> StartProxy:
    """Start a pod's proxy (MeshProxy's arguments) holding a fresh certificate of ``account``."""

    def start(name: str, account: str, **options: Any) -> MeshProxy:
        proxy = MeshProxy(tmp_path, name, **options)
        pki.issue(account, proxy.cert_dir)
        proxies.append(proxy.start())
        return proxy

    return start


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[StartPrometheus]:
    """Start a Prometheus scraping loopback ports; every one is stopped after the test."""
    with contextlib.ExitStack() as started:
        yield lambda ports, metrics_path="/metrics": started.enter_context(Prometheus(tmp_path, ports, metrics_path))
