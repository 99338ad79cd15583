"""The statsd/DogStatsD line parser: every type, sample rates, tags, packing, and each malformed case."""

from __future__ import annotations

import pytest

from metrics_exporter.statsd.parser import (
    MAX_PACKET_BYTES,
    MetricKind,
    Reason,
    StatsdParseError,
    StatsdSample,
    parse_line,
    split_packet,
)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("hits:1|c", StatsdSample("hits", MetricKind.COUNTER, (1.0,), (False,))),
        ("hits:2.5|c|@0.1", StatsdSample("hits", MetricKind.COUNTER, (2.5,), (False,), sample_rate=0.1)),
        ("hits:+3|c", StatsdSample("hits", MetricKind.COUNTER, (3.0,), (False,))),
        ("temp:21.5|g", StatsdSample("temp", MetricKind.GAUGE, (21.5,), (False,))),
        ("temp:+2|g", StatsdSample("temp", MetricKind.GAUGE, (2.0,), (True,))),
        ("temp:-4|g", StatsdSample("temp", MetricKind.GAUGE, (-4.0,), (True,))),
        # A gauge ignores the sample rate (DogStatsD applies it to counts and observations only).
        ("temp:5|g|@0.5", StatsdSample("temp", MetricKind.GAUGE, (5.0,), (False,))),
        ("db.query:320|ms", StatsdSample("db.query", MetricKind.TIMER, (320.0,), (False,))),
        ("db.query:12|ms|@0.25", StatsdSample("db.query", MetricKind.TIMER, (12.0,), (False,), sample_rate=0.25)),
        ("size:7|h", StatsdSample("size", MetricKind.HISTOGRAM, (7.0,), (False,))),
        ("lat:1.5|d", StatsdSample("lat", MetricKind.DISTRIBUTION, (1.5,), (False,))),
        ("users:alice|s", StatsdSample("users", MetricKind.SET, member="alice")),
        # DogStatsD v1.1 value packing.
        ("lat:1:2:3|ms", StatsdSample("lat", MetricKind.TIMER, (1.0, 2.0, 3.0), (False, False, False))),
        ("temp:1:+2|g", StatsdSample("temp", MetricKind.GAUGE, (1.0, 2.0), (False, True))),
        (
            "calls:1|c|#status:200,route:/api",
            StatsdSample("calls", MetricKind.COUNTER, (1.0,), (False,), tags=(("route", "/api"), ("status", "200"))),
        ),
        (
            "calls:1|c|@0.5|#status:500",
            StatsdSample("calls", MetricKind.COUNTER, (1.0,), (False,), sample_rate=0.5, tags=(("status", "500"),)),
        ),
        # Tag names are sanitized to snake_case label names; a tag value may contain ':'.
        (
            "calls:1|c|#statusCode:200,url:http://x",
            StatsdSample(
                "calls", MetricKind.COUNTER, (1.0,), (False,), tags=(("status_code", "200"), ("url", "http://x"))
            ),
        ),
        # A bare DogStatsD tag has no value for a label: dropped and counted, the line is kept.
        (
            "calls:1|c|#env,status:200",
            StatsdSample("calls", MetricKind.COUNTER, (1.0,), (False,), tags=(("status", "200"),), invalid_tags=1),
        ),
        # DogStatsD container id and timestamp fields are accepted and ignored.
        ("hits:1|c|c:abc123|T1700000000", StatsdSample("hits", MetricKind.COUNTER, (1.0,), (False,))),
        (
            "gunicorn.request.status.200:1|c|@1.0",
            StatsdSample("gunicorn.request.status.200", MetricKind.COUNTER, (1.0,), (False,)),
        ),
    ],
)
def test_well_formed_lines_parse(line: str, expected: StatsdSample) -> None:
    assert parse_line(line) == expected


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("no-colon", Reason.MISSING_VALUE),
        (":1|c", Reason.EMPTY_NAME),
        ("   :1|c", Reason.EMPTY_NAME),
        ("hits:1", Reason.MISSING_TYPE),
        ("hits:1|", Reason.MISSING_TYPE),
        ("hits:1|x", Reason.UNKNOWN_TYPE),
        ("hits:1|C", Reason.UNKNOWN_TYPE),
        ("hits:abc|c", Reason.INVALID_VALUE),
        ("hits:|c", Reason.INVALID_VALUE),
        ("hits:nan|c", Reason.INVALID_VALUE),
        ("hits:inf|g", Reason.INVALID_VALUE),
        ("hits:1::2|ms", Reason.INVALID_VALUE),
        ("users:|s", Reason.INVALID_VALUE),
        ("hits:-1|c", Reason.NEGATIVE_COUNTER),
        ("hits:1|c|@0", Reason.INVALID_SAMPLE_RATE),
        ("hits:1|c|@1.5", Reason.INVALID_SAMPLE_RATE),
        ("hits:1|c|@x", Reason.INVALID_SAMPLE_RATE),
        ("hits:1|c|@-0.5", Reason.INVALID_SAMPLE_RATE),
        ("hits:1|c|zzz", Reason.INVALID_FIELD),
        ("_e{5,4}:title|text", Reason.UNSUPPORTED_EVENT),
        ("_sc|redis|1", Reason.UNSUPPORTED_EVENT),
    ],
)
def test_malformed_lines_raise_with_their_reason(line: str, reason: Reason) -> None:
    with pytest.raises(StatsdParseError) as caught:
        parse_line(line)
    assert caught.value.reason is reason
    assert caught.value.line == line


def test_a_packet_splits_into_its_non_empty_lines() -> None:
    lines, undecodable = split_packet(b"a:1|c\nb:2|g\n\nc:3|ms\n")
    assert lines == ["a:1|c", "b:2|g", "c:3|ms"]
    assert undecodable == 0


def test_a_non_utf8_line_costs_only_itself() -> None:
    lines, undecodable = split_packet(b"a:1|c\n\xff\xfe:1|c\nb:2|c")
    assert lines == ["a:1|c", "b:2|c"]
    assert undecodable == 1


def test_a_packet_over_64_kib_is_refused_whole() -> None:
    with pytest.raises(StatsdParseError) as caught:
        split_packet(b"a:1|c\n" * (MAX_PACKET_BYTES // 6 + 1))
    assert caught.value.reason is Reason.PACKET_TOO_LARGE


def test_a_packet_of_exactly_64_kib_is_accepted() -> None:
    line = b"a:1|c\n"
    packet = line * (MAX_PACKET_BYTES // len(line))
    packet += b"#" * (MAX_PACKET_BYTES - len(packet))
    assert len(packet) == MAX_PACKET_BYTES
    lines, _ = split_packet(packet)
    assert len(lines) == MAX_PACKET_BYTES // len(line) + 1  # the padding is one (malformed) line of its own
