"""A log sidecar pipeline assembled in-process, driven turn by turn, with a fake sink and clock."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from log_sidecar.pipeline import Pipeline
from log_sidecar.settings import Settings
from log_sidecar.sinks.base import ItemFailure, SendResult
from log_sidecar.sinks.file import describe_line, with_id
from tests.support import FakeClock


class FakeSink:
    """Stores documents by ``_id`` like Elasticsearch with ``create``: a known id is a duplicate.

    ``failures`` are raised by the next requests, one each; ``item_status(doc)`` can answer a
    per-document status (429, 400...) instead of storing it; ``after_store`` is called after a
    request was stored, whose answer is then lost (a crash before the acknowledgement).
    """

    name = "fake"

    def __init__(self) -> None:
        self.stored: dict[str, dict[str, Any]] = {}
        self.requests: list[int] = []
        self.failures: list[Exception] = []
        self.item_status: Callable[[dict[str, Any]], int | None] = lambda doc: None
        self.down = False
        self.after_store: Callable[[], None] | None = None

    def framing(self, key: str) -> None:
        return None

    def encode(self, doc_id: str, timestamp: str, source: bytes) -> bytes:
        return with_id(doc_id, source)

    def send(self, items: Sequence[bytes]) -> SendResult:
        from log_sidecar.sinks.base import SinkUnavailableError

        self.requests.append(len(items))
        if self.down:
            raise SinkUnavailableError("connection", "fake sink is down")
        if self.failures:
            raise self.failures.pop(0)
        result = SendResult()
        for position, item in enumerate(items):
            doc = json.loads(item)
            status = self.item_status(doc)
            if status is not None:
                retryable = status == 429 or status >= 500
                result.failures.append(ItemFailure(position, status, "fake_exception", "injected", retryable))
            elif doc["_id"] in self.stored:
                result.duplicates += 1
            else:
                self.stored[doc.pop("_id")] = doc
                result.delivered += 1
        if self.after_store is not None:
            self.after_store()
            raise SinkUnavailableError("timeout", "answer lost")
        return result

    def describe(self, item: bytes) -> dict[str, Any]:
        return describe_line(item)

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def messages(self) -> list[str]:
        """The text of every stored document, in offset order per file."""
        docs = sorted(self.stored.values(), key=lambda d: (d["log"]["file"]["path"], d["log"]["offset"]))
        return [d.get("message", d.get("msg", "")) for d in docs]


# What the harness changes from the service's defaults (Settings), and why; everything else is the default.
HARNESS_SETTINGS: dict[str, Any] = {
    # The fake sink stands in for Elasticsearch (ids unique per index): dated indices are pinned as there.
    "sink": "elasticsearch",
    "es_url": "http://fake-sink",
    "node_name": "node-1",
    "pod_name": "pod-1",
    "pod_namespace": "ns-1",
    # Backoff waits are real time (the manual clock only times the pipeline): retry at once.
    "retry_initial_seconds": 0.001,
    "retry_max_seconds": 0.002,
    "sink_probe_interval_seconds": 0.001,
}


class Harness:
    """The service's own Pipeline on one state dir, without threads: ``pump()`` runs turns until idle.

    ``overrides`` are Settings fields (``rotate_wait_seconds=1.0``); ``wall_start`` puts the
    wall clock on a FakeClock too.
    """

    def __init__(
        self, state_dir: Path, sink: FakeSink | None = None, wall_start: float | None = None, **overrides: Any
    ) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        self.settings = dataclasses.replace(Settings(), state_dir=state_dir, **{**HARNESS_SETTINGS, **overrides})
        self.settings.validate()
        self.clock = FakeClock()
        self.wall_clock: Callable[[], float] = time.time if wall_start is None else FakeClock(wall_start)
        self.registry = CollectorRegistry()
        self.sink = sink or FakeSink()
        self.pipeline = Pipeline(self.settings, self.sink, self.registry, clock=self.clock, wall_clock=self.wall_clock)
        self.pipeline.open()
        self.metrics = self.pipeline.metrics
        self.store = self.pipeline.store
        self.buffer = self.pipeline.buffer
        self.batcher = self.pipeline.batcher
        self.tailer = self.pipeline.tailer
        self.reader = self.pipeline.reader
        self.shipper = self.pipeline.shipper
        self.abort = self.shipper.abort

    def turn(self) -> None:
        """One reader turn, then ship whatever it handed over."""
        self.reader.step()
        while self.shipper.process_next(0) is not None:
            pass

    def pump(self, turns: int = 5) -> None:
        """Run turns with the clock advancing past the flush interval, so partial batches go out."""
        for _ in range(turns):
            self.turn()
            self.clock.advance(self.settings.flush_interval_seconds)
            self.turn()

    def scan(self) -> None:
        self.tailer.request_scan()

    def metric(self, name: str, **labels: str) -> float:
        value = self.registry.get_sample_value(name, labels or None)
        return 0.0 if value is None else value

    def close(self) -> None:
        self.pipeline.close()
