"""Read one consistent set of config files from a kubelet volume or a plain directory.

A ConfigMap/Secret volume looks like this::

    /config-source/app.yaml -> ..data/app.yaml
    /config-source/..data -> ..2024_05_01_10_00_00.123456789
    /config-source/..2024_05_01_10_00_00.123456789/app.yaml   (the real file)

An item with a nested path (``items: [{key: routes, path: mesh/routes.yaml}]``)
lives in a subdirectory of the timestamped directory, and kubelet gives it one
visible link per first path part (``mesh -> ..data/mesh``). A set names such a
file by its relative path, ``mesh/routes.yaml``.

Kubelet updates it by writing a new hidden directory and renaming a
``..data_tmp`` symlink over ``..data``; the visible names never change. So the
set is read from the directory ``..data`` points to, resolved once, and the
read is repeated if a swap landed while reading (kubelet deletes the old
directory right after the swap). Without ``..data`` the directory is read as is,
subdirectories included (compose's bind mount of ``./config``).
"""

from __future__ import annotations

import fnmatch
import hashlib
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from sidecar_common import content_version, visible_entries

logger = logging.getLogger(__name__)

DATA_LINK = "..data"


class SourceMissingError(Exception):
    """The source directory does not exist (yet)."""

    def __init__(self, directory: Path) -> None:
        super().__init__(f"source directory {directory} does not exist")
        self.directory = directory


class SourceUnstableError(Exception):
    """The source kept changing while it was read; the next event or resync retries."""

    def __init__(self, directory: Path, attempts: int) -> None:
        super().__init__(f"source directory {directory} changed during each of {attempts} reads")
        self.directory = directory
        self.attempts = attempts


@dataclass(frozen=True)
class ConfigFile:
    """One file of a config set: its bytes and permission bits (a Secret's 0400 must survive)."""

    content: bytes
    mode: int = 0o644


@dataclass(frozen=True)
class ConfigSet:
    """A consistent set of config files and where it came from."""

    files: Mapping[str, ConfigFile]  # by relative path, "/" between the parts
    layout: str = "plain"  # "kubelet" when read through ..data
    skipped: tuple[str, ...] = field(default=())

    @cached_property
    def version(self) -> str:
        """The shared content version (sidecar_common), equal to what the app computes."""
        return content_version(self.contents)

    @cached_property
    def contents(self) -> dict[str, bytes]:
        return {name: file.content for name, file in self.files.items()}

    @cached_property
    def fingerprint(self) -> str:
        """Version plus file modes: a chmod alone must be published too, though the version stays."""
        modes = ",".join(f"{name}:{self.files[name].mode:o}" for name in sorted(self.files))
        return f"{self.version}/{hashlib.sha256(modes.encode()).hexdigest()[:8]}"

    def changed_names(self, previous: ConfigSet | None) -> list[str]:
        """Names added, modified or removed relative to ``previous``."""
        before = previous.files if previous is not None else {}
        names = set(before) | set(self.files)
        return sorted(name for name in names if before.get(name) != self.files.get(name))


class NameFilter:
    """Decide which directory entries are config: never hidden ones, never editor temp files."""

    def __init__(self, ignore_patterns: Iterable[str]) -> None:
        self.ignore_patterns = tuple(ignore_patterns)

    def is_config(self, name: str) -> bool:
        return not name.startswith(".") and not self.is_editor_temp(name)

    def is_editor_temp(self, name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in self.ignore_patterns)

    def is_relevant(self, name: str) -> bool:
        """Whether an event on ``name`` may change the set: a config name or the ``..data`` swap."""
        return name == DATA_LINK or self.is_config(name)


class SourceReader:
    """Read the source directory into a ConfigSet, retrying when a swap races the read."""

    def __init__(self, directory: Path, name_filter: NameFilter, attempts: int = 5) -> None:
        self.directory = directory
        self.name_filter = name_filter
        self.attempts = attempts

    def read(self) -> ConfigSet:
        """Return one consistent set; raise SourceMissingError or SourceUnstableError."""
        for _ in range(self.attempts):
            if not self.directory.is_dir():
                raise SourceMissingError(self.directory)
            data_link = self.directory / DATA_LINK
            try:
                if data_link.is_symlink():
                    root = data_link.resolve(strict=True)
                    files, skipped = self._read_root(root)
                    # A swap between resolve() and the last read means the set may be the old
                    # version's tail; read again so the result is one version, not "probably".
                    if data_link.resolve(strict=True) != root:
                        continue
                    return ConfigSet(files, "kubelet", skipped)
                files, skipped = self._read_root(self.directory)
                return ConfigSet(files, "plain", skipped)
            except (FileNotFoundError, NotADirectoryError):
                continue  # the directory we resolved was deleted under us: read the new one
        if not self.directory.is_dir():
            raise SourceMissingError(self.directory)
        raise SourceUnstableError(self.directory, self.attempts)

    def _read_root(self, root: Path) -> tuple[dict[str, ConfigFile], tuple[str, ...]]:
        files: dict[str, ConfigFile] = {}
        skipped: list[str] = []
        # Hidden entries (kubelet's bookkeeping, dotfiles) are never yielded: see the module doc.
        for name, entry in visible_entries(root):
            if entry.is_dir():
                continue  # its files follow; an empty directory publishes nothing, as in a ConfigMap
            if self.name_filter.is_editor_temp(entry.name) or not entry.is_file():
                skipped.append(name)  # editor leftovers, sockets and dangling links cannot be published
                continue
            with open(entry.path, "rb") as handle:
                content = handle.read()
                mode = os.fstat(handle.fileno()).st_mode & 0o7777
            files[name] = ConfigFile(content, mode)
        return files, tuple(skipped)
