"""This worker's config snapshot: the set the last reload accepted, or else the config directory.

``POST /-/reload`` loads the directory; only a set where every file parses replaces
the one in service, and it is saved as the accepted set (shared_dir.py). Each
worker, at the start of every request, compares one stat of that file with what
it loaded and, if it changed, loads the accepted set: so the first answer of
every worker after a reload returned already has the new version, and no worker
ever serves a newer or broken directory that no reload accepted. Before the
first reload a worker serves what it loaded at start; while it has nothing (the
config sidecar has not published yet), it watches the directory: one
``readlink`` of ``..data`` per request, and a set that failed is read again only
once it changed, so a bad config costs one load, not one per request.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from demo_app.config_snapshot import ConfigError, ConfigMissingError, ConfigSnapshot, load_snapshot, parse_snapshot
from demo_app.shared_dir import SharedDir
from demo_app.statsd import StatsdClient

logger = logging.getLogger(__name__)

Signature = tuple[object, ...]
NEVER_LOADED: Signature = ("never",)


@dataclass(frozen=True)
class ReloadResult:
    snapshot: ConfigSnapshot
    previous_version: str | None
    changed: bool


def directory_signature(directory: Path) -> Signature:
    """What changes when a new set is published: the ``..data`` target (kubelet, the config sidecar), else the dir."""
    try:
        return ("directory", os.readlink(directory / "..data"))
    except OSError:
        pass
    try:
        status = os.stat(directory)
    except OSError:
        return ("directory", "missing")
    return ("directory", status.st_ino, status.st_mtime_ns)


class LiveConfig:
    """``current()`` is the snapshot a request uses; ``reload()`` loads the directory and accepts it."""

    def __init__(self, directory: Path, shared: SharedDir, statsd: StatsdClient) -> None:
        self.directory = directory
        self._shared = shared
        self._statsd = statsd
        self._lock = threading.Lock()
        # What the snapshot was loaded from, and the snapshot, replaced as ONE reference: a request
        # reading them without the lock must never pair a new signature with an old snapshot.
        self._served: tuple[Signature, ConfigSnapshot | None] = (NEVER_LOADED, None)
        self.last_error: ConfigError | None = None

    def current(self) -> ConfigSnapshot | None:
        """The snapshot to serve, loaded first if a reload accepted a new set since."""
        seen, snapshot = self._served
        if self._source(seen, snapshot) == seen:
            return snapshot
        with self._lock:
            seen, snapshot = self._served
            source = self._source(seen, snapshot)
            if source == seen:
                return snapshot  # another thread of this worker loaded it meanwhile
            try:
                if source[0] == "accepted":
                    loaded = parse_snapshot(self._shared.read_accepted())
                else:
                    loaded = load_snapshot(self.directory)
            except ConfigError as exc:
                self._served = (source, snapshot)  # not read again until it changes
                self._load_failed(exc, snapshot)
                return snapshot
            self._adopt(source, loaded, "config-loaded")
            return self._served[1]

    def _source(self, seen: Signature, snapshot: ConfigSnapshot | None) -> Signature:
        """The set the last reload accepted; before the first reload, the one this worker loaded
        first (the directory is watched only while the worker has none: then a reload decides)."""
        accepted = self._shared.accepted_signature()
        if accepted is not None:
            return ("accepted", *accepted)
        return seen if snapshot is not None else directory_signature(self.directory)

    def reload(self) -> ReloadResult:
        """Load the directory now and make it the set every worker serves; raise ConfigError to refuse it."""
        with self._shared.reload_lock():
            previous = self.current()
            previous_version = previous.version if previous else None
            try:
                snapshot = load_snapshot(self.directory)
            except ConfigError as exc:
                self._shared.count_reload("refused")
                self._statsd.increment("app.config.reloads", tags={"result": "refused"})
                self.last_error = exc
                logger.warning(
                    "config refused, keeping version %s: %s",
                    previous_version,
                    exc.detail,
                    extra={
                        "event.action": "config-refused",
                        "config.version": previous_version,
                        "error.message": exc.detail,
                    },
                )
                raise
            accepted = self._shared.accept(snapshot.files)
            self._shared.count_reload("ok")
            with self._lock:
                self._adopt(("accepted", *accepted), snapshot, "config-reloaded")
        self._statsd.increment("app.config.reloads", tags={"result": "ok"})
        current = self._served[1]
        assert current is not None  # _adopt just set it
        return ReloadResult(current, previous_version, changed=previous_version != current.version)

    def _adopt(self, signature: Signature, snapshot: ConfigSnapshot, action: str) -> None:
        """Serve ``snapshot`` from now on; keep the old object (and its loaded_at) if the version is the same."""
        previous = self._served[1]
        self.last_error = None
        if previous is not None and previous.version == snapshot.version:
            self._served = (signature, previous)
            return
        self._served = (signature, snapshot)
        logger.info(
            "config %s loaded (was %s)",
            snapshot.version,
            previous.version if previous else None,
            extra={
                "event.action": action,
                "config.version": snapshot.version,
                "config.previous_version": previous.version if previous else None,
                "config.source": signature[0],
                "config.files": sorted([*snapshot.documents, *snapshot.other_files]),
            },
        )

    def _load_failed(self, exc: ConfigError, current: ConfigSnapshot | None) -> None:
        self.last_error = exc
        if isinstance(exc, ConfigMissingError) and current is None:
            logger.info(
                "waiting for config in %s: %s",
                self.directory,
                exc.detail,
                extra={"event.action": "config-waiting", "error.message": exc.detail},
            )
            return
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
