"""``python -m metrics_exporter``: run the exporter, or ``check`` a mapping against a golden file."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from metrics_exporter.check import CheckRequest, run_check
from metrics_exporter.config import ConfigError
from metrics_exporter.service import Exporter
from metrics_exporter.settings import Settings
from sidecar_common import GracefulShutdown, StartupError, configure_logging, parse_cli

logger = logging.getLogger("metrics_exporter")

PROG = "metrics_exporter"
DESCRIPTION = (
    "Receive statsd/DogStatsD on UDP, read the app's JSON stats at scrape time, and serve both as "
    "Prometheus metrics. With no command, run the exporter; 'check' tests a mapping against a golden file."
)
EXIT_CONFIG_ERROR = 2
EXIT_BIND_ERROR = 1


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


def main(argv: Sequence[str] | None = None) -> int:
    settings, args = parse_cli(Settings, PROG, DESCRIPTION, argv=argv, configure=_add_commands)
    if args.command == "check":
        # stdout carries the diff; the report on stderr already sums up rejected lines, so only errors are logged.
        configure_logging("metrics-exporter", "ERROR", stream=sys.stderr)
        request = CheckRequest(args.config, args.input, args.expect, args.json, args.write)
        return run_check(settings, request, out=sys.stdout, report=sys.stderr)
    configure_logging("metrics-exporter", settings.log_level)
    return serve(settings)


def serve(settings: Settings) -> int:
    """Run until SIGTERM/SIGINT; SIGHUP reloads the mapping."""
    shutdown = GracefulShutdown()
    shutdown.install()
    try:
        exporter = Exporter(settings, stop=shutdown.stop)
    except ConfigError as exc:
        logger.error("invalid mapping; not starting", extra={"reason": str(exc)})
        return EXIT_CONFIG_ERROR
    except OSError as exc:
        logger.error("cannot bind", extra={"reason": str(exc)})
        return EXIT_BIND_ERROR

    def request_reload(signum: int, frame: FrameType | None) -> None:
        exporter.reload_requested.set()  # the main loop reloads; a handler only sets a flag

    signal.signal(signal.SIGHUP, request_reload)
    try:
        exporter.run()
    except StartupError as exc:
        logger.error("cannot bind", extra={"reason": str(exc)})
        return EXIT_BIND_ERROR
    return 0


if __name__ == "__main__":
    sys.exit(main())
