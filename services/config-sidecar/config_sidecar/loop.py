"""The watcher thread: sync on settled change events and on the periodic re-hash; beat every turn.

The heartbeat is beaten by this loop itself, between syncs, so a loop that died
or hangs in a sync stops beating and ``/livez`` turns red (k8s-sidecar's health
stayed green for eight hours while its watch was dead, #621).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from config_sidecar.debounce import Debouncer
from config_sidecar.sync import Syncer, SyncResult
from config_sidecar.watcher import DirectoryWatcher
from sidecar_common import Heartbeat

logger = logging.getLogger(__name__)

MISSING_SOURCE_RETRY = 1.0  # seconds until a failed pass (source missing, target unwritable) is retried


class SyncLoop:
    """Wait for a debounced change or the resync deadline, whichever comes first, then sync."""

    def __init__(
        self,
        syncer: Syncer,
        debouncer: Debouncer,
        watcher: DirectoryWatcher | None,
        heartbeat: Heartbeat,
        resync_seconds: float,
        beat_interval: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.syncer = syncer
        self.debouncer = debouncer
        self.watcher = watcher
        self.heartbeat = heartbeat
        self.resync_seconds = resync_seconds
        self.beat_interval = beat_interval
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def thread(self) -> threading.Thread | None:
        return self._thread

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="config-watcher", daemon=True)
        self._thread.start()

    def close(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self.debouncer.close()
        if self._thread is not None:
            self._thread.join(timeout)

    def run(self) -> None:
        """Thread body; returns only on close()."""
        next_resync = self._clock()  # the first pass runs at once
        trigger = "start"
        while not self._stop.is_set():
            self.heartbeat.beat()
            if self.watcher is not None and self.watcher.ensure():
                next_resync = self._clock()  # events before the watch began were missed: re-hash now
            now = self._clock()
            if now >= next_resync:
                result = self._sync(trigger, now)
                trigger = "resync"
                retry = MISSING_SOURCE_RETRY if result is SyncResult.ERROR else self.resync_seconds
                next_resync = self._clock() + min(retry, self.resync_seconds)
                continue
            detected_at = self.debouncer.wait(min(next_resync - now, self.beat_interval))
            if detected_at is None or self._stop.is_set():
                continue
            if self._sync("event", detected_at) is SyncResult.ERROR:
                # A read that lost a race or a full target: retry soon, not only at the next re-hash.
                next_resync = min(next_resync, self._clock() + MISSING_SOURCE_RETRY)

    def _sync(self, trigger: str, detected_at: float) -> SyncResult:
        try:
            return self.syncer.sync(trigger, detected_at)
        except Exception as exc:  # a bug in one pass must not kill the watcher; the next pass retries
            logger.exception("sync pass failed unexpectedly")
            self.syncer.state.record_error("sync", f"unexpected {type(exc).__name__} (see the log)")
            self.syncer.state.record_synced(SyncResult.ERROR)
            return SyncResult.ERROR
