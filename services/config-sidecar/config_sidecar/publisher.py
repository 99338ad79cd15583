"""Publish a config set into the target directory atomically, the way kubelet's AtomicWriter does.

Layout after a publish (the app reads ``..data`` once, or the visible names)::

    app.yaml -> ..data/app.yaml
    mesh -> ..data/mesh
    ..data -> ..2024_05_01_10_00_00.123456789
    ..2024_05_01_10_00_00.123456789/app.yaml
    ..2024_05_01_10_00_00.123456789/mesh/routes.yaml

Steps: write every file into a new hidden versioned directory (nested names in
subdirectories of it, 0755 like kubelet's) and fsync them all; point
``..data_tmp`` at it and rename that over ``..data`` (a rename is atomic, so a
reader sees the old set or the new one, never a mix, nested files included);
fsync the target directory; add a visible link per first path part of the new
set (``mesh -> ..data/mesh``, as kubelet's AtomicWriter does), remove those no
name uses any more; delete old versions. The version published just before is kept until the next publish
so a reader that resolved ``..data`` a moment before the swap can finish reading.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from config_sidecar.source import (
    DATA_LINK,
    ConfigSet,
    NameFilter,
    SourceMissingError,
    SourceReader,
    SourceUnstableError,
)
from sidecar_common.config_version import SEPARATOR, is_visible
from sidecar_common.durable import fsync_directory, write_file

logger = logging.getLogger(__name__)

DATA_TMP_LINK = "..data_tmp"
_LINK_TMP = "..link_tmp"
_BOOKKEEPING = frozenset({DATA_LINK, DATA_TMP_LINK, _LINK_TMP})


class PublishError(Exception):
    """Writing the target directory failed; the previously published set is still in place."""

    def __init__(self, directory: Path, reason: str) -> None:
        super().__init__(f"cannot publish into {directory}: {reason}")
        self.directory = directory
        self.reason = reason


@dataclass(frozen=True)
class PublishResult:
    """What a publish wrote: the set's version and its versioned directory."""

    version: str
    directory: Path


class Publisher:
    """Write config sets into ``target_dir``; only ever writes below that directory."""

    def __init__(
        self,
        target_dir: Path,
        keep_previous: bool = True,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.target_dir = target_dir
        self.keep_previous = keep_previous
        self._clock_ns = clock_ns

    def published(self) -> ConfigSet | None:
        """Read the set currently published (after a restart, the emptyDir still holds it)."""
        if not (self.target_dir / DATA_LINK).is_symlink():
            return None
        try:
            return SourceReader(self.target_dir, NameFilter(())).read()
        except (SourceMissingError, SourceUnstableError, OSError):
            logger.warning("cannot read the currently published set; will publish anew", exc_info=True)
            return None

    def publish(self, config: ConfigSet) -> PublishResult:
        """Write ``config`` as a new version and swap it in; raise PublishError on I/O failure or a bad name."""
        for name in config.files:
            _check_name(self.target_dir, name)
        try:
            self.target_dir.mkdir(parents=True, exist_ok=True)
            previous = self._current_version_dir()
            version_dir = self._new_version_dir()
            try:
                self._write_version(version_dir, config)
                self._swap_data_link(version_dir)
            except BaseException:
                shutil.rmtree(version_dir, ignore_errors=True)  # never leave a half-written version behind
                raise
            fsync_directory(self.target_dir)  # the swap itself is durable before the app is told
            self._update_visible_links(set(config.files))
            fsync_directory(self.target_dir)
        except OSError as exc:
            raise PublishError(self.target_dir, f"{exc.strerror or exc} ({exc.filename or '-'})") from exc
        keep = {version_dir.name}
        if self.keep_previous and previous is not None:
            keep.add(previous.name)
        self._remove_old_versions(keep)
        return PublishResult(config.version, version_dir)

    def repair(self, config: ConfigSet) -> None:
        """Finish a publish that a crash cut short: links of ``config``'s keys only, no stray versions.

        A crash after the ``..data`` swap but before the links were updated leaves a
        new key without its visible name and a deleted key's link dangling; a crash
        before the swap leaves an unused versioned directory. Content that is
        unchanged is never published again, so nothing else would ever fix either.
        """
        try:
            self._update_visible_links(set(config.files))
            fsync_directory(self.target_dir)
            current = self._current_version_dir()
            self._remove_old_versions({current.name} if current is not None else set())
        except OSError as exc:
            raise PublishError(self.target_dir, f"{exc.strerror or exc} ({exc.filename or '-'})") from exc

    def _current_version_dir(self) -> Path | None:
        link = self.target_dir / DATA_LINK
        return link.resolve() if link.is_symlink() else None

    def _new_version_dir(self) -> Path:
        """Create ``..<UTC timestamp>.<nanoseconds>`` like kubelet; unique even within a second."""
        now = self._clock_ns()
        for offset in range(1000):
            stamp = now + offset
            seconds = datetime.fromtimestamp(stamp // 1_000_000_000, UTC).strftime("%Y_%m_%d_%H_%M_%S")
            path = self.target_dir / f"..{seconds}.{stamp % 1_000_000_000:09d}"
            try:
                path.mkdir()
            except FileExistsError:
                continue
            path.chmod(0o755)  # readable by the app container whatever our umask is
            return path
        raise FileExistsError(f"no free version directory name in {self.target_dir}")

    def _write_version(self, version_dir: Path, config: ConfigSet) -> None:
        """Write every file (nested names into subdirectories) and fsync each file and directory."""
        directories = [version_dir]  # in creation order: every parent before its children
        created = {version_dir}
        for name in sorted(config.files):
            parent = version_dir
            for part in name.split(SEPARATOR)[:-1]:
                parent = parent / part
                if parent not in created:
                    parent.mkdir()
                    parent.chmod(0o755)  # like the versioned dir: the app may run as another user
                    created.add(parent)
                    directories.append(parent)
            file = config.files[name]
            write_file(version_dir / name, file.content, file.mode)
        for directory in reversed(directories):  # deepest first: each entry is durable before its parent
            fsync_directory(directory)

    def _swap_data_link(self, version_dir: Path) -> None:
        """Point ``..data`` at ``version_dir`` with one atomic rename."""
        tmp = self.target_dir / DATA_TMP_LINK
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()  # left over by a crash between symlink and rename
        os.symlink(version_dir.name, tmp)  # relative, so the volume can be mounted anywhere
        os.replace(tmp, self.target_dir / DATA_LINK)

    def _update_visible_links(self, names: set[str]) -> None:
        """Give every first path part a ``part -> ..data/part`` link; drop links no name uses any more.

        Kubelet links ``conf.d -> ..data/conf.d`` once for ``conf.d/a.yaml`` and
        ``conf.d/b.yaml``: a link through ``..data`` shows every later version as
        it is, so it changes only when a first part comes or goes.
        """
        first_parts = {name.split(SEPARATOR, 1)[0] for name in names}
        for name in sorted(first_parts):
            link = self.target_dir / name
            wanted = f"{DATA_LINK}/{name}"
            if link.is_symlink() and os.readlink(link) == wanted:
                continue  # the link goes through ..data, so it already shows the new content
            tmp = self.target_dir / _LINK_TMP
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            os.symlink(wanted, tmp)
            try:
                os.replace(tmp, link)  # atomic, even over a plain file left by someone else
            except IsADirectoryError:
                tmp.unlink()
                logger.warning("cannot link %s: a directory of that name is in the way", name)
        for entry in self._entries():
            if entry.name in first_parts or entry.name.startswith(".") or not entry.is_symlink():
                continue
            if os.readlink(entry.path).startswith(f"{DATA_LINK}/"):
                os.unlink(entry.path)  # our link of a name that is gone; other files are not ours to delete

    def _remove_old_versions(self, keep: set[str]) -> None:
        """Delete versioned directories other than ``keep``; a failure is logged, the publish stands."""
        for entry in self._entries():
            if entry.name in _BOOKKEEPING or entry.name in keep or not entry.name.startswith(".."):
                continue
            if entry.is_dir(follow_symlinks=False):
                try:
                    shutil.rmtree(entry.path)
                except OSError as exc:
                    logger.warning("cannot remove old version %s: %s", entry.name, exc)

    def _entries(self) -> Iterator[os.DirEntry[str]]:
        with os.scandir(self.target_dir) as entries:
            yield from list(entries)


def _check_name(target_dir: Path, name: str) -> None:
    """Refuse a name that would land outside the versioned directory or that no reader would see."""
    parts = name.split(SEPARATOR)
    if not all(part and part not in (".", "..") and is_visible(part) for part in parts):
        raise PublishError(target_dir, f"not a relative path of visible parts: {name!r}")
