"""Records become valid JSON documents with ECS fields; multiline records are joined."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from log_sidecar.multiline import MultilineJoiner
from log_sidecar.records import FileContext, RecordBuilder, format_timestamp

READ_TS = "2026-11-26T10:00:00.000Z"
CTX = FileContext('/var/log/app/"odd".log')


def build(text: str, flags: tuple[str, ...] = (), **kwargs: Any) -> tuple[str, dict[str, Any], list[str]]:
    """Build the record ``text``; return (timestamp, the document, the reasons of its problems)."""
    builder = RecordBuilder("node-1", "pod-1", "ns-1", **kwargs)
    ts, source, problems = builder.build(text.encode(), CTX, 42, READ_TS, flags)
    return ts, json.loads(source), [reason for reason, _ in problems]


def test_a_json_line_keeps_its_fields_and_gets_ecs_enrichment() -> None:
    ts, doc, problems = build('{"msg": "hi", "level": "info", "n": 1}')
    assert problems == []
    assert doc == {
        "msg": "hi",
        "level": "info",
        "n": 1,
        "log": {"file": {"path": '/var/log/app/"odd".log'}, "offset": 42},
        "host": {"name": "node-1"},
        "kubernetes": {"pod": {"name": "pod-1"}, "namespace": "ns-1"},
        "@timestamp": READ_TS,
    }
    assert ts == READ_TS


def test_the_records_own_timestamp_wins_over_the_read_time() -> None:
    ts, doc, _ = build('{"time": "2026-01-02T03:04:05.678+01:00", "msg": "x"}')
    assert ts == doc["@timestamp"] == "2026-01-02T03:04:05.678+01:00"
    ts, doc, _ = build('{"@timestamp": "2025-05-05T05:05:05Z", "msg": "x"}')
    assert ts == doc["@timestamp"] == "2025-05-05T05:05:05Z"
    ts, doc, _ = build('{"time": "yesterday", "msg": "x"}')
    assert ts == doc["@timestamp"] == READ_TS
    assert doc["time"] == "yesterday"


def test_plain_and_invalid_json_lines_become_messages() -> None:
    _, doc, problems = build('plain text with "quotes" and \\ and \t tab')
    assert doc["message"] == 'plain text with "quotes" and \\ and \t tab'
    assert problems == []
    _, doc, problems = build('{"broken": ')
    assert doc["message"] == '{"broken": '
    assert problems == ["invalid_json"]
    _, doc, _ = build("[1, 2]")
    assert doc["message"] == "[1, 2]"


def test_clashing_fields_are_merged_and_scalars_kept_aside() -> None:
    _, doc, _ = build('{"log": "docker json-file message", "host": {"ip": "10.0.0.1"}, "kubernetes": 5}')
    assert doc["message"] == "docker json-file message"
    assert doc["host"] == {"ip": "10.0.0.1", "name": "node-1"}
    assert doc["kubernetes_original"] == 5
    assert doc["kubernetes"]["pod"] == {"name": "pod-1"}
    assert doc["log"]["offset"] == 42
    _, doc, _ = build('{"log": {"level": "warn", "offset": 1}}')
    assert doc["log"] == {"level": "warn", "offset": 42, "file": {"path": CTX.path}}


def test_an_empty_object_and_flags() -> None:
    _, doc, _ = build("{}")
    assert set(doc) == {"log", "host", "kubernetes", "@timestamp"}
    _, doc, _ = build('{"cut": "som', ("truncated",))
    assert doc["message"] == '{"cut": "som'
    assert doc["log"]["flags"] == ["truncated"]


def test_without_pod_metadata_there_is_no_kubernetes_object() -> None:
    builder = RecordBuilder("host-a")
    _, source, _ = builder.build(b"x", CTX, 0, READ_TS)
    assert "kubernetes" not in json.loads(source)


def test_format_timestamp_is_utc_with_milliseconds() -> None:
    assert format_timestamp(0.5) == "1970-01-01T00:00:00.500Z"


TRACEBACK = [
    "2026-01-01 12:00:00 ERROR request failed",
    "Traceback (most recent call last):",
    '  File "app.py", line 3, in <module>',
    "    main()",
    "",
    "ValueError: boom",
    "2026-01-01 12:00:01 INFO next request",
]


def feed_all(joiner: MultilineJoiner, lines: list[str]) -> list[Any]:
    records = []
    offset = 0
    for line in lines:
        end = offset + len(line) + 1
        record = joiner.feed(line, offset, end)
        if record is not None:
            records.append(record)
        offset = end
    return records


def test_a_python_traceback_is_joined_into_one_record() -> None:
    joiner = MultilineJoiner(re.compile(r"^\d{4}-\d{2}-\d{2} "), max_lines=100, max_chars=10_000)
    (record,) = feed_all(joiner, TRACEBACK)
    assert record.text == "\n".join(TRACEBACK[:6])
    assert (record.start, record.end) == (0, sum(len(line) + 1 for line in TRACEBACK[:6]))
    assert record.flags == ("multiline",)
    last = joiner.flush()
    assert last is not None
    assert last.text == TRACEBACK[6]
    assert last.flags == ()
    assert joiner.flush() is None


def test_a_record_over_the_line_limit_is_cut_and_flagged() -> None:
    joiner = MultilineJoiner(re.compile(r"^START"), max_lines=3, max_chars=10_000)
    records = feed_all(joiner, ["START", "a", "b", "c", "d", "START"])
    assert records[0].text == "START\na\nb"
    assert records[0].flags == ("multiline", "truncated")
    assert records[0].end == len("START\na\nb\nc\nd\n"), "the dropped lines are still consumed"


@pytest.mark.parametrize("pattern", [r"^\{", r"^\S"])
def test_continuation_lines_before_any_start_form_their_own_record(pattern: str) -> None:
    joiner = MultilineJoiner(re.compile(pattern), max_lines=10, max_chars=100)
    records = feed_all(joiner, ["  orphan continuation", "{start}"])
    assert records[0].text == "  orphan continuation"
