"""The series store under concurrent ingest and scrapes: every scrape is a consistent, monotonic snapshot."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator

import pytest

from metrics_exporter.mapping import Mapper
from metrics_exporter.statsd.ingest import Ingestor
from metrics_exporter.store import SeriesStore
from tests.unit.exporter.conftest import render, samples_of, value

SENDERS = 3
BATCHES = 2000
# One batch as gunicorn's workers send it: a duration, the request counter, a status counter.
BATCH = [b"gunicorn.request.duration:12|ms", b"gunicorn.requests:1|c|@1.0", b"gunicorn.request.status.200:1|c|@1.0"]


@pytest.fixture
def frequent_thread_switches() -> Iterator[None]:
    """Let the GIL change hands every few microseconds, so a missing lock shows up within this short test."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    yield
    sys.setswitchinterval(previous)


@pytest.mark.usefixtures("frequent_thread_switches")
def test_scrapes_during_ingest_see_whole_batches_and_counters_never_go_back() -> None:
    store = SeriesStore()
    ingestor = Ingestor(store, Mapper())

    def send() -> None:
        for _ in range(BATCHES):
            ingestor.ingest(BATCH)

    senders = [threading.Thread(target=send) for _ in range(SENDERS)]
    for sender in senders:
        sender.start()
    previous = 0.0
    scrapes = 0
    while any(sender.is_alive() for sender in senders) or scrapes == 0:
        found = samples_of(render(store.collect()))
        scrapes += 1
        requests = value(found, "gunicorn_requests_total") or 0.0
        observed = value(found, "gunicorn_request_duration_seconds_count") or 0.0
        infinite_bucket = value(found, "gunicorn_request_duration_seconds_bucket", le="+Inf") or 0.0
        # One batch is ingested under one hold of the lock: a scrape never sees half of it.
        assert requests == observed == infinite_bucket
        assert requests >= previous
        previous = requests
    for sender in senders:
        sender.join()
    final = samples_of(render(store.collect()))
    assert value(final, "gunicorn_requests_total") == SENDERS * BATCHES
    assert value(final, "gunicorn_request_status_200_total") == SENDERS * BATCHES
