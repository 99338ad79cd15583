"""The fast paths judge every line exactly as the slow ones would.

records.py validates JSON lines with orjson and falls back to ``json.loads`` for what
orjson refuses. Each record here is built twice, once as shipped and once with orjson
taken away, and the two documents, timestamps and reported problems must be identical:
the speed-up must never change which lines count as JSON or what they become. And the
one-step bulk item of the usual line (``RecordBuilder.frame``) must be byte for byte what
``build`` then ``encode`` make of it, for a fixed and for a dated index.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from log_sidecar import records
from log_sidecar.records import FileContext, RecordBuilder
from log_sidecar.sinks.elasticsearch import ElasticsearchSink

READ_TS = "2026-11-26T10:00:00.000Z"
INDEX_TS = "2026-11-25T23:00:00.000Z"  # the file's pinned read time (tailer.py): another day
CTX = FileContext("/var/log/app/app.log")
BUILDER = RecordBuilder("node-1", "pod-1", "ns-1")

Outcome = tuple[str, str | bytes, tuple[tuple[str, str], ...]]


def refuse(data: bytes) -> Any:
    raise ValueError("orjson taken away")


def build_both(data: bytes, flags: tuple[str, ...] = ()) -> tuple[Outcome, Outcome]:
    def outcome() -> Outcome:
        try:
            ts, source, problems = BUILDER.build(data, CTX, 7, READ_TS, flags)
        except Exception as exc:  # the reader ships such a record as text: both paths must raise alike
            return "raised", type(exc).__name__, ()
        return ts, source, problems

    fast = outcome()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(records, "_fast_loads", refuse)
        slow = outcome()
    return fast, slow


SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)  # beyond 64 bits: orjson reads them as floats
    | st.floats(allow_nan=True, allow_infinity=True)  # NaN and Infinity: json.dumps writes them, orjson refuses
    | st.text(max_size=20)  # lone surrogates included: json.dumps escapes them, orjson refuses
)
KEYS = st.sampled_from(["msg", "level", "time", "@timestamp", "timestamp", "log", "host", "kubernetes", "n"]) | st.text(
    max_size=8
)
VALUES = st.recursive(
    SCALARS | st.sampled_from(["2026-01-02T03:04:05Z", "2026-01-02T03:04:05.678+01:00", "yesterday"]),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(KEYS, children, max_size=3),
    max_leaves=12,
)


@settings(max_examples=400, deadline=None)
@given(obj=st.dictionaries(KEYS, VALUES, max_size=6), ascii_only=st.booleans(), compact=st.booleans())
def test_json_objects_come_out_the_same(obj: dict[str, Any], ascii_only: bool, compact: bool) -> None:
    separators = (",", ":") if compact else (", ", ": ")
    data = json.dumps(obj, ensure_ascii=ascii_only, separators=separators).encode("utf-8", "surrogatepass")
    fast, slow = build_both(data)
    assert fast == slow


@settings(max_examples=400, deadline=None)
@given(data=st.binary(max_size=60).map(lambda b: b"{" + b) | st.binary(max_size=60))
def test_arbitrary_bytes_come_out_the_same(data: bytes) -> None:
    fast, slow = build_both(data)
    assert fast == slow


@pytest.mark.parametrize(
    "data",
    [
        b'{"a": NaN}',
        b'{"a": 1e400}',
        b'{"a": "\\ud800"}',
        b'{"a": 123456789012345678901234567890}',
        b'{"log": 123456789012345678901234567890}',
        b'{"a": 1, "a": 2}',
        b'{"a": 1}  \t',
        b'{"a": 1}\x0c',
        b'{"a": "\xff"}',
        b'{"time": "2026-01-02T03:04:05Z", "x": "\xc3"}',
        b"\xef\xbb\xbf{}",
        b"{}",
        b"{" + b'"a":[' * 1100 + b"]" * 1100 + b"}",
    ],
)
def test_lines_orjson_refuses_or_reads_differently(data: bytes) -> None:
    fast, slow = build_both(data)
    assert fast == slow


def test_truncated_and_multiline_flags_follow_the_same_rules() -> None:
    for flags in [("truncated",), ("multiline",), ("multiline", "truncated")]:
        fast, slow = build_both(b'{"a": 1,\n "b": "two"}', flags)
        assert fast == slow


def test_a_huge_integer_survives_a_merge_exactly() -> None:
    _, source, _ = BUILDER.build(b'{"log": {"n": 123456789012345678901234567890}}', CTX, 7, READ_TS)
    assert json.loads(source)["log"]["n"] == 123456789012345678901234567890


SINKS = [ElasticsearchSink("http://127.0.0.1:9", pattern, 5.0) for pattern in ("logs", "logs-%Y.%m.%d")]
KEY = "AbCdEfGhIjKlMnOp"


def frame_matches_build_then_encode(data: bytes) -> None:
    for sink in SINKS:
        item = BUILDER.frame(data, CTX, 7, READ_TS, INDEX_TS, sink.framing(KEY))
        if item is None:
            continue
        ts, source, problems = BUILDER.build(data, CTX, 7, READ_TS)
        assert problems == ()
        assert item == sink.encode(f"{KEY}.7", INDEX_TS if ts is READ_TS else ts, source)


@settings(max_examples=300, deadline=None)
@given(obj=st.dictionaries(KEYS, VALUES, max_size=6), compact=st.booleans())
def test_the_one_step_item_is_build_then_encode(obj: dict[str, Any], compact: bool) -> None:
    separators = (",", ":") if compact else (", ", ": ")
    frame_matches_build_then_encode(json.dumps(obj, separators=separators).encode("utf-8", "surrogatepass"))


@pytest.mark.parametrize(
    "data",
    [
        b'{"@timestamp": "2026-01-02T03:04:05Z", "msg": "a"}',
        b'{"time": "2026-01-02T03:04:05.678+01:00", "msg": "a"}',
        b'{"timestamp": "yesterday"}',
        b'{"@timestamp": 1767323045000, "msg": "epoch millis"}',
        b'{"msg": "no time of its own"}  ',
    ],
)
def test_the_one_step_item_for_each_kind_of_time(data: bytes) -> None:
    assert BUILDER.frame(data, CTX, 7, READ_TS, INDEX_TS, SINKS[1].framing(KEY)) is not None
    frame_matches_build_then_encode(data)


def test_lines_the_one_step_item_leaves_to_build() -> None:
    for data in [b"plain", b"{}", b'{"log": "x"}', b'{"a": NaN}', b'{"a": "\xff"}', b" {}"]:
        assert BUILDER.frame(data, CTX, 7, READ_TS, INDEX_TS, SINKS[0].framing(KEY)) is None
