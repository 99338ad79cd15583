"""The shipping half of the pipeline: batches to the sink, retries, probes, dead letters, acknowledgements.

One batch is in flight at a time. Its documents each end in exactly one final
state: delivered, duplicate (already stored) or dead-lettered. Only then is
the batch acknowledged, its file ranges completed and the checkpoint allowed
to move past it.

Three kinds of trouble, three answers:

* The sink answers about some documents (per-item 429/5xx): only those are sent
  again, with exponential backoff and jitter, forever unless LOG_RETRY_MAX says
  otherwise (it counts these answers only).
* The sink asks us to wait (a whole-request 429, or any ``Retry-After``): it is
  waited for, with backoff, and not probed around: an overloaded cluster that
  says "wait" gets its wait.
* The sink is down (refused or dropped connections, timeouts, 5xx, an HTML error
  page from a proxy, 401/403 while credentials rotate, or every document of a
  request failing with a 5xx): the batch is not resent as a whole. One of its
  documents probes the sink every LOG_SINK_PROBE_INTERVAL_SECONDS (jittered),
  and the rest follows the moment a probe is answered. So the backlog moves
  within about a second of the recovery however long the outage was (a backoff
  grown to its cap would wait up to that cap while the sink is already back),
  and a down sink sees one tiny request per interval, never the whole batch
  again and again. The probe is a real request of the failed kind, so it sees
  what ``GET /`` cannot: a ``_bulk`` refused with 503 by a cluster block while
  the node answers, or a writer role without the ``monitor`` privilege. A
  document the probe stored is simply settled (a resend would be a 409).
  Whole-request failures never count against LOG_RETRY_MAX: the sink did not
  look at the documents, and the log file is the buffer. A probe answered with
  a 5xx for its document counts for its group, which it stands for.
"""

from __future__ import annotations

import logging
import random
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
MAX_BACKOFF_EXPONENT = 32
THROTTLED = "throttled"


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
        self._rng = random.Random()
        self._last_save = clock()
        # None while the sink takes documents; else THROTTLED or "down: <reason>", logged once per change.
        self._trouble: str | None = None
        self._trouble_since = 0.0
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
                self._metrics.retries.labels(exc.reason).inc(len(indices))
                if _asks_to_wait(exc):
                    self._told_to_wait(exc)
                    if not self._wait(self._retry_delay(exc)):
                        return False
                elif not self._await_recovery(batch, groups, exc):
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
            groups.popleft()
            retry = self._settle(batch, indices, result)
            down = _stored_nothing(result, len(indices))
            if down is None:
                self._sink_up()
            if not retry:
                self._backoff.reset()
                continue
            attempts += 1
            if self._exhausted(attempts):
                self._dead_letter(batch, [(i, Rejection("retries_exhausted", 0)) for i in retry])
                continue
            groups.appendleft((retry, attempts))
            if down is not None:
                if not self._await_recovery(batch, groups, down):
                    return False
            elif not self._wait(self._next_delay()):
                return False
        return True

    def _await_recovery(self, batch: Batch, groups: deque[tuple[list[int], int]], exc: SinkUnavailableError) -> bool:
        """Probe the down sink with the first document of ``groups[0]`` until it answers; False if aborted.

        Returns once a probe was answered (its document settled, unless it must be sent
        again) and any wait the sink asked for is over; the caller then sends the rest.
        """
        self._sink_down(exc)
        while True:
            if not self._wait(self._probe_delay()):
                return False
            first = groups[0][0][0]
            self.heartbeat.beat()
            try:
                result = self._sink.send([batch.items[first]])
            except SinkUnavailableError as failure:
                if _asks_to_wait(failure):
                    self._metrics.probes.labels("up").inc()
                    self._told_to_wait(failure)
                    return self._wait(self._retry_delay(failure))
                self._metrics.probes.labels("down").inc()
                self._sink_down(failure)
                continue
            except PayloadRejectedError as rejected:
                # Answered; and a request of this one document is refused: it is the bad one.
                self._metrics.probes.labels("up").inc()
                self._sink_up()
                why = Rejection("request_rejected", rejected.status, "", rejected.detail)
                self._dead_letter(batch, [(first, why)])
                _drop_first(groups)
                return True
            still_down = _stored_nothing(result, 1)
            if still_down is not None:
                self._metrics.probes.labels("down").inc()
                self._sink_down(still_down)
                # An answer about a document of the group, standing for all of them: an attempt.
                indices, attempts = groups[0]
                if self._exhausted(attempts + 1):
                    groups.popleft()
                    self._dead_letter(batch, [(i, Rejection("retries_exhausted", 0)) for i in indices])
                    return True
                groups[0] = (indices, attempts + 1)
                continue
            self._metrics.probes.labels("up").inc()
            self._sink_up()
            if self._settle(batch, [first], result):
                return self._wait(self._next_delay())  # answered with a per-item 429: back off, then resend
            _drop_first(groups)
            return True

    def _probe_delay(self) -> float:
        # Jittered, so the pods of a cluster that comes back do not all knock at once.
        interval = self.settings.sink_probe_interval_seconds
        return self._rng.uniform(interval / 2, interval)

    def _retry_delay(self, exc: SinkUnavailableError) -> float:
        delay = self._next_delay()
        if exc.retry_after is not None:
            delay = min(max(delay, exc.retry_after), self.settings.retry_max_seconds)
        return delay

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

    # Sink state: one log line per change, never one per request ----------------------
    def _sink_up(self) -> None:
        self._metrics.sink_up.set(1)
        self.contacted.set()
        if self._trouble is None:
            return
        logger.info(
            "sink %s takes documents again after %.1f s (%s)",
            self._sink.name,
            self._clock() - self._trouble_since,
            self._trouble,
            extra={"sink": self._sink.name, "was": self._trouble},
        )
        self._trouble = None

    def _told_to_wait(self, exc: SinkUnavailableError) -> None:
        """A 429 is an answer (the sink is up and overloaded); a 5xx with Retry-After is down, waited for."""
        if exc.reason != "rate_limited":
            self._sink_down(exc)
            return
        self._metrics.sink_up.set(1)
        self.contacted.set()
        if self._change_trouble(THROTTLED):
            logger.warning(
                "sink %s asks us to slow down (%s); backing off as told, without probing",
                self._sink.name,
                exc.detail,
                extra={"sink": self._sink.name, "reason": exc.reason, "retry_after": exc.retry_after},
            )

    def _sink_down(self, exc: SinkUnavailableError) -> None:
        self._metrics.sink_up.set(0)
        if not self._change_trouble(f"down: {exc.reason}"):
            return
        extra = {"sink": self._sink.name, "reason": exc.reason, "detail": exc.detail[:300]}
        if exc.retry_after is not None:
            probing = f"documents wait in the log files; retrying after {exc.retry_after:g} s as told (Retry-After)"
        else:
            probing = f"documents wait in the log files; probing every {self.settings.sink_probe_interval_seconds:g} s"
        if exc.reason == "unauthorized":
            logger.error(
                "sink %s refuses our credentials (%s): check ES_USERNAME/ES_PASSWORD or ES_API_KEY; %s",
                self._sink.name,
                exc.detail[:300],
                probing,
                extra=extra,
            )
        else:
            logger.warning(
                "sink %s unavailable (%s: %s); %s", self._sink.name, exc.reason, exc.detail[:300], probing, extra=extra
            )

    def _change_trouble(self, trouble: str) -> bool:
        """Enter ``trouble``; True if that is a change (worth one log line)."""
        if trouble == self._trouble:
            return False
        if self._trouble is None:
            self._trouble_since = self._clock()
        self._trouble = trouble
        return True

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


def _asks_to_wait(exc: SinkUnavailableError) -> bool:
    """The sink said how to behave: a 429 (overloaded) or a ``Retry-After``; honoured, never probed around."""
    return exc.reason == "rate_limited" or exc.retry_after is not None


def _stored_nothing(result: SendResult, sent: int) -> SinkUnavailableError | None:
    """If every document failed with a 5xx (the sink answered, but is down for them), say so."""
    failures = result.failures
    if len(failures) < sent or not all(f.retryable and f.status != 429 for f in failures):
        return None
    first = failures[0]
    return SinkUnavailableError(
        retry_reason(first.status, first.error_type) or "server_error",
        f"every document failed: HTTP {first.status} {first.error_type}: {first.reason[:200]}",
    )


def _drop_first(groups: deque[tuple[list[int], int]]) -> None:
    """The probe settled the first document of the first group: send only the rest."""
    indices, attempts = groups[0]
    if len(indices) > 1:
        groups[0] = (indices[1:], attempts)
    else:
        groups.popleft()
