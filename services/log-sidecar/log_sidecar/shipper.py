"""The shipping half of the pipeline: batches to the sink, retries, dead letters, acknowledgements.

One batch is in flight at a time. Its documents each end in exactly one final
state: delivered, duplicate (already stored) or dead-lettered. Only then is
the batch acknowledged, its file ranges completed and the checkpoint allowed
to move past it. Retryable failures (per-item 429/5xx, whole-request 429/503,
timeouts, refused connections) resend only the documents that failed, with
exponential backoff and jitter, forever unless LOG_RETRY_MAX says otherwise.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from log_sidecar.acks import AckTracker
from log_sidecar.batching import Batch
from log_sidecar.buffer import BoundedBuffer
from log_sidecar.bulk import retry_reason
from log_sidecar.checkpoint import CheckpointError, CheckpointStore
from log_sidecar.deadletter import DeadLetterFile
from log_sidecar.metrics import Metrics
from log_sidecar.settings import Settings
from log_sidecar.sinks.base import PayloadRejectedError, SendResult, Sink, SinkUnavailableError
from sidecar_common import Backoff, Heartbeat

logger = logging.getLogger(__name__)

TAKE_TIMEOUT = 0.2
WAIT_SLICE = 1.0  # backoff waits are cut into slices so the heartbeat keeps beating
DOWN_LOG_INTERVAL = 30.0
MAX_BACKOFF_EXPONENT = 32


@dataclass(frozen=True)
class Rejection:
    """Why a document is dead-lettered."""

    reason: str
    status: int
    error_type: str = ""
    detail: str = ""


class Shipper:
    """Take batches from the buffer and see every document to a final state."""

    def __init__(
        self,
        settings: Settings,
        sink: Sink,
        buffer: BoundedBuffer,
        tracker: AckTracker,
        store: CheckpointStore,
        dead_letters: DeadLetterFile,
        metrics: Metrics,
        reader_done: threading.Event,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self._sink = sink
        self._buffer = buffer
        self._tracker = tracker
        self._store = store
        self._dead_letters = dead_letters
        self._metrics = metrics
        # The loop beats between requests and every WAIT_SLICE of a backoff; one request may
        # block for up to the sink's timeout.
        self.heartbeat = Heartbeat("shipper", max(settings.sink_timeout_seconds, WAIT_SLICE))
        self._reader_done = reader_done
        self.abort = threading.Event()  # set: stop shipping now (the drain deadline passed)
        self._clock = clock
        self._wall_clock = wall_clock
        self._backoff = Backoff(settings.retry_initial_seconds, settings.retry_max_seconds)
        self._last_save = clock()
        self._down_since: float | None = None
        self._down_logged_at = 0.0
        self.contacted = threading.Event()  # set after the first answer from the sink
        self.finished = threading.Event()

    # The loop -------------------------------------------------------------------
    def run(self) -> None:
        """Ship until the reader is done and the buffer is empty, or until aborted."""
        try:
            while not self.abort.is_set():
                self.heartbeat.beat()
                shipped = self.process_next(TAKE_TIMEOUT)
                if shipped is False:  # aborted mid-batch
                    break
                if shipped is None and self._reader_done.is_set() and self._buffer.idle():
                    break
        finally:
            self.save_checkpoint()
            self.finished.set()

    def process_next(self, timeout: float) -> bool | None:
        """Ship the next batch from the buffer: None if there was none, else whether it was acknowledged."""
        batch = self._buffer.take(timeout)
        if batch is None:
            self._maybe_save()
            return None
        if not self._ship(batch):
            return False
        self._acknowledge(batch)
        return True

    def _ship(self, batch: Batch) -> bool:
        """Deliver ``batch``; a bug in one attempt is logged and the batch tried again, never dropped."""
        while not self.abort.is_set():
            try:
                return self.deliver(batch)
            except Exception:
                logger.exception("unexpected error while shipping a batch; it is sent again")
                if not self._wait(self._next_delay()):
                    return False
        return False

    def _acknowledge(self, batch: Batch) -> None:
        self._buffer.release(batch)
        for key, offset in self._tracker.complete(batch.ranges).items():
            self._store.commit(key, offset)
        self._maybe_save()

    # Delivery -----------------------------------------------------------------
    def deliver(self, batch: Batch) -> bool:
        """Send until every document is delivered, a duplicate or dead-lettered; False if aborted first."""
        items = batch.items
        groups: deque[tuple[list[int], int]] = deque([(list(range(len(items))), 0)])
        while groups:
            indices, attempts = groups[0]
            if self.abort.is_set():
                return False
            self.heartbeat.beat()
            started = self._clock()
            try:
                result = self._sink.send(items if len(indices) == len(items) else [items[i] for i in indices])
            except SinkUnavailableError as exc:
                self._metrics.batch_seconds.observe(self._clock() - started)
                self._sink_down(exc)
                self._metrics.retries.labels(exc.reason).inc(len(indices))
                attempts += 1
                if self._exhausted(attempts):
                    groups.popleft()
                    why = Rejection("retries_exhausted", 0, exc.reason, exc.detail)
                    self._dead_letter(batch, [(i, why) for i in indices])
                    continue
                groups[0] = (indices, attempts)
                delay = self._next_delay()
                if exc.retry_after is not None:
                    delay = min(max(delay, exc.retry_after), self.settings.retry_max_seconds)
                if not self._wait(delay):
                    return False
                continue
            except PayloadRejectedError as exc:
                self._metrics.batch_seconds.observe(self._clock() - started)
                self._sink_up()
                groups.popleft()
                if len(indices) > 1:
                    # Split to isolate the document(s) the sink refuses; the rest still gets through.
                    middle = len(indices) // 2
                    groups.appendleft((indices[middle:], attempts))
                    groups.appendleft((indices[:middle], attempts))
                    logger.warning(
                        "sink refused a request of %d documents (HTTP %d); splitting it",
                        len(indices),
                        exc.status,
                        extra={"status": exc.status, "detail": exc.detail},
                    )
                else:
                    self._dead_letter(batch, [(indices[0], Rejection("request_rejected", exc.status, "", exc.detail))])
                continue
            self._metrics.batch_seconds.observe(self._clock() - started)
            self._sink_up()
            groups.popleft()
            retry = self._settle(batch, indices, result)
            if not retry:
                self._backoff.reset()
                continue
            attempts += 1
            if self._exhausted(attempts):
                self._dead_letter(batch, [(i, Rejection("retries_exhausted", 0)) for i in retry])
                continue
            groups.appendleft((retry, attempts))
            if not self._wait(self._next_delay()):
                return False
        return True

    def _next_delay(self) -> float:
        delay = self._backoff.next_delay()
        # Backoff computes multiplier ** attempt: after ~1000 retries (hours of outage) that float
        # overflows. Past the cap the exponent no longer matters, so keep it small.
        self._backoff.attempt = min(self._backoff.attempt, MAX_BACKOFF_EXPONENT)
        return delay

    def _settle(self, batch: Batch, indices: list[int], result: SendResult) -> list[int]:
        """Count what the sink stored, dead-letter what it will never take; return what to send again."""
        self._metrics.documents.labels("delivered").inc(result.delivered)
        if result.duplicates:
            self._metrics.documents.labels("duplicate").inc(result.duplicates)
        retry: list[int] = []
        rejected: list[tuple[int, Rejection]] = []
        for failure in result.failures:
            position = indices[failure.index]
            if failure.retryable:
                retry.append(position)
                self._metrics.retries.labels(retry_reason(failure.status, failure.error_type) or "other").inc()
            else:
                rejected.append((position, Rejection("rejected", failure.status, failure.error_type, failure.reason)))
        if rejected:
            self._dead_letter(batch, rejected)
        return retry

    def _exhausted(self, attempts: int) -> bool:
        return self.settings.retry_max > 0 and attempts >= self.settings.retry_max

    def _wait(self, delay: float) -> bool:
        """Sleep ``delay`` seconds unless aborted, beating the heartbeat; False if aborted.

        Timed by the waits themselves, not the clock: a test's manual clock must not make it endless.
        """
        left = delay
        while True:
            self.heartbeat.beat()
            if left <= 0:
                return True
            step = min(WAIT_SLICE, left)
            if self.abort.wait(step):
                return False
            left -= step

    def _sink_up(self) -> None:
        self._metrics.sink_up.set(1)
        self.contacted.set()
        if self._down_since is not None:
            logger.info(
                "sink %s answers again after %.1f s",
                self._sink.name,
                self._clock() - self._down_since,
                extra={"sink": self._sink.name},
            )
            self._down_since = None

    def _sink_down(self, exc: SinkUnavailableError) -> None:
        self._metrics.sink_up.set(0)
        now = self._clock()
        if self._down_since is None:
            self._down_since = now
        elif now - self._down_logged_at < DOWN_LOG_INTERVAL:
            return
        self._down_logged_at = now
        logger.warning(
            "sink %s unavailable (%s); retrying, reading paused while the buffer is full",
            self._sink.name,
            exc.reason,
            extra={"sink": self._sink.name, "reason": exc.reason, "detail": exc.detail},
        )

    # Dead letters -----------------------------------------------------------------
    def _dead_letter(self, batch: Batch, rejected: Sequence[tuple[int, Rejection]]) -> None:
        entries = [self._dead_letter_entry(batch.items[i], why) for i, why in rejected]
        self._dead_letters.write(entries, self._wall_clock())
        self._metrics.dead_letters.inc(len(entries))
        self._metrics.documents.labels("dead_letter").inc(len(entries))
        first = rejected[0][1]
        logger.warning(
            "%d document(s) dead-lettered: %s %s",
            len(entries),
            first.status or "",
            first.error_type or first.reason,
            extra={"reason": first.reason, "status": first.status, "detail": first.detail[:300]},
        )

    def _dead_letter_entry(self, item: bytes, why: Rejection) -> dict[str, Any]:
        described = self._sink.describe(item)
        document = described.get("document")
        log = document.get("log") if isinstance(document, dict) else None
        file_info = log.get("file") if isinstance(log, dict) else None
        return {
            "reason": why.reason,
            "status": why.status,
            "error_type": why.error_type,
            "detail": why.detail,
            "sink": self._sink.name,
            "id": described.get("id"),
            "index": described.get("index"),
            "file": file_info.get("path") if isinstance(file_info, dict) else None,
            "offset": log.get("offset") if isinstance(log, dict) else None,
            "document": document,
        }

    # Checkpoint --------------------------------------------------------------------
    def _maybe_save(self) -> None:
        if self._store.dirty and self._clock() - self._last_save >= self.settings.checkpoint_interval_seconds:
            self.save_checkpoint()

    def save_checkpoint(self) -> None:
        self._last_save = self._clock()
        try:
            if self._store.save():
                self._metrics.checkpoint_writes.labels("ok").inc()
                self._metrics.checkpoint_timestamp.set(self._wall_clock())
        except CheckpointError as exc:
            self._metrics.checkpoint_writes.labels("error").inc()
            logger.error("checkpoint write failed", extra={"path": str(exc.path), "error": exc.reason})
