"""The contiguous acknowledged prefix of each file: the only offset safe to checkpoint.

The reader hands out byte ranges of a file in order; the sink acknowledges
them, possibly out of order (a retried batch finishes after a later one).
The checkpoint may only move to the end of the longest run of finished ranges
starting at the last checkpoint: anything beyond a gap could be lost by a crash.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence


class Range:
    """Bytes ``[start, end)`` of the file ``key``; ``done`` once every record in it was acknowledged."""

    __slots__ = ("done", "end", "key", "start")

    def __init__(self, key: str, start: int, end: int, done: bool = False) -> None:
        self.key = key
        self.start = start
        self.end = end
        self.done = done

    def __repr__(self) -> str:
        return f"Range({self.key!r}, {self.start}, {self.end}, done={self.done})"


class _FileProgress:
    __slots__ = ("committed", "pending", "registered_end")

    def __init__(self, committed: int) -> None:
        self.committed = committed
        self.registered_end = committed
        self.pending: deque[Range] = deque()


class AckTracker:
    """Per-file ordered ranges; :meth:`complete` returns the offsets that became safe to checkpoint."""

    def __init__(self) -> None:
        self._files: dict[str, _FileProgress] = {}
        self._lock = threading.Lock()

    def start(self, key: str, offset: int) -> None:
        """Begin tracking ``key`` from its checkpointed ``offset``."""
        with self._lock:
            self._files.setdefault(key, _FileProgress(offset))

    def open_range(self, key: str) -> Range:
        """Start the next range of ``key``; it begins where the previous one ended."""
        with self._lock:
            progress = self._files[key]
            rng = Range(key, progress.registered_end, progress.registered_end)
            progress.pending.append(rng)
            return rng

    def extend(self, rng: Range, end: int) -> None:
        """Grow a range the reader is still filling (before it is handed to the sink)."""
        with self._lock:
            rng.end = end
            self._files[rng.key].registered_end = end

    def skip(self, key: str, end: int) -> int | None:
        """Mark bytes up to ``end`` as needing no delivery (blank lines, discarded tails).

        Returns the new committed offset if it moved.
        """
        with self._lock:
            progress = self._files[key]
            if end <= progress.registered_end:
                return None
            last = progress.pending[-1] if progress.pending else None
            if last is not None and last.done:
                last.end = end
            else:
                progress.pending.append(Range(key, progress.registered_end, end, done=True))
            progress.registered_end = end
            return self._compact(progress)

    def complete(self, ranges: Sequence[Range]) -> dict[str, int]:
        """Mark ``ranges`` acknowledged; return {key: new committed offset} for files whose prefix grew."""
        moved: dict[str, int] = {}
        with self._lock:
            for rng in ranges:
                rng.done = True
            for rng in ranges:
                progress = self._files.get(rng.key)
                if progress is None:
                    continue
                committed = self._compact(progress)
                if committed is not None:
                    moved[rng.key] = committed
        return moved

    def committed(self, key: str) -> int | None:
        with self._lock:
            progress = self._files.get(key)
            return None if progress is None else progress.committed

    def outstanding(self, key: str) -> int:
        """Ranges of ``key`` handed out and not yet acknowledged."""
        with self._lock:
            progress = self._files.get(key)
            return 0 if progress is None else sum(1 for r in progress.pending if not r.done)

    def forget(self, key: str) -> None:
        """Stop tracking ``key`` (its file is closed and nothing of it is in flight)."""
        with self._lock:
            self._files.pop(key, None)

    @staticmethod
    def _compact(progress: _FileProgress) -> int | None:
        before = progress.committed
        pending = progress.pending
        while pending and pending[0].done:
            progress.committed = pending.popleft().end
        return progress.committed if progress.committed != before else None
