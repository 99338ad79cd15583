"""Group encoded documents into batches bounded by count and bytes, and remember their file ranges."""

from __future__ import annotations

import time
from bisect import bisect_left
from collections import deque
from collections.abc import Callable
from itertools import accumulate

from log_sidecar.acks import AckTracker, Range


class Batch:
    """Encoded documents for one request, with the file ranges they complete once acknowledged."""

    __slots__ = ("items", "nbytes", "opened_at", "ranges")

    def __init__(self, opened_at: float) -> None:
        self.items: list[bytes] = []
        self.nbytes = 0
        self.ranges: list[Range] = []
        self.opened_at = opened_at

    def __len__(self) -> int:
        return len(self.items)

    def __repr__(self) -> str:
        return f"Batch({len(self.items)} docs, {self.nbytes} bytes)"


class Batcher:
    """Fill a batch until LOG_BATCH_MAX_DOCS or LOG_BATCH_MAX_BYTES, then seal it into ``sealed``.

    Used by the reader thread only; a sealed batch is handed to the shipper as a whole.
    """

    def __init__(
        self,
        tracker: AckTracker,
        max_docs: int,
        max_bytes: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._tracker = tracker
        self._max_docs = max_docs
        self._max_bytes = max_bytes
        self._clock = clock
        self._batch: Batch | None = None
        self._ranges: dict[str, Range] = {}
        self.sealed: deque[Batch] = deque()

    def add(self, key: str, end: int, item: bytes) -> None:
        """Append one encoded document of file ``key`` whose record ends at byte ``end``."""
        batch, rng = self._open(key)
        batch.items.append(item)
        batch.nbytes += len(item)
        rng.end = end
        if len(batch.items) >= self._max_docs or batch.nbytes >= self._max_bytes:
            self.seal()

    def add_many(self, key: str, items: list[bytes], ends: list[int]) -> None:
        """Append documents of file ``key`` in order, like ``add`` for each, in a few steps per batch.

        ``ends[i]`` is where the record of ``items[i]`` ends. The reader hands over a whole
        read chunk at once: per document this costs no Python call, only C-level sums.
        """
        count = len(items)
        first = 0
        while first < count:
            batch, rng = self._open(key)
            last = min(count, first + self._max_docs - len(batch.items))
            sizes = list(accumulate(map(len, items[first:last])))
            # The document that reaches LOG_BATCH_MAX_BYTES still goes in, as in add().
            within = bisect_left(sizes, self._max_bytes - batch.nbytes)
            if within < len(sizes):
                last = first + within + 1
            batch.items.extend(items[first:last])
            batch.nbytes += sizes[last - first - 1]
            rng.end = ends[last - 1]
            first = last
            if len(batch.items) >= self._max_docs or batch.nbytes >= self._max_bytes:
                self.seal()

    def _open(self, key: str) -> tuple[Batch, Range]:
        """The open batch (opened now if there is none) and file ``key``'s range in it."""
        batch = self._batch
        if batch is None:
            batch = self._batch = Batch(self._clock())
        rng = self._ranges.get(key)
        if rng is None:
            rng = self._ranges[key] = self._tracker.open_range(key)
            batch.ranges.append(rng)
        return batch, rng

    def skip(self, key: str, end: int) -> int | None:
        """Account for bytes of ``key`` up to ``end`` that produce no document.

        Returns the file's new committed offset when it moved at once (nothing in flight).
        """
        rng = self._ranges.get(key)
        if rng is not None:
            # Covered by this batch's range: committed when the batch is acknowledged.
            rng.end = end
            return None
        return self._tracker.skip(key, end)

    def seal(self) -> None:
        """Close the open batch (if any) and queue it in ``sealed``."""
        batch = self._batch
        if batch is None:
            return
        for rng in batch.ranges:
            self._tracker.extend(rng, rng.end)
        self._batch = None
        self._ranges = {}
        self.sealed.append(batch)

    def open_docs(self) -> int:
        return 0 if self._batch is None else len(self._batch.items)

    def open_age(self) -> float:
        """Seconds since the open batch got its first document (0 when there is none)."""
        return 0.0 if self._batch is None else self._clock() - self._batch.opened_at

    def sealed_bytes(self) -> int:
        return sum(b.nbytes for b in self.sealed)
