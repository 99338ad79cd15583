"""A record resent after a restart must reach the same dated index, or Elasticsearch stores it twice."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from log_sidecar.bulk import IndexNamer
from log_sidecar.sinks.base import SendResult, SinkUnavailableError
from log_sidecar.sinks.file import with_id
from tests.unit.log_sidecar.conftest import MakeHarness
from tests.unit.log_sidecar.harness import FakeSink


class DatedIndexSink(FakeSink):
    """Like Elasticsearch with a daily index pattern: an ``_id`` is unique only within its index."""

    def __init__(self) -> None:
        super().__init__()
        self.namer = IndexNamer("logs-%Y.%m.%d")
        self.docs: dict[tuple[str, str], dict[str, Any]] = {}

    def encode(self, doc_id: str, timestamp: str, source: bytes) -> bytes:
        return self.namer(timestamp).encode() + b" " + with_id(doc_id, source)

    def send(self, items: Sequence[bytes]) -> SendResult:
        result = SendResult()
        for item in items:
            index, _, line = item.partition(b" ")
            doc = json.loads(line)
            key = (index.decode(), doc.pop("_id"))
            if key in self.docs:
                result.duplicates += 1
            else:
                self.docs[key] = doc
                result.delivered += 1
        if self.after_store is not None:
            self.after_store()  # stored, but the sidecar dies before it hears the answer
            raise SinkUnavailableError("timeout", "answer lost")
        return result


def test_a_resend_across_midnight_hits_the_index_of_the_first_send(make_harness: MakeHarness, logs: Path) -> None:
    before_midnight = datetime(2026, 11, 26, 23, 59, 50, tzinfo=UTC).timestamp()
    log = logs / "app.log"
    log.write_text("first\nsecond\nthird\n")
    sink = DatedIndexSink()
    crashed = make_harness(sink, wall_start=before_midnight)
    sink.after_store = crashed.abort.set
    crashed.pump(2)
    assert {index for index, _ in sink.docs} == {"logs-2026.11.26"}
    crashed.close()

    sink.after_store = None
    restarted = make_harness(sink, wall_start=before_midnight + 60)  # the next day
    restarted.pump(2)
    with log.open("a") as out:
        out.write("fourth\nfifth\n")
    restarted.pump(2)

    messages = sorted(doc["message"] for doc in sink.docs.values())
    assert messages == ["fifth", "first", "fourth", "second", "third"]  # each once
    assert len({doc_id for _, doc_id in sink.docs}) == 5
    assert restarted.metric("log_sidecar_documents_total", result="duplicate") == 3
    by_index = {doc["message"]: index for (index, _), doc in sink.docs.items()}
    assert by_index["third"] == "logs-2026.11.26"
    assert by_index["fourth"] == "logs-2026.11.27"  # new records move on to the new day
