"""This worker's current config snapshot, kept in step with reloads made by any worker.

A reload (``POST /-/reload``) loads the directory, and only if every file parses does
the new snapshot replace the current one; its file set is then published on the reload
board. Every other worker notices the board's generation move at the start of its next
request and builds the same snapshot from the published bytes (see reload_board.py for
why this design). Before the first reload, workers load the directory themselves.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from demo_app.config_snapshot import (
    ConfigError,
    ConfigInvalidError,
    ConfigMissingError,
    ConfigSnapshot,
    load_snapshot,
    parse_snapshot,
)
from demo_app.reload_board import PayloadTooLargeError, ReloadBoard
from demo_app.statsd import StatsdClient

logger = logging.getLogger(__name__)

# How often a worker without a usable snapshot (or behind the board) re-reads the directory:
# cheap enough for every request, rare enough not to hammer the disk.
RETRY_SECONDS = 0.2
# How often an idle worker looks at the board on its own (requests look on arrival anyway).
FOLLOW_SECONDS = 0.5


@dataclass(frozen=True)
class ReloadResult:
    snapshot: ConfigSnapshot
    previous_version: str | None
    changed: bool


@dataclass(frozen=True)
class Follower:
    """The background thread of ``LiveConfig.follow_in_background``."""

    stop_event: threading.Event
    thread: threading.Thread

    def stop(self, timeout: float = 5.0) -> None:
        self.stop_event.set()
        self.thread.join(timeout)


class LiveConfig:
    """Hold the current snapshot; ``sync`` follows the board, ``reload`` loads and publishes."""

    def __init__(
        self,
        directory: Path,
        board: ReloadBoard,
        statsd: StatsdClient,
        clock: Callable[[], float] = time.monotonic,
        retry_seconds: float = RETRY_SECONDS,
    ) -> None:
        self.directory = directory
        self._board = board
        self._statsd = statsd
        self._clock = clock
        self._retry_seconds = retry_seconds
        self._lock = threading.Lock()
        # The snapshot served and the board generation it reflects, replaced as ONE reference: a
        # request reading them without the lock must never pair a new generation with an old snapshot.
        self._served: tuple[int, ConfigSnapshot | None] = (-1, None)
        # The generation a load last failed at, retried only after ``retry_seconds``.
        self._failed_generation: int | None = None
        self._next_attempt = 0.0
        self._last_problem: str | None = None
        self.last_error: ConfigError | None = None

    @property
    def current(self) -> ConfigSnapshot | None:
        return self._served[1]

    def sync(self, generation: int) -> ConfigSnapshot | None:
        """Return the snapshot to serve, first loading the directory if the board moved past us.

        Called at the start of every request with the board's generation; the common
        case (nothing changed) takes no lock and reads no file.
        """
        seen, current = self._served
        if current is not None and generation == seen:
            return current
        with self._lock:
            seen, current = self._served
            if current is not None and generation == seen:
                return current  # another thread of this worker caught up meanwhile
            # After a failed load, wait before reading the directory again, unless the board moved
            # since: then another worker published a set, and it must be served at once.
            if generation == self._failed_generation and self._clock() < self._next_attempt:
                return current
            try:
                snapshot, loaded_generation = self._load_served_set()
            except ConfigError as exc:
                self._failed_generation = generation
                self._next_attempt = self._clock() + self._retry_seconds
                self._note_problem(exc)
                return current
            self._failed_generation = None
            self._adopt(snapshot, loaded_generation, "config-followed" if current else "config-loaded")
            return self._served[1]

    def follow_in_background(self, interval: float = FOLLOW_SECONDS) -> Follower:
        """Also check the board every ``interval`` seconds, so an idle worker converges too.

        Requests already check on arrival; this keeps ``/stats`` (each worker's version) true
        for workers that get no traffic.
        """
        stop = threading.Event()

        def follow() -> None:
            while not stop.wait(interval):
                try:
                    self.sync(self._board.published().generation)
                except Exception:  # the thread must outlive any one failure
                    logger.exception("config follower failed", extra={"event.action": "config-follow-failed"})

        thread = threading.Thread(target=follow, name="config-follower", daemon=True)
        thread.start()
        return Follower(stop, thread)

    def _load_served_set(self) -> tuple[ConfigSnapshot, int]:
        """The set every worker must serve: the last published one, or the directory before any reload."""
        published = self._board.published_set()
        if published.version is not None:
            return parse_snapshot(published.files), published.generation
        return load_snapshot(self.directory), published.generation

    def reload(self) -> ReloadResult:
        """Load the directory now and publish it to every worker; raise ConfigError to refuse it."""
        with self._board.serialize_reloads():
            previous = self.current
            try:
                snapshot = load_snapshot(self.directory)
                with self._lock:
                    generation = self._publish(snapshot)
                    self._adopt(snapshot, generation, "config-reloaded")
                    current = self.current
            except ConfigError as exc:
                self._board.count_reload(ok=False)
                self._statsd.increment("app.config.reloads", tags={"result": "refused"})
                self.last_error = exc
                logger.warning(
                    "config refused, keeping version %s: %s",
                    previous.version if previous else None,
                    exc.detail,
                    extra={
                        "event.action": "config-refused",
                        "config.version": previous.version if previous else None,
                        "error.message": exc.detail,
                    },
                )
                raise
            assert current is not None  # _adopt always sets it
            self._board.count_reload(ok=True)
            self._statsd.increment("app.config.reloads", tags={"result": "ok"})
            previous_version = previous.version if previous else None
            return ReloadResult(current, previous_version, changed=previous_version != current.version)

    def _publish(self, snapshot: ConfigSnapshot) -> int:
        try:
            return self._board.publish(snapshot.version, snapshot.files)
        except PayloadTooLargeError as exc:
            raise ConfigInvalidError(str(self.directory), str(exc)) from None

    def _adopt(self, snapshot: ConfigSnapshot, generation: int, action: str) -> None:
        """Serve ``snapshot`` from now on (keeping the old object, and its loaded_at, if unchanged)."""
        previous = self.current
        self._last_problem = None
        self.last_error = None
        if previous is not None and previous.version == snapshot.version:
            self._served = (generation, previous)
            return
        self._served = (generation, snapshot)
        self._board.set_worker_version(os.getpid(), snapshot.version)
        published = self._board.published().version
        logger.info(
            "config %s loaded (was %s)",
            snapshot.version,
            previous.version if previous else None,
            extra={
                "event.action": action,
                "config.version": snapshot.version,
                "config.previous_version": previous.version if previous else None,
                "config.published_version": published,
                "config.files": sorted([*snapshot.documents, *snapshot.other_files]),
            },
        )

    def _note_problem(self, exc: ConfigError) -> None:
        """Log a load failure once per distinct problem, not on every retry."""
        self.last_error = exc
        if exc.detail == self._last_problem:
            return
        self._last_problem = exc.detail
        current = self.current
        if isinstance(exc, ConfigMissingError) and current is None:
            logger.info(
                "waiting for config in %s: %s",
                self.directory,
                exc.detail,
                extra={"event.action": "config-waiting", "error.message": exc.detail},
            )
        else:
            logger.warning(
                "cannot load config from %s, still serving %s: %s",
                self.directory,
                current.version if current else None,
                exc.detail,
                extra={
                    "event.action": "config-load-failed",
                    "config.version": current.version if current else None,
                    "error.message": exc.detail,
                },
            )
