"""Liveness that cannot lie: the worker loop itself must beat, or /livez turns red."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

# The one liveness rule of every sidecar: a worker is dead after this many of its own beats are missed.
MISSED_BEATS = 3


class Heartbeat:
    """A timestamp the worker thread refreshes at least every ``interval`` seconds.

    ``alive()`` is false once ``MISSED_BEATS`` intervals pass without a beat, so a hung
    or dead thread fails the liveness probe instead of staying green. The interval is
    the worker's own promise: a loop that may block up to N seconds (a sink request with
    an N-second timeout) declares N.
    """

    def __init__(self, name: str, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        if interval <= 0:
            raise ValueError(f"heartbeat {name}: interval must be > 0, got {interval}")
        self.name = name
        self.interval = interval
        self.max_age = MISSED_BEATS * interval
        self._clock = clock
        self._last: float | None = None
        self._lock = threading.Lock()

    def beat(self) -> None:
        with self._lock:
            self._last = self._clock()

    def age(self) -> float | None:
        """Seconds since the last beat, or None before the first one."""
        with self._lock:
            return None if self._last is None else self._clock() - self._last

    def alive(self) -> bool:
        age = self.age()
        return age is not None and age <= self.max_age
