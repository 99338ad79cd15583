"""Coalesce a burst of change events into few syncs: a quiet period, bounded by a maximum wait.

Two kinds of events. An ordinary one (a file written in a plain directory) may
be the first of several writes, so the sync waits for a quiet period: reading
too early would catch a half-saved file. A *commit* (kubelet renaming
``..data_tmp`` over ``..data``) is complete by construction, so the first
commit after a quiet spell syncs at once (leading edge); commits that follow
within the quiet period are coalesced like ordinary events (trailing edge), so
a burst of swaps still costs two syncs, not one per swap.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class Debouncer:
    """Collect ``poke()`` calls from the watch thread; ``wait()`` returns once a burst is due.

    A burst is due when no poke came for ``quiet`` seconds, at the latest
    ``max_wait`` seconds after its first poke (so a steady trickle of events, an
    editor autosaving, is still synced), or at once for a leading-edge commit.
    """

    def __init__(self, quiet: float, max_wait: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.quiet = quiet
        self.max_wait = max_wait
        self._clock = clock
        self._cond = threading.Condition()
        self._first: float | None = None
        self._last = 0.0
        self._now_due = False
        self._last_taken: float | None = None
        self._closed = False

    def poke(self, commit: bool = False) -> None:
        """Note a change event now (thread-safe); ``commit`` for an atomic, complete update."""
        with self._cond:
            now = self._clock()
            if self._first is None:
                self._first = now
            self._last = now
            if commit and (self._last_taken is None or now - self._last_taken >= self.quiet):
                self._now_due = True
            self._cond.notify_all()

    def close(self) -> None:
        """Wake a waiting ``wait()`` for shutdown."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def pending(self) -> bool:
        with self._cond:
            return self._first is not None

    def wait(self, timeout: float) -> float | None:
        """Block until a burst is due or ``timeout`` passes; return the burst's first-event time.

        Returns None on timeout or close. The returned time (same clock) lets the
        caller measure change-detected -> applied latency from the first event.
        """
        deadline = self._clock() + timeout
        with self._cond:
            while not self._closed:
                now = self._clock()
                if self._first is not None:
                    due = now if self._now_due else min(self._last + self.quiet, self._first + self.max_wait)
                    if now >= due:
                        first, self._first, self._now_due = self._first, None, False
                        self._last_taken = now
                        return first
                    wake = min(due, deadline)
                else:
                    wake = deadline
                if now >= deadline:
                    return None
                self._cond.wait(wake - now)
            return None
