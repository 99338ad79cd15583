"""A sink with a framing (Elasticsearch) gets the same items whether the reader frames a line or encodes it.

The reader builds the bulk item of the usual JSON line in one step (RecordBuilder.frame with
the sink's framing) and everything else with build + encode. The same file shipped through a
sink that frames and through one that does not must store the same documents under the same
ids in the same indices, whatever the mix of lines.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from log_sidecar.bulk import BulkFraming, IndexNamer, create_action
from log_sidecar.sinks.base import SendResult
from tests.unit.log_sidecar.harness import FakeSink, Harness

LINES = [
    b'{"@timestamp": "2026-01-02T03:04:05.000Z", "level": "info", "msg": "own time"}',
    b'{"time": "2026-01-02T03:04:05.678+01:00", "msg": "time field"}',
    b'{"msg": "no time of its own", "n": 123456789012345678901234567890}',
    b'{"@timestamp": 1767323045000, "msg": "epoch millis"}',
    b"",
    b"   ",
    b"plain text line",
    b'{"broken": ',
    b'{"log": "docker json-file", "stream": "stdout"}',
    b'{"host": {"ip": "10.0.0.1"}, "msg": "clash"}',
    b"{}",
    b'{"a": NaN}',
    b'{"crlf": true}\r',
    b'{"bad utf-8": "\xff"}',
    b'{"long": "' + b"x" * 300 + b'"}',
    '{"unicode": "día ✓"}'.encode(),
]


class BulkSink(FakeSink):
    """Stores bulk items like Elasticsearch (by index and id); frames documents when ``framed``."""

    def __init__(self, pattern: str, framed: bool) -> None:
        super().__init__()
        self.namer = IndexNamer(pattern, now=lambda: None)
        self.framed = framed
        self.items: list[bytes] = []
        self.docs: dict[tuple[str, str], dict[str, Any]] = {}

    def framing(self, key: str) -> BulkFraming | None:  # type: ignore[override]
        return BulkFraming(self.namer, key) if self.framed else None

    def encode(self, doc_id: str, timestamp: str, source: bytes) -> bytes:
        return create_action(self.namer(timestamp), doc_id) + source + b"\n"

    def send(self, items: Sequence[bytes]) -> SendResult:
        self.items.extend(items)
        for item in items:
            action, source = item.rstrip(b"\n").split(b"\n")
            meta = json.loads(action)["create"]
            self.docs[(meta["_index"], meta["_id"])] = json.loads(source)
        return SendResult(delivered=len(items))


@pytest.mark.parametrize("pattern", ["logs", "logs-%Y.%m.%d"])
def test_framed_and_encoded_items_are_identical(tmp_path: Path, logs: Path, pattern: str) -> None:
    (logs / "app.log").write_bytes(b"\n".join(LINES * 3) + b"\n")
    framed_sink, encoded_sink = BulkSink(pattern, framed=True), BulkSink(pattern, framed=False)
    for sink in (framed_sink, encoded_sink):
        harness = Harness(  # each its own checkpoint
            tmp_path / f"state-{sink.framed}",
            sink,
            wall_start=1767323045.0,
            paths=(str(logs / "*.log"),),
            max_line_bytes=200,
        )
        try:
            harness.pump(2)
        finally:
            harness.close()
    assert len(framed_sink.docs) == 3 * (len(LINES) - 2)  # the blank lines make no document
    assert framed_sink.items == encoded_sink.items
    assert framed_sink.docs == encoded_sink.docs
