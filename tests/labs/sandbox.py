"""A stand-in for the repository where lab blocks run without touching the real work tree.

Labs tell readers to edit ``./config`` (the api pod's) and ``deploy/compose/web/config``
(the web pod's) and to look into ``.local-pod/``; run as written in the real tree, a
test would rewrite the repository's config. The sandbox links every entry of the
repository except those: its two config directories are private copies and its
``.local-pod/`` belongs to the test's pod.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path

# What the labs edit: private copies, put back by reset_config (as a lab's clean-up does with git).
CONFIG_COPIES = ("config", "deploy/compose/web/config")
# Never linked: the pod's state, git's and the shared .venv (linked entry by entry below).
NOT_LINKED = frozenset({".local-pod", ".git", ".venv"})
# Variables of an enclosing `make test` that would change how a block's `make` behaves.
_MAKE_VARIABLES = ("MAKEFLAGS", "MAKELEVEL", "MFLAGS", "MAKEOVERRIDES")


def make_sandbox(root: Path, directory: Path) -> Path:
    """Create ``directory`` as a linked copy of ``root`` with a private ``config/``."""
    directory.mkdir(parents=True, exist_ok=True)
    _mirror(root, directory, [tuple(path.split("/")) for path in CONFIG_COPIES], top=True)
    _link_venv(root / ".venv", directory / ".venv")
    reset_config(root, directory)
    return directory


def _mirror(source: Path, target: Path, private: list[tuple[str, ...]], top: bool = False) -> None:
    """Link each entry of ``source`` into ``target``, but descend into the parents of a private path."""
    for entry in source.iterdir():
        if top and entry.name in NOT_LINKED:
            continue
        below = [path[1:] for path in private if path[0] == entry.name]
        if not below:
            (target / entry.name).symlink_to(entry)
        elif all(below):  # a parent of a private path: a real directory, mirrored in turn
            (target / entry.name).mkdir()
            _mirror(entry, target / entry.name, below)
        # else: the private path itself, copied by reset_config


def _link_venv(venv: Path, target: Path) -> None:
    """Link the shared .venv's contents but give the sandbox its own fresh ``.installed`` stamp.

    A block's ``make config-push`` depends on ``install``; with the stamp fresh, make
    never runs pip from the sandbox (pip would record the sandbox's paths in the
    shared .venv). ``-o`` would say this better, but make ignores it in MAKEFLAGS.
    """
    target.mkdir()
    for entry in venv.iterdir():
        if entry.name != ".installed":
            (target / entry.name).symlink_to(entry)
    (target / ".installed").touch()


def reset_config(root: Path, sandbox: Path) -> None:
    """Put the repository's config directories back into the sandbox (what a lab's clean-up does with git)."""
    for path in CONFIG_COPIES:
        target = sandbox / path
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(root / path, target)


def block_environment(extra: Mapping[str, str]) -> dict[str, str]:
    """The environment a block runs in: ours, minus the enclosing make's, plus the pod's ports."""
    env = {key: value for key, value in os.environ.items() if key not in _MAKE_VARIABLES}
    env.update(extra)
    return env
