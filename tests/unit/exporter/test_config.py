"""The mapping file is validated before use: each mistake is refused with the file, rule and reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from metrics_exporter.config import ConfigError, load_config, parse_config, parse_duration
from metrics_exporter.mapping import DEFAULT_BUCKETS


def test_the_built_in_mapping_loads_and_covers_the_contract_names() -> None:
    config = load_config(None)
    names = {rule.name.text for rule in config.mappings if rule.name is not None}
    assert {
        "http_requests_total",
        "http_request_duration_seconds",
        "gunicorn_workers",
        "gunicorn_log_messages_total",
        "app_orders_created_total",
        "app_config_reloads_total",
        "app_upstream_calls_total",
        "app_upstream_duration_seconds",
    } <= names
    assert {rule.name for rule in config.json_rules} == {
        "app_uptime_seconds",
        "app_config_info",
        "app_requests_in_flight",
        "app_worker_requests_in_flight",
        "app_config_reloads_observed_total",
    }


def test_an_empty_file_is_a_valid_mapping_without_rules() -> None:
    config = parse_config("", "empty.yaml")
    assert config.mappings == ()
    assert config.json_rules == ()
    assert config.defaults.buckets == DEFAULT_BUCKETS


def test_the_digest_follows_the_content() -> None:
    assert parse_config("mappings: []", "a").digest == parse_config("mappings: []", "b").digest
    assert parse_config("mappings: []", "a").digest != parse_config("json: []", "a").digest


@pytest.mark.parametrize(
    ("text", "location", "reason_part"),
    [
        ("mappings: [", "line 1", "invalid YAML"),
        ("- just a list", "", "expected a mapping"),
        ("mapings: []", "", "unknown key(s) mapings"),
        ("mappings: [{match: a, name: a_total, lables: {x: y}}]", "mappings[0]", "unknown key(s) lables"),
        ("mappings: [{name: a_total}]", "mappings[0].match", "non-empty string"),
        ("mappings: [{match: a}]", "mappings[0].name", "non-empty string"),
        ("mappings: [{match: '(', match_type: regex, name: a}]", "mappings[0].match", "invalid regex"),
        ("mappings: [{match: a, match_type: fuzzy, name: a}]", "mappings[0].match_type", "not one of glob, regex"),
        ("mappings: [{match: a, name: a, type: summary}]", "mappings[0].type", "not one of"),
        ("mappings: [{match: a, name: a, action: keep}]", "mappings[0].action", "not one of map, drop"),
        ("mappings: [{match: a, name: 'bad-name'}]", "mappings[0].name", "valid metric name"),
        ("mappings: [{match: a, name: hits, type: counter}]", "mappings[0].name", "must end with _total"),
        ("mappings: [{match: a, name: hits, match_metric_type: counter}]", "mappings[0].name", "_total"),
        ("mappings: [{match: a, name: depth_total, type: gauge}]", "mappings[0].name", "must not end with"),
        ("mappings: [{match: a, name: exporter_x_total, type: counter}]", "mappings[0].name", "reserved"),
        ("mappings: [{match: a.*, name: 'x_${2}_total'}]", "mappings[0].name", "capture 2 but the match has 1"),
        ("mappings: [{match: a.*, name: a_total, labels: {k: $3}}]", "mappings[0].labels.k", "capture 3"),
        (
            "mappings: [{match: '(?P<op>a)', match_type: regex, name: a_total, labels: {k: $oops}}]",
            "mappings[0].labels.k",
            "not a named capture (known: op)",
        ),
        ("mappings: [{match: a, name: a_total, labels: {__x: y}}]", "mappings[0].labels.__x", "not a valid label"),
        ("mappings: [{match: a, name: lat_seconds, type: histogram, labels: {le: x}}]", "labels.le", "reserved"),
        ("mappings: [{match: a, name: a_seconds, buckets: []}]", "mappings[0].buckets", "at least one bucket"),
        ("mappings: [{match: a, name: a_seconds, buckets: [1, 0.5]}]", "mappings[0].buckets", "strictly increasing"),
        ("mappings: [{match: a, name: a_seconds, buckets: [x]}]", "mappings[0].buckets[0]", "finite number"),
        ("mappings: [{match: a, name: a_seconds, scale: big}]", "mappings[0].scale", "finite number"),
        ("mappings: [{match: a, name: a_seconds, ttl: soon}]", "mappings[0].ttl", "duration"),
        ("defaults: {ttl: -5}", "defaults.ttl", ">= 0"),
        # Well-formed YAML PyYAML cannot construct, and nesting beyond the parser's recursion limit.
        ("defaults: {ttl: 2024-02-30}", "", "invalid value: day is out of range"),
        ("mappings: " + "9" * 5000, "", "invalid value: "),
        ("mappings: " + "[" * 1000 + "]" * 1000, "", "nested too deeply"),
        ("json: [{name: up, path: 'workers'}]", "json[0].path", "must start with $"),
        ("json: [{name: up, path: '$.a['}]", "json[0].path", "position 3"),
        ("json: [{name: hits, path: $.a, type: counter}]", "json[0].name", "must end with _total"),
        ("json: [{name: cfg, path: $.a, type: info}]", "json[0].name", "ending with _info"),
        ("json: [{name: x, path: $.a.*, labels: {k: $2}}]", "json[0].labels.k", "capture 2"),
        (
            "mappings: [{match: a, name: dup_total}]\njson: [{name: dup_total, path: $.a, type: counter}]",
            "json[0].name",
            "also a statsd mapping",
        ),
    ],
)
def test_invalid_mappings_are_refused_with_location_and_reason(text: str, location: str, reason_part: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "mapping.yaml")
    message = str(caught.value)
    assert message.startswith("mapping.yaml: ")
    assert location in message
    assert reason_part in message


def test_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "nope.yaml")


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [(0, 0.0), (30, 30.0), (1.5, 1.5), ("90s", 90.0), ("1m30s", 90.0), ("500ms", 0.5), ("2h", 7200.0)],
)
def test_durations(raw: object, seconds: float) -> None:
    assert parse_duration(raw) == seconds


@pytest.mark.parametrize("raw", ["", "5", "5x", "-1s", True, None, -3])
def test_bad_durations(raw: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(raw)
