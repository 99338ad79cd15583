"""Writes that survive a crash: fsynced files, atomic replacement, durable renames.

The config sidecar publishes versioned directories and the log sidecar rewrites
its checkpoint; both must never leave a half-written file behind a crash, and a
rename is only durable once its directory is fsynced too.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def write_file(path: Path, data: bytes, mode: int = 0o644, *, replace_existing: bool = False) -> None:
    """Write ``data`` to ``path`` and fsync it; refuse an existing file unless asked."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | (os.O_TRUNC if replace_existing else os.O_EXCL)
    fd = os.open(path, flags, 0o600)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fchmod(fd, mode)  # after writing, so even a 0400 Secret file can be written first
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_file(path: Path, data: bytes, mode: int = 0o640) -> None:
    """Replace ``path`` so that readers and crashes see the old or the new content only."""
    tmp = path.with_name(f".{path.name}.tmp")
    write_file(tmp, data, mode, replace_existing=True)
    try:
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_directory(path.parent)


def fsync_directory(directory: Path) -> None:
    """Persist a directory's entries (new files, a rename) so a crash cannot lose them."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
