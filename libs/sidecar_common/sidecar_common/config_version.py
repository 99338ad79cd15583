"""The one definition of a config set's version, shared by the app and the config sidecar.

Both sides must compute the same string from the same files, or the sidecar
could never tell whether the app applied what it published.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path

VERSION_LENGTH = 16


def is_visible(name: str) -> bool:
    """Kubelet's hidden bookkeeping (``..data``, ``..2024_...``) and dotfiles are not config."""
    return not name.startswith(".")


def content_version(files: Mapping[str, bytes]) -> str:
    """Hash file names and contents, in name order, to a short hex version."""
    digest = hashlib.sha256()
    for name in sorted(files):
        content = files[name]
        digest.update(name.encode())
        digest.update(b"\0%d\0" % len(content))
        digest.update(content)
    return digest.hexdigest()[:VERSION_LENGTH]


def snapshot_root(directory: Path) -> Path:
    """Where to read a consistent set: the target of ``..data`` if present, else the dir.

    Reading the visible names one by one would follow ``..data`` anew for each
    file and could mix two versions if a swap lands in between; resolving
    ``..data`` once pins one version.
    """
    data = directory / "..data"
    if data.is_symlink() or data.is_dir():
        return data.resolve()
    return directory


def read_config_files(directory: Path) -> dict[str, bytes]:
    """Read every visible regular file of one consistent version of ``directory``."""
    root = snapshot_root(directory)
    files: dict[str, bytes] = {}
    for entry in sorted(root.iterdir()):
        if is_visible(entry.name) and entry.is_file():
            files[entry.name] = entry.read_bytes()
    return files
