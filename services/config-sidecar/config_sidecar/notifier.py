"""Tell the app about a new version and keep at it until the newest one is acknowledged.

configmap-reload sends one request with no timeout and forgets it, so a reload
sent while the app is still starting is lost (configmap-reload #7). Here the
newest published version stays pending until the app acknowledges exactly that
version; a failure retries with exponential backoff and jitter; a newer version
replaces a pending one, so only the newest is ever sent.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from config_sidecar.status import SyncState
from sidecar_common import Backoff, Heartbeat

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReloadRequest:
    """A version to make the app apply; ``detected_at`` (monotonic) times the propagation."""

    version: str
    changed: tuple[str, ...] = ()
    detected_at: float | None = None


class ReloadError(Exception):
    """The app could not be reached or did not acknowledge; ``reason`` is shown in /status."""

    def __init__(self, reason: str, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class Reloader(Protocol):
    """One way of telling the app (HTTP POST, a signal); returns the version the app now runs."""

    def reload(self, request: ReloadRequest) -> str: ...

    def describe(self) -> str: ...


class ReloadNotifier:
    """A thread that delivers the newest :class:`ReloadRequest` until it is acknowledged."""

    def __init__(
        self,
        reloader: Reloader,
        state: SyncState,
        backoff: Backoff,
        heartbeat: Heartbeat,
        beat_interval: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.reloader = reloader
        self.state = state
        self.backoff = backoff
        self.heartbeat = heartbeat
        self.beat_interval = beat_interval
        self._clock = clock
        self._lock = threading.Lock()
        self._pending: ReloadRequest | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def submit(self, request: ReloadRequest) -> None:
        """Make ``request`` the one to deliver, replacing any older pending version."""
        with self._lock:
            self._pending = request
            # Under the lock, so /status cannot show "nothing pending" after this request (see deliver).
            self.state.record_reload_pending(request.version)
        self._wake.set()

    def pending(self) -> ReloadRequest | None:
        with self._lock:
            return self._pending

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="reload-notifier", daemon=True)
        self._thread.start()

    def close(self, timeout: float = 5.0) -> None:
        """Stop retrying (a pending version stays unacknowledged: the next start sends it again)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def run(self) -> None:
        """Thread body: wait for a pending version, deliver it, back off on failure."""
        while not self._stop.is_set():
            self.heartbeat.beat()
            self._wake.clear()
            request = self.pending()
            if request is None:
                self._wake.wait(self.beat_interval)
                continue
            try:
                self.deliver(request)
            except ReloadError as exc:
                self.state.record_reload_failure(request.version, exc.reason)
                delay = self.backoff.next_delay()
                logger.warning(
                    "reload of %s failed, retrying in %.2fs: %s",
                    request.version,
                    delay,
                    exc.reason,
                    extra={"version": request.version, "retry_in": round(delay, 3), "via": self.reloader.describe()},
                )
                self._sleep(delay, request)
            except Exception:  # a bug must not end the thread: the reload stays pending
                logger.exception("reload notifier failed unexpectedly")
                self._sleep(self.backoff.next_delay(), request)

    def deliver(self, request: ReloadRequest) -> None:
        """Send ``request`` once; on acknowledgement mark it applied, else raise ReloadError."""
        self.state.record_reload_attempt()
        acknowledged = self.reloader.reload(request)
        with self._lock:
            newest = self._pending
            # The app may already run a newer version published while this request was in flight.
            done = acknowledged == request.version or (newest is not None and acknowledged == newest.version)
            matched = newest if newest is not None and acknowledged == newest.version else request
            if done and self._pending is matched:
                self._pending = None
                self.state.record_reload_pending(None)
        if not done:
            raise ReloadError(f"app acknowledged version {acknowledged!r}, expected {request.version!r}")
        self.backoff.reset()
        latency = None if matched.detected_at is None else self._clock() - matched.detected_at
        self.state.record_applied(matched.version, latency)
        logger.info(
            "app applied %s",
            matched.version,
            extra={
                "version": matched.version,
                "changed": list(matched.changed),
                "propagation_seconds": None if latency is None else round(latency, 4),
            },
        )

    def _sleep(self, delay: float, failed: ReloadRequest) -> None:
        """Wait out the backoff of ``failed``, still beating; end early on shutdown or a newer version.

        The backoff belongs to the version that failed: a newer one (say, the fix
        for a config the app refused) goes out at once, its own retries from the start.
        """
        deadline = self._clock() + delay
        while not self._stop.is_set():
            if self.pending() is not failed:
                self.backoff.reset()
                return
            remaining = deadline - self._clock()
            if remaining <= 0:
                return
            self._wake.wait(min(remaining, self.beat_interval))
            self._wake.clear()  # before the pending() check above, so a submit in between is not missed
            self.heartbeat.beat()
