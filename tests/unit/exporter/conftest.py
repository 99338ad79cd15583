"""Fixtures for the exporter's unit tests: a fake clock, a store and ingestor, and exposition parsing."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import pytest
from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from metrics_exporter.config import parse_config
from metrics_exporter.exposition import MetricList
from metrics_exporter.mapping import Mapper
from metrics_exporter.settings import UnmappedPolicy
from metrics_exporter.statsd.ingest import Ingestor
from metrics_exporter.store import SeriesStore
from tests.support import FakeClock

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
def clock() -> FakeClock:
    """For ttl expiry and log rate limits."""
    return FakeClock()


def samples_of(text: str) -> Samples:
    """Every sample of a text exposition as {(name, labels): value}."""
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def render(metrics: Iterable[Metric]) -> str:
    return generate_latest(MetricList(list(metrics))).decode()


Pipeline = tuple[Ingestor, SeriesStore]


@pytest.fixture
def pipeline(clock: FakeClock) -> Callable[..., Pipeline]:
    """Build an ingestor over a fresh store from mapping YAML (empty = no rules)."""

    def build(
        mapping_yaml: str = "",
        unmapped: UnmappedPolicy = UnmappedPolicy.EXPORT,
        max_series: int = 1000,
        max_metrics: int = 1000,
        default_ttl: float = 0.0,
    ) -> Pipeline:
        config = parse_config(mapping_yaml, "test.yaml")
        store = SeriesStore(max_series, max_metrics, clock=clock)
        mapper = Mapper(config.mappings, config.defaults, unmapped, default_ttl)
        return Ingestor(store, mapper, log_clock=clock), store

    return build


def ingest_lines(ingestor: Ingestor, *lines: str) -> None:
    """Send each line as its own packet, like gunicorn does."""
    ingestor.ingest([line.encode() for line in lines])


def exposition(store: SeriesStore) -> Samples:
    return samples_of(render(store.collect()))
