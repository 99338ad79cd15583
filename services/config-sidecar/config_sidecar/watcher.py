"""Watch the source DIRECTORY with inotify (watchdog's low-level API) and report relevant changes.

Why the directory and not the files: kubelet never touches the visible files
(they are symlinks through ``..data``); an update renames ``..data_tmp`` over
``..data``. A watch on ``app.yaml`` therefore reports nothing at all, while a
non-recursive watch on the directory reports exactly that move. The same watch
sees in-place edits and write-and-rename saves in a plain directory.

Why watchdog's ``InotifyFD`` and not its ``Observer``: the Observer's
``InotifyBuffer`` holds every ``IN_MOVED_FROM`` for up to 0.5 s to pair it with
its ``IN_MOVED_TO``, and when its reader thread picks up the ``..data_tmp`` half
before the ``..data`` half is queued it sleeps the whole 0.5 s although the pair
arrived in the same read. That was the p99 of the propagation benchmark (1 swap
in ~10 took ~515 ms). The sidecar needs no pairing: the ``IN_MOVED_TO`` on
``..data`` alone is the commit. ``InotifyFD`` is the layer below the buffer: one
thread reads the inotify fd and hands each raw event to its watch's callbacks as
soon as it is read.

Subdirectories of a plain source (compose's bind mount of ``./config`` with a
``mesh/`` directory) get a watch each, as inotify is not recursive: an edit in
``mesh/routes.yaml`` is reported like one at the top. They are (re)scanned only
after an event on a directory, never polled. A kubelet volume needs none: every
change, nested items included, arrives as the one ``..data`` swap at the top.

Open/close-without-write events are not subscribed: the sidecar's own reads
would otherwise wake it again, forever.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

from config_sidecar.source import DATA_LINK, NameFilter
from sidecar_common import visible_entries
from sidecar_common.inotify import InotifyUnavailableError, start_inotify, stop_inotify

if TYPE_CHECKING:
    from watchdog.observers.inotify_c import CallbackId, InotifyEvent, InotifyFD, WatchDescriptor

logger = logging.getLogger(__name__)

# The root's callback in our own InotifyFD; an id only has to be unique within its watch. Subdirectory
# watches take ids from 1 on, fresh for each watch, so a directory renamed to a new name (same inode,
# so the same watch) briefly holding two of our callbacks never replaces one.
_CALLBACK_ID = cast("CallbackId", 0)


def _add_watch(
    inotify: InotifyFD,
    directory: Path,
    callback: DirectoryWatcher,
    callback_id: CallbackId = _CALLBACK_ID,
    follow: bool = False,
) -> WatchDescriptor:
    """Watch ``directory`` for changes to its entries and its own removal; a symlink only when ``follow``."""
    from watchdog.observers.inotify_c import InotifyConstants as In
    from watchdog.observers.inotify_c import Mask

    mask = (
        In.IN_CREATE
        | In.IN_DELETE
        | In.IN_MODIFY
        | In.IN_MOVED_FROM
        | In.IN_MOVED_TO
        | In.IN_CLOSE_WRITE
        | In.IN_ATTRIB
        | In.IN_DELETE_SELF
        | In.IN_MOVE_SELF
        | In.IN_ONLYDIR
    )
    if not follow:
        mask |= In.IN_DONT_FOLLOW
    wd = inotify.add_callback(os.fsencode(directory), Mask(mask), callback, callback_id)
    if wd < 0:  # watchdog returns the failed -1 instead of raising for EACCES
        inotify.remove_callbacks([(wd, callback_id)])
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fspath(directory))
    return wd


@dataclass(frozen=True)
class _SubdirectoryWatch:
    """The watch on one subdirectory of a plain source, and the directory it was set on."""

    wd: WatchDescriptor
    callback_id: CallbackId
    identity: tuple[int, int]


class DirectoryWatcher:
    """Keep one inotify watch on ``directory``; re-establish it when the directory (re)appears.

    watchdog's reader thread calls ``on_change(commit)`` for each relevant event
    as soon as it is read. ``stop()`` is final. ``on_event``, ``on_watch_deleted``
    and ``on_queue_overflow`` are watchdog's callback protocol, called on its thread.
    """

    def __init__(self, directory: Path, name_filter: NameFilter, on_change: Callable[[bool], None]) -> None:
        self.directory = directory
        self.name_filter = name_filter
        self.on_change = on_change
        self._inotify: InotifyFD | None = None
        self._wd: WatchDescriptor | None = None
        self._identity: tuple[int, int] | None = None
        self._subdirectories: dict[str, _SubdirectoryWatch] = {}  # by relative path
        self._subdirectory_wds: frozenset[WatchDescriptor] = frozenset()  # read by watchdog's thread
        self._tree_changed = True  # a directory came or went: rescan subdirectories in ensure()
        self._next_callback_id = 1
        self._lost = False
        self._stopped = False
        self._unavailable_logged = False
        self._lock = threading.Lock()

    @property
    def watching(self) -> bool:
        return self._wd is not None

    def ensure(self) -> bool:
        """(Re)start watching if needed; return True when a new watch began (the caller should sync).

        Called every turn of the sync loop, so a source that appears late, or a
        directory replaced by a new one (new inode), gets watched within a turn;
        so does a new subdirectory, whose first files may have been written
        before its watch began.
        """
        with self._lock:
            if self._stopped:
                return False
            try:
                stat = os.stat(self.directory)
            except OSError:
                self._drop_watch()
                return False
            identity = (stat.st_dev, stat.st_ino)
            reader_alive = self._inotify is not None and self._inotify.is_alive()
            if self._wd is not None and identity == self._identity and reader_alive and not self._lost:
                return self._watch_subdirectories()
            self._drop_watch()
            try:
                if not reader_alive:
                    self._restart_reader()
                assert self._inotify is not None
                # A new watch first, then the identity: a swap in between is caught by the caller's sync.
                self._wd = _add_watch(self._inotify, self.directory, self)
            except InotifyUnavailableError as exc:
                if not self._unavailable_logged:
                    logger.warning("cannot watch %s, relying on the periodic re-hash: %s", self.directory, exc)
                    self._unavailable_logged = True
                return False
            except OSError as exc:  # e.g. ENOSPC: out of inotify watches; the periodic re-hash still works
                logger.warning("cannot watch %s, relying on the periodic re-hash: %s", self.directory, exc)
                return False
            self._identity = identity
            self._lost = False
            logger.info("watching %s", self.directory)
            self._watch_subdirectories()
            return True

    def stop(self) -> None:
        """Stop the reader thread and close the inotify fd; later ``ensure()`` calls do nothing."""
        with self._lock:
            self._stopped = True
            self._drop_watch()
            inotify, self._inotify = self._inotify, None
        stop_inotify(inotify, join_seconds=5)

    def on_event(self, event: InotifyEvent) -> None:
        """Report an event on a config name, on ``..data`` (a commit) or on a watched directory itself."""
        if event.wd in self._subdirectory_wds:
            self._on_subdirectory_event(event)
            return
        if event.wd != self._wd:
            return  # a watch dropped by ensure(): its last queued events say nothing about the source
        if event.is_delete_self or event.is_move_self:
            self._lose_watch()
            return
        name = os.fsdecode(event.name)
        if not self.name_filter.is_relevant(name):
            return
        if event.is_directory or name == DATA_LINK:
            self._tree_changed = True  # a subdirectory came or went, or the layout turned kubelet's
        # Kubelet's rename onto ..data publishes a complete set in one step (as does a symlink created
        # directly): no need to wait for quiet.
        commit = name == DATA_LINK and (event.is_moved_to or event.is_create)
        logger.debug("change event %r (commit: %s)", event, commit)
        self._report(commit)

    def on_watch_deleted(self, wd: WatchDescriptor) -> None:
        """The kernel dropped the watch (IN_IGNORED), e.g. with its directory: sync, watch again in ``ensure()``."""
        if wd == self._wd:
            self._lose_watch()
        elif wd in self._subdirectory_wds:
            self._tree_changed = True
            self._report(False)

    def _on_subdirectory_event(self, event: InotifyEvent) -> None:
        """A change inside a subdirectory of a plain source: never a commit (a plain write may be half done)."""
        if event.is_delete_self or event.is_move_self:
            self._tree_changed = True
            self._report(False)
            return
        name = os.fsdecode(event.name)
        if not self.name_filter.is_config(name):
            return
        if event.is_directory:
            self._tree_changed = True
        logger.debug("change event %r in a subdirectory", event)
        self._report(False)

    def on_queue_overflow(self) -> None:
        """Events were lost: only a full sync tells what changed."""
        logger.warning("inotify queue overflowed on %s: events lost, syncing", self.directory)
        self._report(False)

    def _lose_watch(self) -> None:
        # The watch no longer shows the source; a new directory may even get the same inode number,
        # so ensure() must not trust (dev, inode) alone. A bool store: safe from this thread without the lock.
        self._lost = True
        self._report(False)

    def _report(self, commit: bool) -> None:
        try:
            self.on_change(commit)
        except Exception:  # raised on watchdog's thread it would end it, and every later event with it
            logger.exception("handling an inotify event failed")

    def _restart_reader(self) -> None:
        """Start a reader, after releasing a previous one whose thread ended."""
        stop_inotify(self._inotify)
        self._inotify = None
        self._inotify = start_inotify("config-inotify")

    def _watch_subdirectories(self) -> bool:
        """Bring the subdirectory watches in line with the tree after a directory event; True if one began.

        Called with the lock held. Only a plain source has any: in a kubelet volume the
        visible ``conf.d`` is a link into the current version, which the next swap deletes.
        """
        if not self._tree_changed or self._inotify is None:
            return False
        self._tree_changed = False  # before scanning: an event during the scan asks for another one
        try:
            if (self.directory / DATA_LINK).is_symlink():
                wanted: dict[str, tuple[int, int]] = {}
            else:
                wanted = {}
                for name, entry in visible_entries(self.directory):
                    if entry.is_dir():
                        stat = entry.stat()
                        wanted[name] = (stat.st_dev, stat.st_ino)
        except OSError:
            self._tree_changed = True  # changing under the scan; the events that follow bring us back
            return False
        for name, watch in list(self._subdirectories.items()):
            if wanted.get(name) != watch.identity:
                del self._subdirectories[name]
                with contextlib.suppress(OSError):  # the kernel may have dropped it with its directory
                    self._inotify.remove_callbacks([(watch.wd, watch.callback_id)])
        began = False
        for name, identity in wanted.items():
            if name in self._subdirectories:
                continue
            callback_id = cast("CallbackId", self._next_callback_id)
            self._next_callback_id += 1
            try:
                wd = _add_watch(self._inotify, self.directory / name, self, callback_id, follow=True)
            except OSError as exc:  # gone already, or out of watches: the periodic re-hash still sees it
                logger.warning("cannot watch %s, relying on the periodic re-hash: %s", self.directory / name, exc)
                continue
            self._subdirectories[name] = _SubdirectoryWatch(wd, callback_id, identity)
            logger.debug("watching subdirectory %s", name)
            began = True
        self._subdirectory_wds = frozenset(watch.wd for watch in self._subdirectories.values())
        return began

    def _drop_watch(self) -> None:
        # Forget the watches before removing them, so events of the old ones still queued are ignored.
        wd, self._wd, self._identity = self._wd, None, None
        subdirectories, self._subdirectories = self._subdirectories, {}
        self._subdirectory_wds = frozenset()
        self._tree_changed = True  # a new root watch rescans its subdirectories
        if self._inotify is None:
            return
        callbacks = [(watch.wd, watch.callback_id) for watch in subdirectories.values()]
        if wd is not None:
            callbacks.append((wd, _CALLBACK_ID))
        for callback in callbacks:
            with contextlib.suppress(OSError):  # the reader's fd may be gone with a dead thread
                self._inotify.remove_callbacks([callback])
