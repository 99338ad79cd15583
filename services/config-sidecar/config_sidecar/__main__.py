"""``python -m config_sidecar``: run the sidecar, sync once (CONFIG_ONESHOT), or ``kubelet-swap``."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from config_sidecar.app import EXIT_IO_ERROR, ConfigSidecar
from config_sidecar.kubelet_swap import kubelet_swap
from config_sidecar.publisher import PublishError
from config_sidecar.settings import Settings
from config_sidecar.source import NameFilter, SourceMissingError, SourceUnstableError
from config_sidecar.validate import SchemaLoadError
from sidecar_common import GracefulShutdown, StartupError, configure_logging, parse_cli

PROG = "config-sidecar"
DESCRIPTION = (
    "Watch CONFIG_SOURCE_DIR (a ConfigMap/Secret volume or a plain directory), validate every file, "
    "publish the set atomically into CONFIG_TARGET_DIR and make the app reload until it runs the new version."
)

logger = logging.getLogger("config_sidecar")


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


def main(argv: Sequence[str] | None = None) -> int:
    settings, args = parse_cli(Settings, PROG, DESCRIPTION, argv, configure=_add_commands)
    if args.command == "kubelet-swap":
        return _kubelet_swap(args.source, args.target, settings)

    configure_logging(PROG, settings.log_level)
    try:
        sidecar = ConfigSidecar(settings)
    except SchemaLoadError as exc:
        print(f"{PROG}: configuration error: CONFIG_SCHEMA_FILE: {exc}", file=sys.stderr)
        return 2
    if settings.oneshot:
        return sidecar.run_once()
    shutdown = GracefulShutdown()
    shutdown.install()
    try:
        return sidecar.run(shutdown.stop)
    except (OSError, StartupError) as exc:  # e.g. the admin port is taken
        print(f"{PROG}: cannot start: {exc}", file=sys.stderr)
        return EXIT_IO_ERROR


def _kubelet_swap(source: Path, target: Path, settings: Settings) -> int:
    try:
        result = kubelet_swap(source, target, NameFilter(settings.ignore_patterns))
    except (SourceMissingError, SourceUnstableError, PublishError, OSError) as exc:
        print(f"{PROG} kubelet-swap: {exc}", file=sys.stderr)
        return EXIT_IO_ERROR
    if result is None:
        print(f"{target}: unchanged")
    else:
        print(f"{target}: ..data -> {result.directory.name} (version {result.version})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
