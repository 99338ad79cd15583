"""Mapping rules end to end (statsd lines in, exposition out): captures, drop, scale, buckets, ttl, caps."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from metrics_exporter.settings import UnmappedPolicy
from metrics_exporter.statsd.parser import Reason
from tests.support import FakeClock
from tests.unit.exporter.conftest import Pipeline, exposition, ingest_lines, render, samples_of, value

Build = Callable[..., Pipeline]


def test_glob_captures_become_labels(pipeline: Build) -> None:
    ingestor, store = pipeline(
        """
mappings:
  - match: api.*.status.*
    name: api_responses_total
    labels: {route: "$1", status: "${2}", tier: front}
"""
    )
    ingest_lines(ingestor, "api.orders.status.200:1|c", "api.orders.status.200:2|c", "api.users.status.404:1|c")
    found = exposition(store)
    assert value(found, "api_responses_total", route="orders", status="200", tier="front") == 3
    assert value(found, "api_responses_total", route="users", status="404", tier="front") == 1


def test_a_glob_star_matches_one_component_and_double_star_the_rest(pipeline: Build) -> None:
    ingestor, store = pipeline(
        """
mappings:
  - match: jobs.*
    name: jobs_total
    labels: {job: "$1"}
  - match: tree.**
    name: tree_total
    labels: {path: "$1"}
"""
    )
    ingest_lines(ingestor, "jobs.a.b:1|c", "jobs.a:1|c", "tree.a.b.c:1|c")
    found = exposition(store)
    assert value(found, "jobs_total", job="a") == 1
    assert value(found, "jobs_a_b_total") == 1  # "*" did not cross the dot, so the line was unmapped
    assert value(found, "tree_total", path="a.b.c") == 1


def test_regex_named_and_numbered_groups(pipeline: Build) -> None:
    ingestor, store = pipeline(
        r"""
mappings:
  - match: '(\w+)\.db\.(?P<op>select|insert)\.duration'
    match_type: regex
    name: db_query_duration_seconds
    labels: {service: "$1", op: "${op}"}
"""
    )
    ingest_lines(ingestor, "billing.db.select.duration:250|ms")
    found = exposition(store)
    assert value(found, "db_query_duration_seconds_count", service="billing", op="select") == 1
    assert value(found, "db_query_duration_seconds_sum", service="billing", op="select") == pytest.approx(0.25)


def test_the_first_matching_rule_wins(pipeline: Build) -> None:
    ingestor, store = pipeline(
        """
mappings:
  - match: a.special
    name: special_total
  - match: a.*
    name: generic_total
    labels: {which: "$1"}
"""
    )
    ingest_lines(ingestor, "a.special:1|c", "a.other:1|c")
    found = exposition(store)
    assert value(found, "special_total") == 1
    assert value(found, "generic_total", which="other") == 1
    assert value(found, "generic_total", which="special") is None


def test_drop_rule_drops_and_counts(pipeline: Build) -> None:
    ingestor, store = pipeline(
        """
mappings:
  - match: noisy.**
    action: drop
"""
    )
    ingest_lines(ingestor, "noisy.a.b:1|c", "noisy.c:5|g", "kept:1|c")
    found = exposition(store)
    assert not any(name.startswith("noisy") for name, _ in found)
    assert value(found, "kept_total") == 1
    assert ingestor.stats.dropped["rule"] == 2


def test_match_metric_type_selects_the_rule_by_statsd_type(pipeline: Build) -> None:
    ingestor, store = pipeline(
        """
mappings:
  - match: queue.depth
    match_metric_type: gauge
    name: queue_depth
  - match: queue.depth
    match_metric_type: counter
    name: queue_depth_changes_total
"""
    )
    ingest_lines(ingestor, "queue.depth:7|g", "queue.depth:1|c", "queue.depth:1|c")
    found = exposition(store)
    assert value(found, "queue_depth") == 7
    assert value(found, "queue_depth_changes_total") == 2


def test_timers_are_seconds_and_scale_overrides_the_conversion(pipeline: Build) -> None:
    ingestor, store = pipeline(
        """
mappings:
  - match: req.time
    name: req_seconds
    buckets: [0.1, 1]
  - match: payload.size
    name: payload_bytes
    scale: 1024
    buckets: [1024, 1048576]
"""
    )
    ingest_lines(ingestor, "req.time:50|ms", "req.time:100|ms", "req.time:2000|ms", "payload.size:2|h")
    found = exposition(store)
    # le is "less or equal": exactly 100 ms falls in the 0.1 bucket.
    assert value(found, "req_seconds_bucket", le="0.1") == 2
    assert value(found, "req_seconds_bucket", le="1.0") == 2
    assert value(found, "req_seconds_bucket", le="+Inf") == 3
    assert value(found, "req_seconds_sum") == pytest.approx(2.15)
    assert value(found, "payload_bytes_bucket", le="1024.0") == 0
    assert value(found, "payload_bytes_bucket", le="1.048576e+06") == 1
    assert value(found, "payload_bytes_sum") == 2048


def test_sample_rates_scale_counters_and_observations(pipeline: Build) -> None:
    ingestor, store = pipeline()
    ingest_lines(ingestor, "hits:1|c|@0.1", "lat:10|ms|@0.5")
    found = exposition(store)
    assert value(found, "hits_total") == pytest.approx(10)
    assert value(found, "lat_seconds_count") == pytest.approx(2)
    assert value(found, "lat_seconds_sum") == pytest.approx(0.02)


def test_gauges_set_and_adjust(pipeline: Build) -> None:
    ingestor, store = pipeline()
    ingest_lines(ingestor, "temp:10|g", "temp:+5|g", "temp:-3|g")
    assert value(exposition(store), "temp") == 12
    ingest_lines(ingestor, "temp:4|g")
    assert value(exposition(store), "temp") == 4
    # statsd's rule: a signed value is always a change, so a new gauge sent "-5" starts from 0.
    ingest_lines(ingestor, "fresh:-5|g")
    assert value(exposition(store), "fresh") == -5


def test_sets_count_distinct_members(pipeline: Build) -> None:
    ingestor, store = pipeline()
    ingest_lines(ingestor, "visitors:alice|s", "visitors:bob|s", "visitors:alice|s")
    assert value(exposition(store), "visitors") == 2


def test_tags_are_labels_and_the_rule_wins_a_clash(pipeline: Build) -> None:
    ingestor, store = pipeline(
        """
mappings:
  - match: calls
    name: calls_total
    labels: {env: prod}
"""
    )
    ingest_lines(ingestor, "calls:1|c|#status:200,env:dev", "calls:1|c|#status:500")
    found = exposition(store)
    assert value(found, "calls_total", status="200", env="prod") == 1
    assert value(found, "calls_total", status="500", env="prod") == 1


def test_an_le_tag_on_a_histogram_is_renamed_not_clobbered(pipeline: Build) -> None:
    ingestor, store = pipeline()
    ingest_lines(ingestor, "lat:5|ms|#le:x")
    assert value(exposition(store), "lat_seconds_count", exported_le="x") == 1


@pytest.mark.parametrize(
    ("line", "expected_name"),
    [
        ("gunicorn.requests:1|c", "gunicorn_requests_total"),
        ("myApp.requestCount:1|c", "my_app_request_count_total"),
        ("already_total:1|c", "already_total"),
        ("db.query.ms:5|ms", "db_query_seconds_count"),
        ("render:5|ms", "render_seconds_count"),
        ("jobs.count:3|g", "jobs_count_value"),
        ("9lives:1|g", "statsd_9lives"),
    ],
)
def test_unmapped_metrics_get_conventional_names(pipeline: Build, line: str, expected_name: str) -> None:
    ingestor, store = pipeline()
    ingest_lines(ingestor, line)
    assert (expected_name, frozenset()) in exposition(store)
    assert ingestor.stats.unmapped == 1


def test_unmapped_metrics_can_be_dropped_by_policy(pipeline: Build) -> None:
    ingestor, store = pipeline(unmapped=UnmappedPolicy.DROP)
    ingest_lines(ingestor, "anything:1|c")
    assert exposition(store) == {}
    assert ingestor.stats.unmapped == 1
    assert ingestor.stats.dropped["unmapped"] == 1


def test_ttl_expires_stale_series_only(pipeline: Build, clock: FakeClock) -> None:
    ingestor, store = pipeline(
        """
mappings:
  - match: short.*
    name: short_lived_total
    labels: {id: "$1"}
    ttl: 30s
  - match: long.*
    name: long_lived_total
    labels: {id: "$1"}
"""
    )
    ingest_lines(ingestor, "short.a:1|c", "short.b:1|c", "long.a:1|c")
    clock.advance(20)
    ingest_lines(ingestor, "short.b:1|c")  # keeps b fresh
    clock.advance(15)
    found = exposition(store)
    assert value(found, "short_lived_total", id="a") is None
    assert value(found, "short_lived_total", id="b") == 2
    assert value(found, "long_lived_total", id="a") == 1
    assert store.counts().expired == 1
    # An expired series starts again from zero when it comes back.
    ingest_lines(ingestor, "short.a:1|c")
    assert value(exposition(store), "short_lived_total", id="a") == 1


def test_default_ttl_applies_when_neither_rule_nor_file_sets_one(pipeline: Build, clock: FakeClock) -> None:
    ingestor, store = pipeline(default_ttl=60)
    ingest_lines(ingestor, "temp:1|g")
    clock.advance(61)
    assert exposition(store) == {}


def test_the_series_cap_drops_new_label_sets_and_counts_them(pipeline: Build) -> None:
    ingestor, store = pipeline(
        """
mappings:
  - match: user.*.logins
    name: user_logins_total
    labels: {user: "$1"}
""",
        max_series=3,
    )
    ingest_lines(ingestor, *(f"user.u{i}.logins:1|c" for i in range(10)))
    ingest_lines(ingestor, "user.u0.logins:1|c")  # an existing series keeps counting
    found = exposition(store)
    kept = {dict(labels)["user"]: v for (name, labels), v in found.items() if name == "user_logins_total"}
    assert kept == {"u0": 2, "u1": 1, "u2": 1}
    assert store.counts().dropped == {"user_logins_total": 7}


def test_the_metric_cap_refuses_new_names(pipeline: Build) -> None:
    ingestor, store = pipeline(max_metrics=2)
    ingest_lines(ingestor, "a:1|c", "b:1|c", "c:1|c", "a:1|c")
    found = exposition(store)
    assert value(found, "a_total") == 2
    assert value(found, "c_total") is None
    assert ingestor.stats.parse_errors[Reason.TOO_MANY_METRICS] == 1


def test_two_statsd_types_under_one_name_conflict(pipeline: Build) -> None:
    ingestor, store = pipeline(
        """
mappings:
  - match: thing
    name: thing
"""
    )
    ingest_lines(ingestor, "thing:3|g", "thing:1|ms")
    assert value(exposition(store), "thing") == 3
    assert ingestor.stats.parse_errors[Reason.TYPE_CONFLICT] == 1


def test_a_rule_whose_name_does_not_fit_the_type_rejects_the_line(pipeline: Build) -> None:
    ingestor, store = pipeline(
        """
mappings:
  - match: x.*
    name: x_$1
"""
    )
    ingest_lines(ingestor, "x.y:1|c", "x.y:1|g")
    assert exposition(store) == {(("x_y", frozenset())): 1.0}
    assert ingestor.stats.parse_errors[Reason.INVALID_NAME] == 1  # a counter named x_y would lack _total


def test_bad_lines_are_counted_and_good_lines_in_the_same_packet_survive(pipeline: Build) -> None:
    ingestor, store = pipeline()
    ingestor.ingest([b"ok:1|c\nbroken\nok:1|c|@2\nok:x|c\n\xff:1|c\nok:1|c|#env"])
    found = exposition(store)
    assert value(found, "ok_total") == 2
    errors = {reason.value: n for reason, n in ingestor.stats.parse_errors.items() if n}
    assert errors == {
        "missing_value": 1,
        "invalid_sample_rate": 1,
        "invalid_value": 1,
        "invalid_utf8": 1,
        "invalid_tag": 1,
    }
    assert ingestor.stats.lines == 6
    assert ingestor.stats.packets == 1


def test_the_route_cache_still_counts_every_bad_line(pipeline: Build) -> None:
    ingestor, _ = pipeline()
    ingest_lines(ingestor, *["same:1|zz"] * 5, *["tagged:1|c|#bare"] * 3)
    assert ingestor.stats.parse_errors[Reason.UNKNOWN_TYPE] == 5
    assert ingestor.stats.parse_errors[Reason.INVALID_TAG] == 3


def test_counters_from_many_senders_add_up(pipeline: Build) -> None:
    """All gunicorn workers send to one port: the store sums them."""
    ingestor, store = pipeline()
    for worker in range(4):
        ingestor.ingest([b"gunicorn.requests:1|c|@1.0"] * (10 + worker))
    assert value(exposition(store), "gunicorn_requests_total") == 46


def test_exposition_is_clean_text(pipeline: Build) -> None:
    ingestor, store = pipeline()
    ingest_lines(ingestor, 'a:1|c|#k:with "quotes" and \\ backslash')
    text = render(store.collect())
    assert value(samples_of(text), "a_total", k='with "quotes" and \\ backslash') == 1


def test_the_route_cache_tells_a_name_with_a_bar_from_a_line_with_another_type(pipeline: Build) -> None:
    ingestor, store = pipeline()
    ingest_lines(ingestor, "a|b:1|c", "a:5|b|c")  # a counter named "a|b"; then a line of the unknown type "b"
    assert value(exposition(store), "a_b_total") == 1
    assert ingestor.stats.parse_errors[Reason.UNKNOWN_TYPE] == 1


def test_a_rule_type_turns_a_counter_into_a_gauge_and_refuses_impossible_types(pipeline: Build) -> None:
    ingestor, store = pipeline(
        """
mappings:
  - match: queue.pushed
    type: gauge
    name: queue_pushed
  - match: queue.popped
    type: histogram
    name: queue_popped_seconds
"""
    )
    ingest_lines(ingestor, "queue.pushed:3|c", "queue.pushed:2|c|@0.5", "queue.popped:1|c")
    text = render(store.collect())
    assert "# TYPE queue_pushed gauge" in text
    assert value(samples_of(text), "queue_pushed") == 7  # a counter line still adds, sample rate included
    assert "queue_popped" not in text
    assert ingestor.stats.parse_errors[Reason.TYPE_CONFLICT] == 1
