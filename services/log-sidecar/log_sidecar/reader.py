"""The reading half of the pipeline: lines from the tailer become encoded documents in batches.

Runs in its own thread. It reads only while the bounded buffer has room, so a
slow or absent sink pauses reading instead of growing memory; meanwhile it
keeps scanning, so rotated files are opened (and kept) and metrics stay true.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from log_sidecar.batching import Batcher
from log_sidecar.buffer import BoundedBuffer
from log_sidecar.checkpoint import CheckpointStore
from log_sidecar.ids import document_id
from log_sidecar.metrics import Metrics
from log_sidecar.multiline import JoinedRecord
from log_sidecar.problems import BadInputReporter
from log_sidecar.records import TRUNCATED, RecordBuilder, format_timestamp
from log_sidecar.settings import Settings
from log_sidecar.sinks.base import Framing, Sink
from log_sidecar.tailer import Tail, Tailer
from sidecar_common import Heartbeat

logger = logging.getLogger(__name__)

_TRUNCATED_FLAGS = (TRUNCATED,)
METRICS_INTERVAL = 1.0
_FRAMINGS_KEPT = 64  # files whose sink framing is cached (more than are open at once)
# What one turn may take besides its poll wait: it reads at most PASS_BYTES per file and stops
# once the buffer is full (LOG_BUFFER_MAX_BYTES), well under a second of parsing on a loaded box.
TURN_SECONDS = 2.0


class Reader:
    """Drive the tailer, build documents, fill batches, hand them to the buffer; ``stop`` starts the drain."""

    def __init__(
        self,
        settings: Settings,
        tailer: Tailer,
        builder: RecordBuilder,
        sink: Sink,
        batcher: Batcher,
        buffer: BoundedBuffer,
        store: CheckpointStore,
        metrics: Metrics,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.tailer = tailer
        self._builder = builder
        self._sink = sink
        self._encode = sink.encode
        self._framings: dict[str, Framing | None] = {}
        self._batcher = batcher
        self._buffer = buffer
        self._store = store
        self._metrics = metrics
        self._reporter = BadInputReporter(lambda reason: metrics.malformed.labels(reason).inc(), clock=clock)
        self.stop = threading.Event()  # set: read what is written, hand it over, end (the drain)
        # The loop beats every turn: a poll wait plus the turn itself.
        self.heartbeat = Heartbeat("reader", settings.poll_interval_seconds + TURN_SECONDS)
        self._pin_index_time = settings.pin_index_time
        self._clock = clock
        self._wall_clock = wall_clock
        self._next_metrics = 0.0
        self._known_lag_labels: set[str] = set()
        # Set by the directory watcher when a file appears (and by ``halt``): the idle wait ends at once.
        self._news = threading.Event()
        self.done = threading.Event()  # set once every read document is in the buffer (or abandoned)
        self.scanned = threading.Event()  # set after the first scan: /readyz

    # LineConsumer -------------------------------------------------------------
    def lines(self, tail: Tail, start: int, lines: list[bytes]) -> None:
        self._metrics.lines_read.inc(len(lines))
        if tail.joiner is not None:
            self._lines_multiline(tail, start, lines)
            return
        key = tail.key
        ctx = tail.ctx
        framing = self._framing(key)
        frame = self._builder.frame
        items: list[bytes] = []
        ends: list[int] = []
        add_item = items.append
        add_end = ends.append
        max_line = self.settings.max_line_bytes
        read_ts = format_timestamp(self._wall_clock())
        index_ts = self._index_ts(tail, read_ts)
        offset = start
        blank = 0
        for line in lines:
            begin = offset
            offset += len(line) + 1
            item = None
            if framing is not None and len(line) <= max_line:
                # The usual JSON line becomes its item in one step (None: any other line).
                try:
                    item = frame(line, ctx, begin, read_ts, index_ts, framing)
                except Exception:  # costs nothing until raised; _item decides what such a line becomes
                    item = None
            if item is None:
                if not line or line.isspace():
                    blank += 1
                    continue
                item = self._item(tail, line, begin, read_ts, index_ts)
            add_item(item)
            add_end(offset)
        if items:
            self._batcher.add_many(key, items, ends)
        if blank:
            self._metrics.skipped.labels("blank").inc(blank)
        if offset > (ends[-1] if ends else start):
            self._skip(key, offset, count=False)

    def _item(self, tail: Tail, line: bytes, begin: int, read_ts: str, index_ts: str) -> bytes:
        """The sink's item of a line that is not blank: built, then encoded; problems reported."""
        if line[-1] == 13:  # CRLF line ending
            line = line[:-1]
        flags: tuple[str, ...] = ()
        max_line = self.settings.max_line_bytes
        if len(line) > max_line:
            line = line[:max_line]
            flags = _TRUNCATED_FLAGS
            self._reporter.report("truncated", tail.path, begin, f"line cut to {max_line} bytes")
        try:
            ts, source, problems = self._builder.build(line, tail.ctx, begin, read_ts, flags)
            # ``build`` hands back read_ts itself when the record has no time of its own.
            item = self._encode(document_id(tail.key, begin), index_ts if ts is read_ts else ts, source)
        except Exception as exc:  # costs nothing until raised; keeps one odd record from losing the file
            return self._fallback(tail, begin, line.decode("utf-8", "replace"), read_ts, flags, exc)
        for reason, detail in problems:
            self._reporter.report(reason, tail.path, begin, detail)
        return item

    def _lines_multiline(self, tail: Tail, start: int, lines: list[bytes]) -> None:
        joiner = tail.joiner
        assert joiner is not None
        max_line = self.settings.max_line_bytes
        offset = start
        for line in lines:
            begin = offset
            offset += len(line) + 1
            if not joiner.pending and (not line or line.isspace()):
                self._skip(tail.key, offset, count=True)
                continue
            if line and line[-1] == 13:
                line = line[:-1]
            truncated = len(line) > max_line
            if truncated:
                line = line[:max_line]
                self._reporter.report("truncated", tail.path, begin, f"line cut to {max_line} bytes")
            text = self._decode(line, tail, begin, quiet=truncated)
            record = joiner.feed(text, begin, offset, truncated)
            if record is not None:
                self._emit(tail, record)

    def line(self, tail: Tail, start: int, data: bytes, end: int, truncated: bool) -> None:
        if data and data[-1] == 13:
            data = data[:-1]
        if truncated:
            self._reporter.report("truncated", tail.path, start, f"line cut to {self.settings.max_line_bytes} bytes")
        if tail.joiner is not None:
            if not tail.joiner.pending and (not data or data.isspace()):
                self._skip(tail.key, end, count=True)
                return
            text = self._decode(data, tail, start, quiet=truncated)
            record = tail.joiner.feed(text, start, end, truncated)
            if record is not None:
                self._emit(tail, record)
            return
        if not data or data.isspace():
            self._skip(tail.key, end, count=True)
            return
        text = self._decode(data, tail, start, quiet=truncated)
        self._emit(tail, JoinedRecord(text, start, end, _TRUNCATED_FLAGS if truncated else ()))

    def skip(self, tail: Tail, end: int) -> None:
        if tail.joiner is not None and tail.joiner.pending:
            tail.joiner.extend(end)
            return
        self._skip(tail.key, end, count=False)

    def flush(self, tail: Tail) -> None:
        if tail.joiner is not None:
            record = tail.joiner.flush()
            if record is not None:
                self._emit(tail, record)

    def saturated(self) -> bool:
        return bool(self._batcher.sealed) and not self._hand_over()

    # Helpers ------------------------------------------------------------------
    def _decode(self, data: bytes, tail: Tail, offset: int, quiet: bool) -> str:
        try:
            return data.decode()
        except UnicodeDecodeError as exc:
            if not quiet:
                self._reporter.report("invalid_utf8", tail.path, offset, str(exc))
            return data.decode("utf-8", "replace")

    def _framing(self, key: str) -> Framing | None:
        """The sink's framing of the documents of file ``key`` (asked once per file)."""
        if key not in self._framings:
            if len(self._framings) >= _FRAMINGS_KEPT:
                self._framings.clear()
            self._framings[key] = self._sink.framing(key)
        return self._framings[key]

    def _index_ts(self, tail: Tail, read_ts: str) -> str:
        return tail.index_ts if self._pin_index_time else read_ts

    def _emit(self, tail: Tail, record: JoinedRecord) -> None:
        read_ts = format_timestamp(self._wall_clock())
        key = tail.key
        try:
            # The text was decoded (and any invalid UTF-8 reported) line by line: it encodes cleanly.
            data = record.text.encode()
            ts, source, problems = self._builder.build(data, tail.ctx, record.start, read_ts, record.flags)
            index_ts = self._index_ts(tail, read_ts) if ts is read_ts else ts
            item = self._encode(document_id(key, record.start), index_ts, source)
        except Exception as exc:
            item = self._fallback(tail, record.start, record.text, read_ts, record.flags, exc)
            problems = ()
        for reason, detail in problems:
            self._reporter.report(reason, tail.path, record.start, detail)
        self._batcher.add(key, record.end, item)

    def _fallback(
        self, tail: Tail, offset: int, text: str, read_ts: str, flags: tuple[str, ...], exc: Exception
    ) -> bytes:
        """Ship a record that could not be built as it is, as plain text, and say so."""
        self._reporter.report("unprocessable", tail.path, offset, f"{type(exc).__name__}: {exc}")
        source = self._builder.message(text, tail.ctx, offset, read_ts, flags)
        return self._encode(document_id(tail.key, offset), self._index_ts(tail, read_ts), source)

    def _skip(self, key: str, end: int, count: bool) -> None:
        if count:
            self._metrics.skipped.labels("blank").inc()
        committed = self._batcher.skip(key, end)
        if committed is not None:
            self._store.commit(key, committed)

    def _hand_over(self) -> bool:
        """Move sealed batches into the buffer while they fit; return True if none is left waiting."""
        sealed = self._batcher.sealed
        while sealed:
            if not self._buffer.offer(sealed[0]):
                return False
            sealed.popleft()
        return True

    # The loop -------------------------------------------------------------------
    def wake(self) -> None:
        """End the idle wait now: a new file appeared, or the directories changed (any thread)."""
        self._news.set()

    def halt(self) -> None:
        """Stop reading and start the drain (any thread)."""
        self.stop.set()
        self._news.set()

    def run(self) -> None:
        """Read until stopped, then hand over everything read (drain)."""
        while not self.stop.is_set():
            self.heartbeat.beat()
            try:
                caught_up = self.step()
            except Exception:  # never let one bad turn end the reader; the next turn retries
                logger.exception("reader turn failed")
                caught_up = True
            if caught_up:
                if self._batcher.sealed:
                    self._buffer.wait_for_room(self._batcher.sealed[0].nbytes, self.settings.poll_interval_seconds)
                else:
                    self._news.wait(self.settings.poll_interval_seconds)
                    self._news.clear()  # before the turn: news arriving during it ends the next wait
        self._drain()

    def step(self) -> bool:
        """One turn: scan if due, read what fits, seal and hand over batches; True when caught up."""
        tailer = self.tailer
        now = self._clock()
        tailer.adopt_arrivals()
        if tailer.scan_due(now):
            tailer.scan()
            self.scanned.set()
        self._hand_over()
        read, caught_up = (0, True) if self.saturated() else tailer.poll(self)
        tailer.housekeeping(self)
        batcher = self._batcher
        if batcher.open_docs() and (
            batcher.open_age() >= self.settings.flush_interval_seconds or (caught_up and self._buffer.idle())
        ):
            # Caught up and the shipper is idle: send now rather than wait for a full batch.
            batcher.seal()
        self._hand_over()
        if now >= self._next_metrics:
            self._next_metrics = now + METRICS_INTERVAL
            self.update_metrics()
        return caught_up or read == 0

    def _drain(self) -> None:
        """Read what is already written, hand it all to the shipper, then stop, within the drain deadline.

        In a pod the app stops first and its last lines (a crash traceback) are written just
        before the sidecar's SIGTERM; a final pass up to the current end of every file ships
        them. Half the deadline is kept for shipping; what does not fit is read next start.
        """
        self.heartbeat.beat()
        started = self._clock()
        deadline = started + self.settings.drain_seconds
        try:
            self._catch_up(started + self.settings.drain_seconds / 2)
            self.tailer.flush_all(self)
            self._batcher.seal()
            while self._batcher.sealed and self._clock() < deadline:
                self.heartbeat.beat()
                if not self._hand_over():
                    self._buffer.wait_for_room(self._batcher.sealed[0].nbytes, 0.1)
            left = self._batcher.sealed_bytes()
            if left:
                logger.warning("drain deadline: %d bytes read but not handed over; read again next start", left)
        except Exception:
            logger.exception("reader drain failed; unshipped lines are read again next start")
        finally:
            self.done.set()
            self._buffer.wake()

    def _catch_up(self, until: float) -> None:
        while self._clock() < until:
            self.heartbeat.beat()
            if not self._hand_over():
                self._buffer.wait_for_room(self._batcher.sealed[0].nbytes, 0.1)
                continue
            _, caught_up = self.tailer.poll(self)
            if caught_up:
                return

    def update_metrics(self) -> None:
        """Refresh per-file lag and the bytes at risk in rotated files."""
        at_risk = 0
        lags: dict[str, int] = {}
        for status in self.tailer.statuses():
            committed = 0 if status.key is None else (self._store.offset(status.key) or 0)
            lag = max(0, status.size - committed)
            # A rotated file keeps the name it was opened under; the new file has it now.
            label = status.path if status.matched else f"{status.path} (rotated)"
            lags[label] = lags.get(label, 0) + lag
            if not status.matched:
                at_risk += lag
        for label, lag in lags.items():
            self._metrics.lag_bytes.labels(label).set(lag)
        for gone in self._known_lag_labels - lags.keys():
            self._metrics.lag_bytes.remove(gone)
        self._known_lag_labels = set(lags)
        self._metrics.rotated_bytes_at_risk.set(at_risk)
        self._metrics.open_files.set(len(self.tailer.tails))
        self._metrics.buffer_bytes.set(self._buffer.used_bytes)
