"""The JSON source against a real (tiny) HTTP server: rules, map keys as labels, failures, the deadline."""

from __future__ import annotations

import time
from typing import Any

import pytest

from metrics_exporter.config import load_config, parse_config
from metrics_exporter.exposition import Exposition
from metrics_exporter.json_source import HttpJsonFetcher, JsonSource, RuleErrorReason
from metrics_exporter.self_metrics import SourceResult
from metrics_exporter.sources import SourceError
from tests.support import free_tcp_port
from tests.support.http_stub import HttpStub, Reply, json_reply
from tests.unit.exporter.conftest import render, samples_of, value

STATS = {
    "service": "demo-app",
    "uptime_seconds": 12.3,
    "config": {"version": "4f2a9c", "loaded_at": "2024-01-01T00:00:00+00:00", "reloads_total": {"ok": 2, "refused": 1}},
    "requests_in_flight": 1,
    "workers": {"4101": {"requests_in_flight": 1, "config_version": "4f2a9c"}, "4102": {"requests_in_flight": 0}},
}


@pytest.fixture
def app(http_stub: HttpStub) -> HttpStub:
    """The app's /stats; tests script other answers."""
    http_stub.answer(json_reply(STATS))
    return http_stub


def default_source(url: str) -> JsonSource:
    return JsonSource(HttpJsonFetcher(url), load_config(None).json_rules)


def test_the_default_rules_read_the_apps_stats(app: HttpStub) -> None:
    found = samples_of(render(default_source(app.url + "/stats").collect(timeout=5)))
    assert value(found, "app_uptime_seconds") == 12.3
    assert value(found, "app_config_info", version="4f2a9c") == 1
    assert value(found, "app_requests_in_flight") == 1
    # Map keys become labels: one series per worker pid.
    assert value(found, "app_worker_requests_in_flight", worker="4101") == 1
    assert value(found, "app_worker_requests_in_flight", worker="4102") == 0
    assert value(found, "app_config_reloads_observed_total", result="ok") == 2
    assert value(found, "app_config_reloads_observed_total", result="refused") == 1


def test_each_scrape_fetches_afresh(app: HttpStub) -> None:
    source = default_source(app.url + "/stats")
    source.collect(timeout=5)
    app.answer(json_reply({**STATS, "uptime_seconds": 99}))
    assert value(samples_of(render(source.collect(timeout=5))), "app_uptime_seconds") == 99
    assert len(app.requests) == 2


@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [
        (503, b"{}", "http_status"),
        (200, b"<html>not json</html>", "invalid_json"),
        (200, b"\xff\xfe", "invalid_json"),
        (200, b"[" * 100_000, "invalid_json"),  # nested beyond the parser's recursion limit
    ],
)
def test_a_bad_answer_is_a_source_error(app: HttpStub, status: int, body: bytes, reason: str) -> None:
    app.answer(Reply(status, body))
    with pytest.raises(SourceError) as caught:
        default_source(app.url + "/stats").collect(timeout=5)
    assert caught.value.reason == reason


def test_an_app_that_is_down_is_a_source_error() -> None:
    with pytest.raises(SourceError) as caught:
        default_source(f"http://127.0.0.1:{free_tcp_port()}/stats").collect(timeout=5)
    assert caught.value.reason == "connection"


def test_an_oversized_body_is_refused(app: HttpStub) -> None:
    app.answer(Reply(body=b"[" + b"1," * 5000 + b"1]"))
    with pytest.raises(SourceError) as caught:
        JsonSource(HttpJsonFetcher(app.url + "/stats", max_body_bytes=1000)).collect(timeout=5)
    assert caught.value.reason == "too_large"


def test_a_slow_app_is_cut_off_at_the_deadline(app: HttpStub) -> None:
    app.answer(json_reply(STATS, delay=30))
    started = time.monotonic()
    with pytest.raises(SourceError) as caught:
        default_source(app.url + "/stats").collect(timeout=0.3)
    assert caught.value.reason == "timeout"
    # Functional bound, far above the 0.3 s asked for: the 30 s answer was not waited for.
    assert time.monotonic() - started < 10


def test_values_that_match_no_rule_are_counted_not_fatal() -> None:
    config = parse_config(
        """
json:
  - {name: present, path: $.a}
  - {name: absent, path: $.nope}
  - {name: text_value, path: $.s}
  - {name: null_value, path: $.n}
  - {name: mapped_state, path: $.state, value_map: {up: 1, down: 0}}
  - {name: flag, path: $.flag}
  - name: dup_total
    type: counter
    path: $.counts.*
    labels: {k: constant}
""",
        "m.yaml",
    )
    source = JsonSource(HttpJsonFetcher("http://127.0.0.1:1/"), config.json_rules)
    document = {"a": 1, "s": "hello", "n": None, "state": "down", "flag": True, "counts": {"x": 1, "y": 2}}
    found = samples_of(render(source.evaluate(document)))
    assert value(found, "present") == 1
    assert value(found, "mapped_state") == 0
    assert value(found, "flag") == 1
    # Duplicate label sets keep the first and count the rest (json_exporter #230 failed the scrape).
    assert value(found, "dup_total", k="constant") == 1
    assert source.rule_errors() == {
        ("absent", RuleErrorReason.NO_MATCH): 1,
        ("text_value", RuleErrorReason.NOT_A_NUMBER): 1,
        ("null_value", RuleErrorReason.NULL): 1,
        ("dup_total", RuleErrorReason.DUPLICATE_SERIES): 1,
    }


def test_rules_can_be_swapped_while_running() -> None:
    first = parse_config("json: [{name: a, path: $.a}]", "1").json_rules
    second = parse_config("json: [{name: b, path: $.a}]", "2").json_rules
    source = JsonSource(HttpJsonFetcher("http://127.0.0.1:1/"), first)
    source.set_rules(second)
    assert [m.name for m in source.evaluate({"a": 1})] == ["b"]


def exposition_for(url: str, timeout: float = 5.0, margin: float = 0.5) -> Exposition:
    def self_metrics(results: list[SourceResult], collisions: object) -> list[Any]:
        from prometheus_client.core import GaugeMetricFamily

        up = GaugeMetricFamily("exporter_source_up", "up", labels=["source"])
        for result in results:
            up.add_metric([result.name], 1.0 if result.up else 0.0)
        return [up]

    return Exposition([default_source(url)], self_metrics, timeout_seconds=timeout, margin_seconds=margin)


def test_app_down_sets_up_to_zero_and_the_page_still_serves() -> None:
    page = exposition_for(f"http://127.0.0.1:{free_tcp_port()}/stats").scrape()
    found = samples_of(render(page))
    assert value(found, "exporter_source_up", source="json") == 0
    assert not any(name.startswith("app_") for name, _ in found)


def test_the_scrape_timeout_header_shortens_the_fetch(app: HttpStub) -> None:
    app.answer(json_reply(STATS, delay=30))
    exposition = exposition_for(app.url + "/stats", timeout=20, margin=0.2)
    started = time.monotonic()
    page = exposition.scrape(scrape_timeout=0.7)  # Prometheus would give up after 0.7 s
    elapsed = time.monotonic() - started
    assert value(samples_of(render(page)), "exporter_source_up", source="json") == 0
    # Functional bound: without the header the fetch would have waited the configured 20 s.
    assert elapsed < 10
