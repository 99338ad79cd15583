"""A kubelet AtomicWriter simulator: update a directory the way kubelet updates a ConfigMap/Secret volume.

Kubelet (pkg/volume/util/atomic_writer.go) never rewrites the visible files. For
each update it:

1. checks every path: relative, no ``..`` part, the first part not starting
   with ``..`` (that prefix is reserved for its bookkeeping);
2. creates a new hidden directory ``..<UTC timestamp>.<random>`` (mode 0755)
   and writes the payload into it with each file's mode (0644 by default, 0400
   for a typical Secret ``defaultMode``); a nested path (``items[].path:
   conf.d/app.yaml``) gets its directories created on the way (``MkdirAll``,
   0755 under kubelet's umask);
3. creates a ``..data_tmp`` symlink to it and renames that over ``..data``
   (the atomic switch);
4. creates one visible link per *first path part* that has none yet:
   ``app.yaml -> ..data/app.yaml``, ``conf.d -> ..data/conf.d`` for every file
   below ``conf.d/``;
5. removes the visible links of first parts no path uses any more (a removed
   nested item takes its link with it only when it was the last one below
   that part);
6. deletes the previous timestamped directory right away.

A projected volume (ConfigMaps, Secrets and downwardAPI files in one directory)
is the same writer fed one merged payload: sources in order, a later source's
file replacing an earlier one at the same path (kubelet's ``collectData``), while
the API server refuses two explicit ``items[].path`` that are equal
("conflicting duplicate paths").

Independent of the sidecar's own publisher on purpose: the tests must not use the
code under test to produce its input. Importable by every test layer.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

DATA = "..data"
DATA_TMP = "..data_tmp"
DIRECTORY_MODE = 0o755  # os.MkdirAll(dir, 0777) under kubelet's usual umask 022

Payload = Mapping[str, "bytes | str"]


@dataclass(frozen=True)
class KeyToPath:
    """One ``items[]`` entry of a ConfigMap/Secret source: which key, at which path, with which mode."""

    key: str
    path: str
    mode: int | None = None


@dataclass(frozen=True)
class Source:
    """One source of a volume: a ConfigMap's or Secret's data (or downwardAPI files), optionally with items.

    Without ``items`` every key becomes a file of its own name; with them only the
    listed keys are projected, each at its ``path``.
    """

    data: Payload
    items: Sequence[KeyToPath] | None = None


def check_path(path: str) -> None:
    """Refuse what kubelet's ``validatePath`` refuses (and what ``path.Clean`` would silently change)."""
    parts = path.split("/")
    if not path or path.startswith("/"):
        raise ValueError(f"not a relative path: {path!r}")
    if ".." in parts or (parts[0].startswith("..") and len(parts[0]) > 2):
        raise ValueError(f"kubelet refuses paths with '..' or starting with '..': {path!r}")
    if "" in parts or "." in parts:
        raise ValueError(f"not a clean path: {path!r}")


def project(sources: Sequence[Source], default_mode: int = 0o644) -> tuple[dict[str, bytes | str], dict[str, int]]:
    """Merge sources into one payload and its modes, as kubelet's projected volume does."""
    files: dict[str, bytes | str] = {}
    modes: dict[str, int] = {}
    explicit: set[str] = set()
    for source in sources:
        if source.items is None:
            entries = [KeyToPath(key, key) for key in source.data]
        else:
            entries = list(source.items)
            for item in entries:
                if item.key not in source.data:
                    raise ValueError(f"key {item.key!r} not found in the source (kubelet fails the mount)")
                if item.path in explicit:
                    raise ValueError(f"conflicting duplicate paths: {item.path!r} (the API server refuses the pod)")
                explicit.add(item.path)
        for item in entries:
            files[item.path] = source.data[item.key]  # a later source wins, as in kubelet's collectData
            modes[item.path] = default_mode if item.mode is None else item.mode
    return files, modes


class KubeletVolume:
    """A directory laid out and updated like a ConfigMap, Secret or projected volume."""

    def __init__(self, directory: Path, default_mode: int = 0o644) -> None:
        self.directory = directory
        self.default_mode = default_mode
        self.updates = 0
        self.last_swap_at: float | None = None  # time.monotonic() right after the ..data rename

    @property
    def data_dir(self) -> Path | None:
        """The timestamped directory ``..data`` points to now, or None before the first write."""
        link = self.directory / DATA
        return self.directory / os.readlink(link) if link.is_symlink() else None

    def write_sources(self, sources: Sequence[Source]) -> Path:
        """Write a projected volume's (or one ConfigMap-with-items') merged payload in one ``..data`` swap."""
        files, modes = project(sources, self.default_mode)
        return self.write(files, modes)

    def write(self, files: Payload, modes: Mapping[str, int] | None = None) -> Path:
        """Replace the whole payload with ``files`` (paths may be nested) in one ``..data`` swap.

        Unlike kubelet, an identical payload is swapped too, so tests can check
        that the sidecar ignores a swap that changes nothing.
        """
        modes = modes or {}
        for path in files:
            check_path(path)
        self.directory.mkdir(parents=True, exist_ok=True)
        old_dir = self.data_dir

        stamp = time.strftime("%Y_%m_%d_%H_%M_%S", time.gmtime())
        new_dir = Path(tempfile.mkdtemp(prefix=f"..{stamp}.", dir=self.directory))
        new_dir.chmod(0o755)
        for path, content in files.items():
            target = new_dir / path
            for parent in reversed(target.relative_to(new_dir).parents[:-1]):
                directory = new_dir / parent
                if not directory.is_dir():
                    directory.mkdir()
                    directory.chmod(DIRECTORY_MODE)
            target.write_bytes(content.encode() if isinstance(content, str) else content)
            target.chmod(modes.get(path, self.default_mode))

        tmp = self.directory / DATA_TMP
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        os.symlink(new_dir.name, tmp)
        os.rename(tmp, self.directory / DATA)
        self.last_swap_at = time.monotonic()

        first_parts = {path.split("/", 1)[0] for path in files}
        for name in sorted(first_parts):
            if not os.path.lexists(self.directory / name):
                os.symlink(f"{DATA}/{name}", self.directory / name)
        if old_dir is not None:
            for name in self._top_level_names(old_dir) - first_parts:
                (self.directory / name).unlink()
        if old_dir is not None and old_dir != new_dir:
            shutil.rmtree(old_dir)
        self.updates += 1
        return new_dir

    @staticmethod
    def _top_level_names(version_dir: Path) -> set[str]:
        """The first parts of the old version: only those have visible links kubelet may remove."""
        return {entry.name for entry in os.scandir(version_dir)}
