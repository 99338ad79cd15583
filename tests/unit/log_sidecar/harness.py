"""A log sidecar pipeline assembled in-process, driven turn by turn, with a fake sink and clock."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from log_sidecar.acks import AckTracker
from log_sidecar.batching import Batcher
from log_sidecar.buffer import BoundedBuffer
from log_sidecar.checkpoint import CheckpointStore
from log_sidecar.deadletter import DeadLetterFile
from log_sidecar.metrics import Metrics
from log_sidecar.problems import BadInputReporter
from log_sidecar.reader import Reader, ReaderOptions
from log_sidecar.records import RecordBuilder
from log_sidecar.shipper import Shipper, ShipperOptions
from log_sidecar.sinks.base import ItemFailure, SendResult
from log_sidecar.sinks.file import describe_line, with_id
from log_sidecar.tailer import Tailer, TailerOptions
from sidecar_common import Backoff, Heartbeat


class ManualClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


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

    def close(self) -> None:
        pass

    def messages(self) -> list[str]:
        """The text of every stored document, in offset order per file."""
        docs = sorted(self.stored.values(), key=lambda d: (d["log"]["file"]["path"], d["log"]["offset"]))
        return [d.get("message", d.get("msg", "")) for d in docs]


@dataclass
class Options:
    paths: tuple[str, ...] = ()
    scan_interval: float = 1.0
    rotate_wait: float = 2.0
    partial_flush: float = 5.0
    max_line_bytes: int = 262144
    fingerprint_bytes: int = 1024
    multiline_pattern: str = ""
    multiline_max_lines: int = 500
    batch_max_docs: int = 1000
    batch_max_bytes: int = 1 << 20
    buffer_max_bytes: int = 4 << 20
    flush_interval: float = 1.0
    retry_max: int = 0
    wall_start: float | None = None  # a ManualClock for the wall-clock time instead of time.time
    extra: dict[str, Any] = field(default_factory=dict)


class Harness:
    """Tailer + reader + shipper on one state dir, without threads: ``pump()`` runs turns until idle."""

    def __init__(self, state_dir: Path, options: Options, sink: FakeSink | None = None) -> None:
        self.state_dir = state_dir
        state_dir.mkdir(parents=True, exist_ok=True)
        self.options = options
        self.clock = ManualClock()
        self.wall_clock: Callable[[], float] = (
            time.time if options.wall_start is None else ManualClock(options.wall_start)
        )
        self.registry = CollectorRegistry()
        self.metrics = Metrics(self.registry)
        self.store = CheckpointStore(state_dir)
        self.store.load()
        self.tracker = AckTracker()
        self.sink = sink or FakeSink()
        self.buffer = BoundedBuffer(options.buffer_max_bytes)
        self.batcher = Batcher(self.tracker, options.batch_max_docs, options.batch_max_bytes, clock=self.clock)
        self.stop = threading.Event()
        self.abort = threading.Event()
        self.tailer = Tailer(
            TailerOptions(
                paths=options.paths,
                scan_interval=options.scan_interval,
                rotate_wait=options.rotate_wait,
                partial_flush=options.partial_flush,
                max_line_bytes=options.max_line_bytes,
                fingerprint_bytes=options.fingerprint_bytes,
                multiline_pattern=options.multiline_pattern,
                multiline_max_lines=options.multiline_max_lines,
            ),
            self.store,
            self.tracker,
            self.metrics,
            clock=self.clock,
            wall_clock=self.wall_clock,
        )
        self.reader = Reader(
            ReaderOptions(
                poll_interval=0.01, flush_interval=options.flush_interval, max_line_bytes=options.max_line_bytes
            ),
            self.tailer,
            RecordBuilder("node-1", "pod-1", "ns-1"),
            self.sink,
            self.batcher,
            self.buffer,
            self.store,
            self.metrics,
            BadInputReporter(lambda reason: self.metrics.malformed.labels(reason).inc(), clock=self.clock),
            self.stop,
            Heartbeat("reader", 60),
            clock=self.clock,
            wall_clock=self.wall_clock,
        )
        self.dead_letters = DeadLetterFile(state_dir, 1 << 20)
        self.shipper = Shipper(
            ShipperOptions(retry_max=options.retry_max, checkpoint_interval=0.0),
            self.sink,
            self.buffer,
            self.tracker,
            self.store,
            self.dead_letters,
            self.metrics,
            Heartbeat("shipper", 60),
            self.reader.done,
            self.abort,
            backoff=Backoff(initial=0.001, maximum=0.002),
        )

    def turn(self) -> None:
        """One reader turn, then ship whatever it handed over."""
        self.reader.step()
        while self.shipper.process_next(0) is not None:
            pass

    def pump(self, turns: int = 5) -> None:
        """Run turns with the clock advancing past the flush interval, so partial batches go out."""
        for _ in range(turns):
            self.turn()
            self.clock.advance(self.options.flush_interval)
            self.turn()

    def scan(self) -> None:
        self.tailer.request_scan()

    def metric(self, name: str, **labels: str) -> float:
        value = self.registry.get_sample_value(name, labels or None)
        return 0.0 if value is None else value

    def close(self) -> None:
        self.shipper.save_checkpoint()
        self.tailer.close_all()
