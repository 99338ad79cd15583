"""Fuzz the statsd path: arbitrary bytes never raise out of it, generated well-formed lines round-trip."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from metrics_exporter.mapping import Mapper
from metrics_exporter.statsd.ingest import Ingestor
from metrics_exporter.statsd.parser import (
    MetricKind,
    Reason,
    StatsdParseError,
    StatsdSample,
    format_line,
    parse_line,
    split_packet,
)
from metrics_exporter.store import SeriesStore

NAMES = st.from_regex(r"[a-zA-Z][a-zA-Z0-9_.\-]{0,30}", fullmatch=True)
# Already sanitized label names, so they survive the parse unchanged.
TAG_KEYS = st.from_regex(r"[a-z][a-z0-9]{0,7}(_[a-z0-9]{1,7}){0,2}", fullmatch=True)
TAG_VALUES = st.from_regex(r"[a-zA-Z0-9_./:\-]{0,20}", fullmatch=True)
NUMBERS = st.floats(min_value=0, max_value=1e12, allow_nan=False, allow_infinity=False)
RATES = st.sampled_from([1.0, 0.5, 0.25, 0.1, 0.01])


@st.composite
def samples(draw: st.DrawFn) -> StatsdSample:
    kind = draw(st.sampled_from(list(MetricKind)))
    name = draw(NAMES)
    tags = tuple(sorted(draw(st.dictionaries(TAG_KEYS, TAG_VALUES, max_size=4)).items()))
    if kind is MetricKind.SET:
        member = draw(st.from_regex(r"[a-zA-Z0-9_.\-]{1,20}", fullmatch=True))
        return StatsdSample(name, kind, member=member, tags=tags)
    values = tuple(draw(st.lists(NUMBERS, min_size=1, max_size=4)))
    relative = tuple(draw(st.booleans()) for _ in values) if kind is MetricKind.GAUGE else (False,) * len(values)
    rate = 1.0 if kind is MetricKind.GAUGE else draw(RATES)
    return StatsdSample(name, kind, values, relative, "", rate, tags)


@given(samples())
def test_well_formed_lines_round_trip(sample: StatsdSample) -> None:
    assert parse_line(format_line(sample)) == sample


@given(st.text(max_size=200))
def test_parse_line_raises_only_its_own_error(line: str) -> None:
    try:
        parsed = parse_line(line)
    except StatsdParseError:
        return
    assert all(math.isfinite(v) for v in parsed.values)


@settings(max_examples=300)
@given(st.lists(st.binary(max_size=300), max_size=8))
def test_arbitrary_packets_never_raise_and_every_line_is_accounted_for(packets: list[bytes]) -> None:
    store = SeriesStore()
    ingestor = Ingestor(store, Mapper())
    ingestor.ingest(packets)
    stats = ingestor.stats_snapshot()
    assert stats.packets == len(packets)
    expected_lines = sum(len(split_packet(p)[0]) + split_packet(p)[1] for p in packets)
    assert stats.lines == expected_lines
    store.collect()  # whatever got in must also render


@settings(max_examples=60)
@given(st.lists(samples(), min_size=1, max_size=10))
def test_generated_traffic_is_stored_without_errors(batch: list[StatsdSample]) -> None:
    store = SeriesStore()
    ingestor = Ingestor(store, Mapper())
    ingestor.ingest([format_line(s).encode() for s in batch])
    stats = ingestor.stats_snapshot()
    # Only the mapping stage may refuse a generated line (two types under one sanitized name).
    refused = sum(stats.parse_errors.values())
    assert refused == stats.parse_errors[Reason.TYPE_CONFLICT] + stats.parse_errors[Reason.INVALID_NAME]
    assert stats.unmapped + refused == len(batch)
