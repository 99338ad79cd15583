"""Find the files LOG_PATHS names now: globs expanded, symlinks followed, one path per file."""

from __future__ import annotations

import glob
import logging
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Found:
    """A regular file matched by a glob: the matched path (what users configured) and its identity."""

    path: str
    dev: int
    ino: int


def scan(patterns: Sequence[str]) -> dict[tuple[int, int], Found]:
    """Expand every glob; return the matched regular files by (device, inode).

    Symlinks are followed (Kubernetes' /var/log/containers/*.log are links), so a
    file reachable through two matched paths is read once, under the first path
    in pattern order.
    """
    found: dict[tuple[int, int], Found] = {}
    for pattern in patterns:
        for path in sorted(glob.glob(pattern)):
            try:
                st = os.stat(path)
            except OSError as exc:  # vanished between glob and stat, or a dangling symlink
                logger.debug("skipping unreadable match", extra={"path": path, "error": str(exc)})
                continue
            if not stat.S_ISREG(st.st_mode):
                continue
            found.setdefault((st.st_dev, st.st_ino), Found(path, st.st_dev, st.st_ino))
    return found


def find_inode(directory: str, dev: int, ino: int) -> str | None:
    """Look for the file (dev, ino) among the entries of ``directory``: a rotated file's new name."""
    try:
        names = os.listdir(directory)
    except OSError:
        return None
    for name in sorted(names):
        path = os.path.join(directory, name)
        try:
            st = os.stat(path, follow_symlinks=False)
        except OSError:
            continue
        if st.st_ino == ino and st.st_dev == dev and stat.S_ISREG(st.st_mode):
            return path
    return None
