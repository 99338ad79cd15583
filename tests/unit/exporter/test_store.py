"""The series store: consistent, monotonic snapshots under concurrent ingest and scrapes; names freed by expiry."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from metrics_exporter.mapping import Mapper
from metrics_exporter.reloader import ReloadStatus
from metrics_exporter.self_metrics import SourceResult, self_metrics
from metrics_exporter.statsd.ingest import Ingestor
from metrics_exporter.statsd.parser import Reason
from metrics_exporter.store import SeriesStore
from tests.support import FakeClock
from tests.unit.exporter.conftest import Pipeline, exposition, ingest_lines, render, samples_of, value

Build = Callable[..., Pipeline]

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


def own_metrics(ingestor: Ingestor, store: SeriesStore) -> dict[str, float]:
    """The exporter's self-metrics about the statsd path, as a scrape shows them."""
    reload = ReloadStatus(True, successes=1, failures=0, last_success_time=0.0, source="m.yaml", digest="d")
    families = self_metrics(
        [SourceResult("statsd", True, 0.0)], ingestor.stats_snapshot(), store.counts(), reload, {}, {}
    )
    found = samples_of(render(families))
    return {
        "metrics": value(found, "exporter_statsd_metrics") or 0.0,
        "series": value(found, "exporter_statsd_series") or 0.0,
        "expired": value(found, "exporter_series_expired_total") or 0.0,
        "too_many": value(found, "exporter_statsd_parse_errors_total", reason="too_many_metrics") or 0.0,
    }


@pytest.mark.parametrize("scrape_between", [True, False], ids=["freed-by-a-scrape", "freed-at-the-cap"])
def test_names_whose_series_all_expired_free_their_place_under_the_cap(
    pipeline: Build, clock: FakeClock, scrape_between: bool
) -> None:
    names = 5
    ingestor, store = pipeline(max_metrics=names, default_ttl=30)
    ingest_lines(ingestor, *(f"old.{i}:1|c" for i in range(names)))
    assert own_metrics(ingestor, store)["metrics"] == names

    clock.advance(31)  # every series of every old name has expired
    if scrape_between:
        assert exposition(store) == {}
    ingest_lines(ingestor, *(f"new.{i}:1|c" for i in range(names)))

    text = render(store.collect())
    assert {family.name for family in text_string_to_metric_families(text)} == {f"new_{i}" for i in range(names)}
    assert all(family.samples for family in text_string_to_metric_families(text)), "an empty family is exported"
    assert "old_" not in text
    assert own_metrics(ingestor, store) == {"metrics": names, "series": names, "expired": names, "too_many": 0}

    ingest_lines(ingestor, "one.more:1|c")  # the cap still holds for live names
    assert own_metrics(ingestor, store)["too_many"] == 1
    assert value(exposition(store), "one_more_total") is None


def test_a_freed_name_that_comes_back_starts_afresh_and_is_exported(pipeline: Build, clock: FakeClock) -> None:
    # The ingestor caches a route per line shape, holding its family: a freed family must not keep swallowing updates.
    ingestor, store = pipeline(default_ttl=30)
    ingest_lines(ingestor, "jobs.done:4|c")
    clock.advance(31)
    assert exposition(store) == {}  # the scrape freed jobs_done_total
    ingest_lines(ingestor, "jobs.done:1|c")
    assert value(exposition(store), "jobs_done_total") == 1
    assert store.counts().metrics == 1


def test_a_name_freed_at_the_cap_within_a_batch_is_not_updated_behind_the_cap(
    pipeline: Build, clock: FakeClock
) -> None:
    ingestor, store = pipeline(max_metrics=1, default_ttl=30)
    ingest_lines(ingestor, "a:1|c")
    clock.advance(31)
    # b takes a's place at the cap; a, whose route was cached, must now count as over the cap, not vanish.
    ingestor.ingest([b"b:1|c", b"a:1|c"])
    found = exposition(store)
    assert value(found, "b_total") == 1
    assert value(found, "a_total") is None
    assert ingestor.stats.parse_errors[Reason.TOO_MANY_METRICS] == 1


def test_a_name_whose_only_line_was_refused_holds_no_place(pipeline: Build) -> None:
    ingestor, store = pipeline(max_metrics=1)
    ingest_lines(ingestor, "broken:abc|c")  # the family is made before the value is refused
    assert ingestor.stats.parse_errors[Reason.INVALID_VALUE] == 1
    ingest_lines(ingestor, "good:1|c")
    assert value(exposition(store), "good_total") == 1
    assert ingestor.stats.parse_errors[Reason.TOO_MANY_METRICS] == 0
