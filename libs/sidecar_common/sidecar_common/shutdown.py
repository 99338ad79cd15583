"""Graceful shutdown the uvicorn way: the signal handler only sets an Event."""

from __future__ import annotations

import logging
import os
import signal
import threading
from types import FrameType

logger = logging.getLogger(__name__)

# The exit code of a forced stop, as a shell reports a process ended by SIGINT.
FORCED_EXIT = 130


class GracefulShutdown:
    """Turn SIGTERM/SIGINT into ``stop.set()``; a second signal exits at once.

    Loops wait with ``stop.wait(interval)`` so they wake immediately. Install
    from ``main()`` only (never at import time).
    """

    def __init__(self, stop: threading.Event | None = None) -> None:
        self.stop = stop or threading.Event()
        self.signal_name: str | None = None

    def install(self, signals: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGINT)) -> None:
        for sig in signals:
            signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.stop.is_set():
            logger.warning("second %s: exiting now", name)
            os._exit(FORCED_EXIT)
        # Set first: a second signal arriving while we log must count as the second.
        self.stop.set()
        self.signal_name = name
        logger.info("%s received: shutting down", name)
