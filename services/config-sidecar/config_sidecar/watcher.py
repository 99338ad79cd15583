"""Watch the source DIRECTORY with inotify (watchdog) and report relevant changes.

Why the directory and not the files: kubelet never touches the visible files
(they are symlinks through ``..data``); an update renames ``..data_tmp`` over
``..data``. A watch on ``app.yaml`` therefore reports nothing at all, while a
non-recursive watch on the directory reports exactly that move. The same watch
sees in-place edits and write-and-rename saves in a plain directory.

Open/close-without-write events are not subscribed: the sidecar's own reads
would otherwise wake it again, forever.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileAttribEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver, ObservedWatch

from config_sidecar.source import DATA_LINK, NameFilter

logger = logging.getLogger(__name__)

WATCHED_EVENTS: list[type[FileSystemEvent]] = [
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileClosedEvent,
    FileAttribEvent,
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
]


class _Forwarder(FileSystemEventHandler):
    """Report events on config names, on ``..data`` (a commit) or on the directory itself."""

    def __init__(
        self,
        directory: str,
        name_filter: NameFilter,
        on_change: Callable[[bool], None],
        on_lost: Callable[[], None],
    ) -> None:
        self.directory = directory
        self.name_filter = name_filter
        self.on_change = on_change
        self.on_lost = on_lost

    def on_any_event(self, event: FileSystemEvent) -> None:
        relevant = False
        for raw in (event.src_path, event.dest_path):
            path = os.fsdecode(raw)
            if not path:
                continue
            if path == self.directory:  # the directory itself was deleted or moved away
                if event.event_type == "deleted":
                    # The kernel dropped the watch with the directory; a new directory may even get
                    # the same inode number, so the watcher must not trust (dev, inode) alone.
                    self.on_lost()
                relevant = True
                continue
            parent, name = os.path.split(path)
            if parent == self.directory and self.name_filter.is_relevant(name):
                relevant = True
        if relevant:
            # Kubelet's rename onto ..data publishes a complete set in one step: no need to wait for quiet.
            commit = os.path.basename(os.fsdecode(event.dest_path or event.src_path)) == DATA_LINK
            logger.debug("change event %s (commit: %s)", event.event_type, commit)
            self.on_change(commit)


class DirectoryWatcher:
    """Keep one inotify watch on ``directory``; re-establish it when the directory (re)appears."""

    def __init__(
        self,
        directory: Path,
        name_filter: NameFilter,
        on_change: Callable[[bool], None],
        observer_factory: Callable[[], BaseObserver] = Observer,
    ) -> None:
        self.directory = directory
        # Absolute, because event paths are reported as the watch was scheduled and the handler compares them.
        self._path = os.fspath(directory.absolute())
        self._handler = _Forwarder(self._path, name_filter, on_change, self._mark_lost)
        self._lost = False
        self._observer_factory = observer_factory
        self._observer: BaseObserver | None = None
        self._watch: ObservedWatch | None = None
        self._identity: tuple[int, int] | None = None
        self._lock = threading.Lock()

    @property
    def watching(self) -> bool:
        return self._watch is not None

    def ensure(self) -> bool:
        """(Re)start watching if needed; return True when a new watch began (the caller should sync).

        Called every turn of the sync loop, so a source that appears late, or a
        directory replaced by a new one (new inode), gets watched within a turn.
        """
        with self._lock:
            try:
                stat = os.stat(self.directory)
            except OSError:
                self._drop_watch()
                return False
            identity = (stat.st_dev, stat.st_ino)
            observer_alive = self._observer is not None and self._observer.is_alive()
            if self._watch is not None and identity == self._identity and observer_alive and not self._lost:
                return False
            self._drop_watch()
            if not observer_alive:
                self._observer = self._observer_factory()
                self._observer.daemon = True
                self._observer.start()
            assert self._observer is not None
            try:
                self._watch = self._observer.schedule(
                    self._handler, self._path, recursive=False, event_filter=WATCHED_EVENTS
                )
            except OSError as exc:  # e.g. ENOSPC: out of inotify watches; the periodic re-hash still works
                logger.warning("cannot watch %s, relying on the periodic re-hash: %s", self.directory, exc)
                return False
            self._identity = identity
            self._lost = False
            logger.info("watching %s", self.directory)
            return True

    def _mark_lost(self) -> None:
        self._lost = True  # a bool store: safe from the observer thread without the lock

    def stop(self) -> None:
        with self._lock:
            self._drop_watch()
            if self._observer is not None:
                self._observer.stop()
                self._observer.join(timeout=5)
                self._observer = None

    def _drop_watch(self) -> None:
        if self._watch is not None and self._observer is not None:
            with contextlib.suppress(KeyError, OSError):  # the watch may have died with its directory
                self._observer.unschedule(self._watch)
        self._watch = None
        self._identity = None
