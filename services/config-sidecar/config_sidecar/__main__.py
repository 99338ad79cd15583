"""``python -m config_sidecar``: run the sidecar, sync once (CONFIG_ONESHOT), or ``kubelet-swap``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from config_sidecar.app import ConfigSidecar
from config_sidecar.kubelet_swap import kubelet_swap
from config_sidecar.publisher import PublishError
from config_sidecar.settings import Settings
from config_sidecar.source import NameFilter, SourceMissingError, SourceUnstableError
from sidecar_common import EXIT_OK, EXIT_UNAVAILABLE, run_service

PROG = "config-sidecar"
DESCRIPTION = (
    "Watch CONFIG_SOURCE_DIR (a ConfigMap/Secret volume or a plain directory), validate every file, "
    "publish the set atomically into CONFIG_TARGET_DIR and make the app reload until it runs the new version."
)


def _add_commands(parser: argparse.ArgumentParser) -> None:
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    swap = commands.add_parser(
        "kubelet-swap",
        help="copy a plain directory into DIR the way kubelet updates a ConfigMap volume (..data swap)",
        description="Copy the files of --from into --to as kubelet does: a new ..<timestamp> directory, "
        "a ..data_tmp symlink renamed over ..data, visible symlinks, the old version deleted. No validation.",
    )
    swap.add_argument("--from", dest="source", type=Path, required=True, metavar="DIR", help="plain directory")
    swap.add_argument("--to", dest="target", type=Path, required=True, metavar="DIR", help="kubelet-style dir")


def _run_command(settings: Settings, args: argparse.Namespace) -> int | None:
    """``kubelet-swap``, or CONFIG_ONESHOT's single sync; None runs the sidecar."""
    if args.command == "kubelet-swap":
        return _kubelet_swap(args.source, args.target, settings)
    if settings.oneshot:
        ConfigSidecar(settings).sync_once()  # raises the one-line error's SettingsError / StartupError
        return EXIT_OK
    return None


def main(argv: Sequence[str] | None = None) -> int:
    return run_service(
        PROG,
        Settings,
        ConfigSidecar,
        description=DESCRIPTION,
        argv=argv,
        commands=_add_commands,
        run_command=_run_command,
    )


def _kubelet_swap(source: Path, target: Path, settings: Settings) -> int:
    """A lab helper's own output: the swap on stdout, a failure on stderr (exit 3: a path is unusable)."""
    try:
        result = kubelet_swap(source, target, NameFilter(settings.ignore_patterns))
    except (SourceMissingError, SourceUnstableError, PublishError, OSError) as exc:
        print(f"{PROG} kubelet-swap: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    if result is None:
        print(f"{target}: unchanged")
    else:
        print(f"{target}: ..data -> {result.directory.name} (version {result.version})")
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
