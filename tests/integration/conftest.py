"""Fixtures for the integration layer: the Bulk-API emulator and log sidecar processes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sink_emulators.elasticsearch import BulkEmulator
from tests.integration.log_sidecar_process import Sidecar


@pytest.fixture
def es() -> Iterator[BulkEmulator]:
    with BulkEmulator() as emulator:
        yield emulator


@pytest.fixture
def sidecars() -> Iterator[list[Sidecar]]:
    started: list[Sidecar] = []
    yield started
    for sidecar in started:
        if sidecar.process is not None and sidecar.process.running():
            sidecar.stop()
