"""Liveness that cannot lie: the worker loop itself must beat, or /livez turns red."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class Heartbeat:
    """A timestamp the worker thread refreshes each turn of its loop.

    ``alive()`` is false once ``max_age`` seconds pass without a beat, so a hung
    or dead thread fails the liveness probe instead of staying green.
    """

    def __init__(self, name: str, max_age: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.max_age = max_age
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
