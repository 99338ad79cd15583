"""Append whole log lines to a file that log rotation may rename away or truncate underneath us.

Several gunicorn processes write the same file. Each line goes out in ONE ``write()`` on
an ``O_APPEND`` descriptor: the kernel then positions and writes it atomically, so lines
of different workers never interleave, and after a copytruncate the next line lands at
the new end instead of far past it (no sparse hole of NULs). Before each line the path
is compared with the open file (device and inode, like logging's WatchedFileHandler):
after a rename-style rotation the file is reopened, so lines reach the new file at once.
"""

from __future__ import annotations

import contextlib
import errno
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

Notify = Callable[[str, OSError | None], None]


class LogFile:
    """A path we append lines to; reopened after rotation, retried after errors.

    ``notify(message, error)`` is called when the file becomes unusable and when it works
    again, so the caller can say so on stdout instead of losing lines silently.
    """

    def __init__(
        self,
        path: Path,
        notify: Notify,
        retry_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path
        self.lines_failed = 0
        self._notify = notify
        self._retry_seconds = retry_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._identity: tuple[int, int] | None = None
        self._failing = False
        self._next_attempt = 0.0

    def write(self, line: bytes) -> bool:
        """Append one complete line; return False (and count it) if the file cannot take it."""
        with self._lock:
            fd = self._usable_fd()
            if fd is None:
                self.lines_failed += 1
                return False
            try:
                _write_all(fd, line)
            except OSError as exc:
                self._close()
                self._failed(exc)
                self.lines_failed += 1
                return False
            return True

    def close(self) -> None:
        with self._lock:
            self._close()

    # Plumbing ----------------------------------------------------------------
    def _usable_fd(self) -> int | None:
        if self._fd is not None and not self._rotated():
            return self._fd
        if self._failing and self._clock() < self._next_attempt:
            return None
        try:
            self._reopen()
        except OSError as exc:
            self._failed(exc)
            return None
        if self._failing:
            self._failing = False
            self._notify(f"log file {self.path} is writable again", None)
        return self._fd

    def _rotated(self) -> bool:
        """Whether the path now names another file than the one we hold open (or none)."""
        try:
            status = os.stat(self.path)
        except FileNotFoundError:
            return True
        except OSError:
            return False  # cannot tell (e.g. permissions on the dir): keep the open file
        return (status.st_dev, status.st_ino) != self._identity

    def _reopen(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        status = os.fstat(fd)
        self._close()
        self._fd = fd
        self._identity = (status.st_dev, status.st_ino)

    def _close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            with contextlib.suppress(OSError):  # already gone: nothing left to release
                os.close(fd)

    def _failed(self, exc: OSError) -> None:
        self._next_attempt = self._clock() + self._retry_seconds
        if not self._failing:
            self._failing = True
            self._notify(f"cannot write log file {self.path}, logging to stdout only: {exc.strerror or exc}", exc)


def _write_all(fd: int, data: bytes) -> None:
    """Write ``data`` with one write() in practice; loop only on a rare short write (e.g. a full disk)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)  # retried on EINTR by Python itself (PEP 475)
        if written == 0:
            raise OSError(errno.EIO, "write returned 0")
        view = view[written:]
