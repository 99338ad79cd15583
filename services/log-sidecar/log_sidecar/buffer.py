"""The bounded hand-over between reader and shipper: a byte cap that pauses reading.

Bytes count from the moment a batch is offered until the shipper releases it
after its acknowledgement, so batches being retried count too. When the sink
is slow or down the buffer fills, the reader stops reading, and the log file
itself holds the backlog: memory stays flat however long the outage lasts.
"""

from __future__ import annotations

import threading
from collections import deque

from log_sidecar.batching import Batch


class BoundedBuffer:
    """A FIFO of batches holding at most ``max_bytes`` (one oversized batch is let in when empty)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._queue: deque[Batch] = deque()
        self._used = 0
        self._cond = threading.Condition()

    def offer(self, batch: Batch) -> bool:
        """Queue ``batch`` if it fits; never blocks (the reader keeps scanning while full)."""
        with self._cond:
            if self._used and self._used + batch.nbytes > self.max_bytes:
                return False
            self._queue.append(batch)
            self._used += batch.nbytes
            self._cond.notify_all()
            return True

    def take(self, timeout: float) -> Batch | None:
        """Return the oldest queued batch, waiting up to ``timeout`` seconds for one."""
        with self._cond:
            if not self._queue:
                self._cond.wait(timeout)
            return self._queue.popleft() if self._queue else None

    def release(self, batch: Batch) -> None:
        """Give back the bytes of a batch that reached a final state (acknowledged or dead-lettered)."""
        with self._cond:
            self._used -= batch.nbytes
            self._cond.notify_all()

    def wait_for_room(self, nbytes: int, timeout: float) -> bool:
        """Wait until ``nbytes`` more would fit (or ``timeout``); return whether they fit."""
        with self._cond:
            fits = self._cond.wait_for(lambda: not self._used or self._used + nbytes <= self.max_bytes, timeout)
            return bool(fits)

    def wake(self) -> None:
        """Wake every waiter (shutdown)."""
        with self._cond:
            self._cond.notify_all()

    @property
    def used_bytes(self) -> int:
        with self._cond:
            return self._used

    def idle(self) -> bool:
        """True when nothing is queued or in flight."""
        with self._cond:
            return self._used == 0 and not self._queue
