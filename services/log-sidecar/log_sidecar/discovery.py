"""Find the files LOG_PATHS names: globs expanded now, and the directories where new ones can appear.

``scan`` is the periodic re-glob. ``watch_targets`` says which directories to watch
with inotify so that a new file is seen the moment it is created (watcher.py):
the directories matched files live in, every directory on a wildcard's way down
to them (a new pod directory under ``/var/log/pods/*/*/``), and, for a directory
that does not exist yet, its nearest existing ancestor (the app creates it later).
"""

from __future__ import annotations

import fnmatch
import glob
import logging
import os
import re
import stat
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

logger = logging.getLogger(__name__)

_WILDCARD = re.compile(r"[*?[]")


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


@dataclass(frozen=True)
class WatchTarget:
    """One directory to watch: which file-name globs match files in it, which names lead further down."""

    path: str  # as glob spells it: "" for the current directory of a bare "*.log"
    names: frozenset[str]  # LOG_PATHS file-name globs whose files live here
    children: frozenset[str]  # a subdirectory matching one of these may hold, or lead to, matched files


def name_matches(name: str, patterns: Iterable[str]) -> bool:
    """Whether ``name`` matches one of the glob ``patterns`` the way ``glob`` matches it (hidden files too)."""
    for pattern in patterns:
        # glob's rule, which fnmatch lacks: a leading dot is matched only by a leading dot.
        if name.startswith(".") and not pattern.startswith("."):
            continue
        if fnmatch.fnmatchcase(name, pattern):
            return True
    return False


def watch_targets(patterns: Sequence[str]) -> dict[str, WatchTarget]:
    """The directories to watch for ``patterns`` as the file system is now, by path."""
    names: defaultdict[str, set[str]] = defaultdict(set)
    children: defaultdict[str, set[str]] = defaultdict(set)
    for pattern in patterns:
        directory, name = os.path.split(pattern)
        fixed, wildcards = _split_wildcards(directory)
        if not os.path.isdir(fixed or os.curdir):
            ancestor, child = _nearest_existing(fixed)
            children[ancestor].add(child)
            continue
        level = [fixed]
        for component in wildcards:
            for parent in level:
                children[parent].add(component)
            level = [path for parent in level for path in glob.glob(os.path.join(glob.escape(parent), component))]
            level = [path for path in level if os.path.isdir(path)]
        for path in level:
            names[path].add(name)
    return {
        path: WatchTarget(path, frozenset(names.get(path, ())), frozenset(children.get(path, ())))
        for path in sorted(names.keys() | children.keys())
    }


def _split_wildcards(directory: str) -> tuple[str, list[str]]:
    """Split a directory glob into its longest prefix without wildcards and the components after it."""
    rest: list[str] = []
    head = directory
    while _WILDCARD.search(head):
        head, tail = os.path.split(head)
        if tail:
            rest.insert(0, tail)
    return head, rest


def _nearest_existing(path: str) -> tuple[str, str]:
    """The nearest existing directory above ``path``, and the name below it on the way to ``path``."""
    parent, child = os.path.split(path)
    while parent and not os.path.isdir(parent):
        parent, child = os.path.split(parent)
    return parent or os.curdir, child
