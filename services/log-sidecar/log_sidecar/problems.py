"""Bad input is counted and logged, never fatal, and never floods the sidecar's own log."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

logger = logging.getLogger(__name__)


class BadInputReporter:
    """Count every bad record by reason; log the first one and then at most one per ``interval`` per reason."""

    def __init__(
        self,
        count: Callable[[str], None],
        interval: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._count = count
        self._interval = interval
        self._clock = clock
        self._last_logged: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}
        self._lock = threading.Lock()

    def report(self, reason: str, path: str, offset: int, detail: str = "") -> None:
        self._count(reason)
        now = self._clock()
        with self._lock:
            last = self._last_logged.get(reason)
            if last is not None and now - last < self._interval:
                self._suppressed[reason] = self._suppressed.get(reason, 0) + 1
                return
            suppressed = self._suppressed.pop(reason, 0)
            self._last_logged[reason] = now
        logger.warning(
            "bad input in %s at offset %d: %s",
            path,
            offset,
            reason,
            extra={
                "reason": reason,
                "file": path,
                "offset": offset,
                "detail": detail,
                "similar_not_logged": suppressed,
            },
        )
