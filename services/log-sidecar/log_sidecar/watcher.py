"""Notice new log files the moment they appear: inotify on the directories LOG_PATHS can match in.

Why: the re-glob runs every LOG_SCAN_INTERVAL_SECONDS, and an app that writes a
file and rotates it away by rename (out of the glob) before the next scan loses
that file for good. The log sidecar starts before the app, so the app's first
file always appears after the first scan.

How: watchdog's low-level ``InotifyFD`` (as the config sidecar's watcher.py uses
it; its ``Observer`` holds moves back to pair them) watches each directory from
``discovery.watch_targets``. On ``IN_CREATE`` or ``IN_MOVED_TO`` of a matching
name the file is opened right here, on watchdog's thread, and the open
descriptor is handed to the tailer: from then on a rename cannot hide it (the
tailer follows a renamed-away file by its descriptor for LOG_ROTATE_WAIT_SECONDS).
If the file was renamed before we could open it, the ``IN_MOVED_FROM`` /
``IN_MOVED_TO`` pair (same cookie) gives its new name in a watched directory,
and it is opened there, reported under the name it was matched by. A directory
that comes or goes on the way to matched files re-plans the watches; files
already in a newly watched directory are opened too (they may predate its
watch). Overflow and lost watches ask for a re-glob, which stays the safety net
(as does ``ensure()``, called at every periodic scan).

Open/close/modify events are not subscribed: the sidecar's own reads and the
app's writes would wake us for nothing.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import logging
import os
import stat
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from log_sidecar import discovery
from log_sidecar.discovery import WatchTarget
from sidecar_common.inotify import start_inotify, stop_inotify

if TYPE_CHECKING:
    from watchdog.observers.inotify_c import CallbackId, InotifyEvent, InotifyFD, Mask, WatchDescriptor

logger = logging.getLogger(__name__)

# Moves out of a matching name waiting for their IN_MOVED_TO half (same cookie); a move to an
# unwatched directory never gets one, so the oldest are forgotten past this many.
MAX_PENDING_MOVES = 256

# Most rounds of planning and watching per sync: a tree being created under our feet settles in a few.
SYNC_ROUNDS = 16

Arrived = Callable[[str, int], None]


def _watch_mask() -> Mask:
    from watchdog.observers.inotify_c import InotifyConstants as In
    from watchdog.observers.inotify_c import Mask

    # Directories are followed through symlinks, as glob follows them.
    return Mask(
        In.IN_CREATE
        | In.IN_MOVED_FROM
        | In.IN_MOVED_TO
        | In.IN_DELETE
        | In.IN_DELETE_SELF
        | In.IN_MOVE_SELF
        | In.IN_ONLYDIR
    )


@dataclass(eq=False)
class _Watch:
    """Our callback on one watched directory (watchdog calls it on its reader thread)."""

    watcher: DirectoryWatcher
    target: WatchTarget
    identity: tuple[int, int]
    callback_id: CallbackId
    wd: WatchDescriptor | None = None
    active: bool = True  # False once removed or dropped by the kernel: late events are ignored

    def on_event(self, event: InotifyEvent) -> None:
        if self.active:
            self.watcher._on_event(self, event)

    def on_watch_deleted(self, wd: WatchDescriptor) -> None:
        if self.active:
            self.active = False
            self.watcher._replan("a watched directory went away")

    def on_queue_overflow(self) -> None:
        self.watcher._overflow()


class DirectoryWatcher:
    """Watch the directories LOG_PATHS can match in; hand each new matching file over, opened.

    ``arrived(path, fd)`` receives a new file's descriptor (the receiver owns it) and the path
    LOG_PATHS matched it by; ``rescan()`` asks for a re-glob (rotation, deletion, lost events).
    Both are called on watchdog's thread and must only queue work. Built without side effects;
    ``start()`` begins watching, ``ensure()`` repairs, ``stop()`` is final.
    """

    def __init__(self, patterns: Sequence[str], arrived: Arrived, rescan: Callable[[], None]) -> None:
        self.patterns = tuple(patterns)
        self._arrived = arrived
        self._rescan = rescan
        self._inotify: InotifyFD | None = None
        self._watches: dict[str, _Watch] = {}
        self._moves: OrderedDict[int, str] = OrderedDict()  # cookie -> path moved away from (watchdog's thread)
        self._next_callback_id = 0
        self._lock = threading.Lock()
        self._started = False
        self._stopped = False
        self._unavailable_logged = False  # no inotify: said once, then the re-glob alone finds files
        self._failed_paths: set[str] = set()  # watches that failed, logged once each

    @property
    def watched(self) -> list[str]:
        """The directories watched now."""
        with self._lock:
            return sorted(path for path, watch in self._watches.items() if watch.active)

    def start(self) -> None:
        """Watch every directory LOG_PATHS can match in (files already there are the first scan's)."""
        with self._lock:
            self._started = True
            self._sync(open_existing=False)

    def ensure(self) -> None:
        """Bring the watches in line with the file system: the periodic safety net (a lost watch, a dead reader)."""
        with self._lock:
            if self._started:
                self._sync(open_existing=True)

    def stop(self) -> None:
        """Stop the reader thread and close the inotify descriptor; later calls do nothing."""
        with self._lock:
            self._stopped = True
            for watch in self._watches.values():
                watch.active = False
            self._watches = {}
            inotify, self._inotify = self._inotify, None
        stop_inotify(inotify, join_seconds=5)

    # Watches -----------------------------------------------------------------------------
    def _sync(self, open_existing: bool) -> None:
        """Watch what ``watch_targets`` names, drop the rest; with ``open_existing``, hand over files in new watches.

        Called with the lock held. Planned again until the plan holds: a directory created
        between planning and watching its parent (``mkdir -p``) sends no event, but shows
        in the next plan.
        """
        for _ in range(SYNC_ROUNDS):
            if not self._apply(open_existing):
                return

    def _apply(self, open_existing: bool) -> bool:
        """One round of ``_sync``: True if a watch was added or dropped."""
        if self._stopped:
            return False
        if self._inotify is None or not self._inotify.is_alive():
            try:
                self._restart_reader()
            except OSError as exc:  # no inotify here, or out of instances: the re-glob still works
                if not self._unavailable_logged:
                    self._unavailable_logged = True
                    logger.warning("cannot watch for new log files, relying on the periodic re-glob: %s", exc)
                return False
        inotify = self._inotify
        assert inotify is not None
        targets = discovery.watch_targets(self.patterns)
        changed = False
        for path, watch in list(self._watches.items()):
            if watch.active and targets.get(path) == watch.target and _identity(path or os.curdir) == watch.identity:
                continue
            del self._watches[path]
            self._remove(watch)
            changed = True
        for path, target in targets.items():
            if path in self._watches:
                continue
            identity = _identity(path or os.curdir)
            if identity is None:
                continue  # gone since the plan: its parent's event re-plans
            watch = _Watch(self, target, identity, cast("CallbackId", self._next_callback_id))
            self._next_callback_id += 1
            try:
                watch.wd = inotify.add_callback(os.fsencode(path or os.curdir), _watch_mask(), watch, watch.callback_id)
                if watch.wd < 0:  # watchdog returns -1 instead of raising for EACCES
                    raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), path)
            except OSError as exc:  # ENOSPC (out of watches), EACCES, gone: the re-glob still finds its files
                self._remove(watch)
                if path not in self._failed_paths:
                    self._failed_paths.add(path)
                    logger.warning("cannot watch %s, relying on the periodic re-glob: %s", path, exc)
                continue
            self._failed_paths.discard(path)
            self._watches[path] = watch
            changed = True
            logger.debug("watching %s", path, extra={"directory": path, "names": sorted(target.names)})
            if open_existing:
                # Files may have been created between the directory's creation and its watch.
                for name in target.names:
                    for found in sorted(glob.glob(os.path.join(glob.escape(path), name))):
                        self._open(found, found)
        return changed

    def _remove(self, watch: _Watch) -> None:
        watch.active = False
        if watch.wd is None or self._inotify is None:
            return
        with contextlib.suppress(OSError):  # the kernel may have dropped it with its directory
            self._inotify.remove_callbacks([(watch.wd, watch.callback_id)])

    def _restart_reader(self) -> None:
        """Start a reader, after releasing a previous one whose thread ended (its watches went with it)."""
        for watch in self._watches.values():
            watch.active = False
        self._watches = {}
        stop_inotify(self._inotify)
        self._inotify = None
        self._inotify = start_inotify("log-inotify")

    def _replan(self, why: str) -> None:
        """A directory on the way to matched files came or went: watch again, and re-glob."""
        logger.debug("re-planning directory watches: %s", why)
        with self._lock:
            if not self._stopped:
                self._sync(open_existing=True)
        self._report_rescan()

    def _overflow(self) -> None:
        logger.warning("inotify queue overflowed: events lost, re-globbing LOG_PATHS")
        self._report_rescan()

    # Events (watchdog's thread) ---------------------------------------------------------------
    def _on_event(self, watch: _Watch, event: InotifyEvent) -> None:
        try:
            self._handle(watch, event)
        except Exception:  # raised on watchdog's thread it would end it, and every later event with it
            logger.exception("handling an inotify event failed")
            self._report_rescan()

    def _handle(self, watch: _Watch, event: InotifyEvent) -> None:
        if event.is_delete_self or event.is_move_self:
            self._replan(f"{watch.target.path} was moved or deleted")
            return
        name = os.fsdecode(event.name)
        if not name:
            return
        target = watch.target
        path = os.path.join(target.path, name)
        if target.children and discovery.name_matches(name, target.children):
            self._replan(f"{path} came or went")
        if not target.names or event.is_directory:
            return
        matches = discovery.name_matches(name, target.names)
        if event.is_moved_from:
            if matches:
                # Rotated away: remember where from, in case it was never opened (its IN_MOVED_TO follows).
                self._moves[event.cookie] = path
                while len(self._moves) > MAX_PENDING_MOVES:
                    self._moves.popitem(last=False)
                self._report_rescan()
            return
        if event.is_create or event.is_moved_to:
            origin = self._moves.pop(event.cookie, None) if event.is_moved_to else None
            if matches:
                self._open(path, path)
            elif origin is not None:
                self._open(origin, path)  # renamed out of the glob: still the file LOG_PATHS matched
            return
        if event.is_delete and matches:
            self._report_rescan()

    def _open(self, matched_path: str, path: str) -> None:
        """Open ``path`` now and hand it over as the file LOG_PATHS matched at ``matched_path``."""
        try:
            # O_NONBLOCK: a FIFO matching the glob must not block this thread; no effect on a regular file.
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
        except OSError as exc:  # gone already (renamed: its IN_MOVED_TO comes next) or unreadable
            logger.debug("could not open a new log file", extra={"file": path, "error": str(exc)})
            return
        try:
            regular = stat.S_ISREG(os.fstat(fd).st_mode)
        except OSError:
            regular = False
        if not regular:
            os.close(fd)
            return
        try:
            self._arrived(matched_path, fd)
        except Exception:
            os.close(fd)
            raise

    def _report_rescan(self) -> None:
        try:
            self._rescan()
        except Exception:
            logger.exception("asking for a re-glob failed")


def _identity(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)
