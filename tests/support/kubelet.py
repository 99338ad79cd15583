"""A kubelet AtomicWriter simulator: update a directory the way kubelet updates a ConfigMap/Secret volume.

Kubelet (pkg/volume/util/atomic_writer.go) never rewrites the visible files. For
each update it:

1. creates a new hidden directory ``..<UTC timestamp>.<random>`` and writes the
   payload into it with each file's mode (0644 by default, 0400 for a typical
   Secret ``defaultMode``);
2. creates a ``..data_tmp`` symlink to it and renames that over ``..data``
   (the atomic switch);
3. removes the visible symlinks of keys that are gone and creates
   ``name -> ..data/name`` for new keys; an item with a nested ``path``
   (``mesh/routes.yaml``) gets one visible link for its first component
   (``mesh -> ..data/mesh``), as kubelet does for ConfigMap ``items``;
4. deletes the previous timestamped directory right away.

Independent of the sidecar's own publisher on purpose: the tests must not use the
code under test to produce its input. Importable by every test layer.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

DATA = "..data"
DATA_TMP = "..data_tmp"

Payload = Mapping[str, "bytes | str"]


class KubeletVolume:
    """A directory laid out and updated like a ConfigMap or Secret volume."""

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

    def write(self, files: Payload, modes: Mapping[str, int] | None = None) -> Path:
        """Replace the whole payload with ``files`` in one ``..data`` swap; return the new directory.

        Unlike kubelet, an identical payload is swapped too, so tests can check
        that the sidecar ignores a swap that changes nothing.
        """
        modes = modes or {}
        self.directory.mkdir(parents=True, exist_ok=True)
        old_dir = self.data_dir
        old_names = set(self._visible_links())
        visible = {name.split("/", 1)[0] for name in files}

        stamp = time.strftime("%Y_%m_%d_%H_%M_%S", time.gmtime())
        new_dir = Path(tempfile.mkdtemp(prefix=f"..{stamp}.", dir=self.directory))
        new_dir.chmod(0o755)
        for name, content in files.items():
            parts = name.split("/")
            if any(not part or part.startswith(".") for part in parts):
                raise ValueError(f"not a ConfigMap item path kubelet would write: {name!r}")
            path = new_dir / name
            for parent in reversed(path.relative_to(new_dir).parents[:-1]):
                (new_dir / parent).mkdir(exist_ok=True)
                (new_dir / parent).chmod(0o755)
            path.write_bytes(content.encode() if isinstance(content, str) else content)
            path.chmod(modes.get(name, self.default_mode))

        tmp = self.directory / DATA_TMP
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        os.symlink(new_dir.name, tmp)
        os.rename(tmp, self.directory / DATA)
        self.last_swap_at = time.monotonic()

        for name in old_names - visible:
            (self.directory / name).unlink()
        for name in visible - old_names:
            os.symlink(f"{DATA}/{name}", self.directory / name)
        if old_dir is not None and old_dir != new_dir:
            shutil.rmtree(old_dir)
        self.updates += 1
        return new_dir

    def _visible_links(self) -> list[str]:
        if not self.directory.is_dir():
            return []
        return [
            entry.name
            for entry in os.scandir(self.directory)
            if not entry.name.startswith(".") and entry.is_symlink() and os.readlink(entry.path).startswith(f"{DATA}/")
        ]
