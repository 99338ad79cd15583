"""``python -m metrics_exporter``: run the exporter, or ``check`` a mapping against a golden file."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from metrics_exporter.check import CheckRequest, run_check
from metrics_exporter.service import Exporter
from metrics_exporter.settings import Settings
from sidecar_common import configure_logging, run_service

PROG = "metrics-exporter"
DESCRIPTION = (
    "Receive statsd/DogStatsD on UDP, read the app's JSON stats at scrape time, and serve both as "
    "Prometheus metrics. With no command, run the exporter; 'check' tests a mapping against a golden file."
)


def _add_commands(parser: argparse.ArgumentParser) -> None:
    commands = parser.add_subparsers(dest="command", metavar="{check}")
    check = commands.add_parser(
        "check",
        help="run a mapping against sample lines and diff the exposition with a golden file",
        description="Replay statsd lines (one packet per line, # comments) and optionally a JSON sample "
        "through a mapping, then compare the text exposition with --expect. Exit 0 on match, "
        "1 with a unified diff on mismatch, 2 when an input is unusable.",
    )
    check.add_argument("--config", type=Path, help="mapping YAML (default: EXPORTER_CONFIG, else the built-in one)")
    check.add_argument("--input", type=Path, required=True, help="statsd sample, one line per packet")
    check.add_argument("--expect", type=Path, required=True, help="golden exposition file")
    check.add_argument("--json", type=Path, help="JSON sample standing in for EXPORTER_JSON_URL")
    check.add_argument("--write", action="store_true", help="(re)write --expect from the actual output")


def _run_command(settings: Settings, args: argparse.Namespace) -> int | None:
    """``check`` (exit 0 match, 1 differ, 2 unusable input, like diff); None runs the exporter."""
    if args.command != "check":
        return None
    # stdout carries the diff; the report on stderr already sums up rejected lines, so only errors are logged.
    configure_logging(PROG, "ERROR", stream=sys.stderr)
    request = CheckRequest(args.config, args.input, args.expect, args.json, args.write)
    return run_check(settings, request, out=sys.stdout, report=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    return run_service(
        PROG, Settings, Exporter, description=DESCRIPTION, argv=argv, commands=_add_commands, run_command=_run_command
    )


if __name__ == "__main__":
    sys.exit(main())
