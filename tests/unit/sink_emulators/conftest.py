"""Fixtures for the emulators' own tests: a running Bulk-API emulator and a keep-alive client."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sink_emulators.elasticsearch import BulkEmulator
from tests.unit.sink_emulators.es_client import EsClient


@pytest.fixture
def es() -> Iterator[BulkEmulator]:
    emulator = BulkEmulator().start()
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture
def client(es: BulkEmulator) -> Iterator[EsClient]:
    es_client = EsClient(es)
    try:
        yield es_client
    finally:
        es_client.session.close()
