"""The one definition of a config set's version, shared by the app and the config sidecar.

Both sides must compute the same string from the same files, or the sidecar
could never tell whether the app applied what it published. A set is every
visible regular file below the config directory, named by its path relative to
that directory with ``/`` between the parts (``app.yaml``, ``mesh/routes.yaml``):
a ConfigMap item with ``path: conf.d/app.yaml`` is a nested file, and it counts
in the version like a flat one.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

VERSION_LENGTH = 16
SEPARATOR = "/"  # in names and in the hash, on every platform


def is_visible(name: str) -> bool:
    """Kubelet's hidden bookkeeping (``..data``, ``..2024_...``) and dotfiles are not config."""
    return not name.startswith(".")


def content_version(files: Mapping[str, bytes]) -> str:
    """Hash file names (relative paths with ``/``) and contents, in name order, to a short hex version."""
    digest = hashlib.sha256()
    for name in sorted(files):
        content = files[name]
        digest.update(name.encode())
        digest.update(b"\0%d\0" % len(content))
        digest.update(content)
    return digest.hexdigest()[:VERSION_LENGTH]


def visible_entries(root: Path) -> Iterator[tuple[str, os.DirEntry[str]]]:
    """Yield ``(relative name, entry)`` for every visible entry below ``root``, a directory before its contents.

    A hidden part hides everything below it (``.git/``, ``conf.d/.cache/``), at
    any depth, by the same rule as at the top. Symlinks are followed, as a plain
    directory may link a file or a directory in, but a directory that is already
    being walked is not entered again, so a link loop ends. Within a directory,
    entries come in name order.
    """
    yield from _walk(root, "", frozenset())


def _walk(
    directory: Path, prefix: str, ancestors: frozenset[tuple[int, int]]
) -> Iterator[tuple[str, os.DirEntry[str]]]:
    stat = os.stat(directory)
    identity = (stat.st_dev, stat.st_ino)
    if identity in ancestors:
        return  # a symlink back to a directory above: its content is already in the set
    with os.scandir(directory) as scan:
        entries = sorted((entry for entry in scan if is_visible(entry.name)), key=lambda entry: entry.name)
    for entry in entries:
        name = prefix + entry.name
        yield name, entry
        if entry.is_dir():
            yield from _walk(Path(entry.path), name + SEPARATOR, ancestors | {identity})


def snapshot_root(directory: Path) -> Path:
    """Where to read a consistent set: the target of ``..data`` if present, else the dir.

    Reading the visible names one by one would follow ``..data`` anew for each
    file and could mix two versions if a swap lands in between; resolving
    ``..data`` once pins one version, nested directories included (they live
    inside the versioned directory).
    """
    data = directory / "..data"
    if data.is_symlink() or data.is_dir():
        return data.resolve()
    return directory


def read_config_files(directory: Path) -> dict[str, bytes]:
    """Read every visible regular file of one consistent version of ``directory``, subdirectories included."""
    root = snapshot_root(directory)
    files: dict[str, bytes] = {}
    for name, entry in visible_entries(root):
        if entry.is_file():
            with open(entry.path, "rb") as handle:
                files[name] = handle.read()
    return files
