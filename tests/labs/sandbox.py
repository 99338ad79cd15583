"""A stand-in for the repository where lab blocks run without touching the real work tree.

Labs tell readers to edit ``./config`` and to look into ``.local-pod/``; run as
written in the real tree, a test would rewrite the repository's config. The
sandbox links every top-level entry of the repository except those two: its
``config/`` is a private copy and its ``.local-pod/`` belongs to the test's pod.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path

PRIVATE = frozenset({"config", ".local-pod", ".git", ".venv"})
# Variables of an enclosing `make test` that would change how a block's `make` behaves.
_MAKE_VARIABLES = ("MAKEFLAGS", "MAKELEVEL", "MFLAGS", "MAKEOVERRIDES")


def make_sandbox(root: Path, directory: Path) -> Path:
    """Create ``directory`` as a linked copy of ``root`` with a private ``config/``."""
    directory.mkdir(parents=True, exist_ok=True)
    for entry in root.iterdir():
        if entry.name not in PRIVATE:
            (directory / entry.name).symlink_to(entry)
    _link_venv(root / ".venv", directory / ".venv")
    reset_config(root, directory)
    return directory


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
    """Put the repository's ``config/`` back into the sandbox (what a lab's clean-up does with git)."""
    target = sandbox / "config"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(root / "config", target)


def block_environment(extra: Mapping[str, str]) -> dict[str, str]:
    """The environment a block runs in: ours, minus the enclosing make's, plus the pod's ports."""
    env = {key: value for key, value in os.environ.items() if key not in _MAKE_VARIABLES}
    env.update(extra)
    return env
