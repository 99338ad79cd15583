"""Watch the source DIRECTORY with inotify and report relevant changes.

Why the directory and not the files: kubelet never touches the visible files
(they are symlinks through ``..data``); an update renames ``..data_tmp`` over
``..data``. A watch on ``app.yaml`` therefore reports nothing at all, while a
non-recursive watch on the directory reports exactly that move. The same watch
sees in-place edits and write-and-rename saves in a plain directory.

Why raw inotify and not watchdog: watchdog holds every ``IN_MOVED_FROM`` for up
to 0.5 s to pair it with its ``IN_MOVED_TO``, and when its reader thread picks up
the ``..data_tmp`` half before the ``..data`` half is queued it sleeps the whole
0.5 s although the pair arrived in the same read. That was the p99 of the
propagation benchmark (1 swap in ~10 took ~515 ms). The sidecar needs no pairing:
the ``IN_MOVED_TO`` on ``..data`` alone is the commit, so each event is reported
as it is read.

Open/close-without-write events are not subscribed: the sidecar's own reads
would otherwise wake it again, forever.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import logging
import os
import select
import struct
import threading
from collections.abc import Callable
from pathlib import Path

from config_sidecar.source import DATA_LINK, NameFilter

logger = logging.getLogger(__name__)

# <sys/inotify.h>
IN_MODIFY = 0x00000002
IN_ATTRIB = 0x00000004
IN_CLOSE_WRITE = 0x00000008
IN_MOVED_FROM = 0x00000040
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE = 0x00000200
IN_DELETE_SELF = 0x00000400
IN_MOVE_SELF = 0x00000800
IN_Q_OVERFLOW = 0x00004000
IN_IGNORED = 0x00008000
IN_ONLYDIR = 0x01000000
IN_DONT_FOLLOW = 0x02000000
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC

WATCH_MASK = (
    IN_CREATE
    | IN_DELETE
    | IN_MODIFY
    | IN_MOVED_FROM
    | IN_MOVED_TO
    | IN_CLOSE_WRITE
    | IN_ATTRIB
    | IN_DELETE_SELF
    | IN_MOVE_SELF
    | IN_ONLYDIR
    | IN_DONT_FOLLOW
)
# The directory itself went away (deleted, or moved elsewhere): the watch no longer shows the source.
_SELF_GONE = IN_DELETE_SELF | IN_MOVE_SELF
# Events that publish a complete ``..data`` in one step (kubelet's rename, or a symlink created directly).
_COMMIT = IN_MOVED_TO | IN_CREATE
_EVENT = struct.Struct("iIII")  # wd, mask, cookie, length of the NUL-padded name that follows
READ_SIZE = 64 * 1024


class InotifyUnavailableError(OSError):
    """This platform's C library has no inotify (not Linux)."""


class _Inotify:
    """The three inotify calls from the C library, raising OSError with the errno on failure."""

    def __init__(self) -> None:
        # The symbols already loaded into this process (libc's among them): no library search, no subprocess.
        libc = ctypes.CDLL(None, use_errno=True)
        try:
            self._init1 = libc.inotify_init1
            self._add_watch = libc.inotify_add_watch
            self._rm_watch = libc.inotify_rm_watch
        except AttributeError:
            raise InotifyUnavailableError(errno.ENOSYS, "inotify is not available on this platform") from None
        self._add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        self._rm_watch.argtypes = [ctypes.c_int, ctypes.c_int]

    def init(self) -> int:
        return self._check(self._init1(IN_NONBLOCK | IN_CLOEXEC), "inotify_init1")

    def add_watch(self, fd: int, path: str, mask: int) -> int:
        return self._check(self._add_watch(fd, os.fsencode(path), mask), path)

    def rm_watch(self, fd: int, wd: int) -> None:
        self._check(self._rm_watch(fd, wd), "inotify_rm_watch")

    @staticmethod
    def _check(result: int, what: str) -> int:
        if result < 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code), what)
        return result


def parse_events(buffer: bytes) -> list[tuple[int, int, str]]:
    """Split one ``read()`` of an inotify fd into (watch descriptor, mask, name) triples."""
    events: list[tuple[int, int, str]] = []
    offset = 0
    while offset + _EVENT.size <= len(buffer):
        wd, mask, _cookie, length = _EVENT.unpack_from(buffer, offset)
        offset += _EVENT.size
        name = os.fsdecode(buffer[offset : offset + length].rstrip(b"\0"))
        offset += length
        events.append((wd, mask, name))
    return events


class DirectoryWatcher:
    """Keep one inotify watch on ``directory``; re-establish it when the directory (re)appears.

    One reader thread blocks on the inotify fd and calls ``on_change(commit)``
    for each relevant event as soon as it is read. ``stop()`` is final.
    """

    def __init__(self, directory: Path, name_filter: NameFilter, on_change: Callable[[bool], None]) -> None:
        self.directory = directory
        self.name_filter = name_filter
        self.on_change = on_change
        self._inotify: _Inotify | None = None
        self._fd: int | None = None
        self._wake_read: int | None = None
        self._wake_write: int | None = None
        self._thread: threading.Thread | None = None
        self._wd: int | None = None
        self._identity: tuple[int, int] | None = None
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
        directory replaced by a new one (new inode), gets watched within a turn.
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
            reader_alive = self._thread is not None and self._thread.is_alive()
            if self._wd is not None and identity == self._identity and reader_alive and not self._lost:
                return False
            self._drop_watch()
            try:
                if not reader_alive:
                    self._start_reader()
                assert self._inotify is not None
                assert self._fd is not None
                # A new watch first, then the identity: a swap in between is caught by the caller's sync.
                self._wd = self._inotify.add_watch(self._fd, os.fspath(self.directory), WATCH_MASK)
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
            return True

    def stop(self) -> None:
        """Stop the reader thread and close the inotify fd; later ``ensure()`` calls do nothing."""
        with self._lock:
            self._stopped = True
            self._drop_watch()
            thread = self._thread
            if self._wake_write is not None:
                os.write(self._wake_write, b"x")
        if thread is not None:
            thread.join(timeout=5)
        with self._lock:
            for fd in (self._fd, self._wake_read, self._wake_write):
                if fd is not None:
                    os.close(fd)
            self._fd = self._wake_read = self._wake_write = None
            self._thread = None

    def _start_reader(self) -> None:
        """Open the inotify fd and a wake-up pipe (for stop) and start the thread reading them."""
        if self._inotify is None:
            self._inotify = _Inotify()
        if self._fd is None:
            self._fd = self._inotify.init()
            self._wake_read, self._wake_write = os.pipe()
        self._thread = threading.Thread(
            target=self._read_loop, args=(self._fd, self._wake_read), name="config-inotify", daemon=True
        )
        self._thread.start()

    def _drop_watch(self) -> None:
        # Forget the watch before removing it, so the reader ignores the IN_IGNORED the removal causes.
        wd, self._wd, self._identity = self._wd, None, None
        if wd is not None and self._fd is not None and self._inotify is not None:
            with contextlib.suppress(OSError):  # EINVAL: the kernel already dropped the watch with its directory
                self._inotify.rm_watch(self._fd, wd)

    def _read_loop(self, fd: int, wake: int | None) -> None:
        """Thread body: block until events or the stop wake-up, report each relevant event at once."""
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        if wake is not None:
            poller.register(wake, select.POLLIN)
        while not self._stopped:
            ready = {ready_fd for ready_fd, _ in poller.poll()}
            if wake in ready or self._stopped:
                return
            try:
                buffer = os.read(fd, READ_SIZE)
            except BlockingIOError:
                continue
            for wd, mask, name in parse_events(buffer):
                try:
                    self._handle(wd, mask, name)
                except Exception:  # a failing callback must not end the watch; the re-hash still syncs
                    logger.exception("handling inotify event failed")

    def _handle(self, wd: int, mask: int, name: str) -> None:
        """Report an event on a config name, on ``..data`` (a commit) or on the directory itself."""
        if mask & IN_Q_OVERFLOW:
            logger.warning("inotify queue overflowed on %s: events lost, syncing", self.directory)
            self.on_change(False)
            return
        if wd != self._wd:
            return  # a watch dropped by ensure(): its last events (IN_IGNORED) say nothing about the source
        if mask & (_SELF_GONE | IN_IGNORED):
            # The kernel dropped the watch with the directory; a new directory may even get the
            # same inode number, so the watcher must not trust (dev, inode) alone.
            self._lost = True  # a bool store: safe from this thread without the lock
            self.on_change(False)
            return
        if not self.name_filter.is_relevant(name):
            return
        # Kubelet's rename onto ..data publishes a complete set in one step: no need to wait for quiet.
        commit = name == DATA_LINK and bool(mask & _COMMIT)
        logger.debug("change event %#x on %s (commit: %s)", mask, name, commit)
        self.on_change(commit)
