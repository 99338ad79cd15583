"""Run the emulator as a process: ``python -m sink_emulators.elasticsearch --host 0.0.0.0 --port 9200``."""

from __future__ import annotations

import argparse
import gc
import json
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from types import FrameType

from .emulator import BulkEmulator
from .faults import Faults, FaultsError

# Attributes every LogRecord has; anything else was passed with ``extra=`` and is a field.
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime", "taskName"}


class _JsonFormatter(logging.Formatter):
    """One JSON object per line with the project's stable keys (time, level, logger, msg, fields)."""

    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        doc.update({key: value for key, value in record.__dict__.items() if key not in _STANDARD})
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m sink_emulators.elasticsearch",
        description="Elasticsearch Bulk-API emulator (documents in memory, injectable faults via /_emulator/faults).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    parser.add_argument(
        "--port", type=int, default=9200, help="port to bind, 0 for any free one (default: %(default)s)"
    )
    parser.add_argument("--username", help="require HTTP basic auth with this user (needs --password)")
    parser.add_argument("--password", help="password for --username")
    parser.add_argument("--api-key", help="accept 'Authorization: ApiKey <this>' (or its base64 of id:key)")
    parser.add_argument("--seed", type=int, default=0, help="seed for injected item failures (default: %(default)s)")
    parser.add_argument("--faults", help="faults in force at start, as the JSON of POST /_emulator/faults")
    parser.add_argument("--log-level", default="INFO", help="log level (default: %(default)s)")
    args = parser.parse_args(argv)
    if (args.username is None) != (args.password is None):
        parser.error("--username and --password go together")
    if args.faults is not None:
        try:
            args.faults = Faults.from_json(json.loads(args.faults))
        except (ValueError, FaultsError) as exc:
            parser.error(f"--faults: {exc}")
    return args


logger = logging.getLogger("sink_emulators.elasticsearch")


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until SIGTERM or SIGINT."""
    args = parse_args(argv)
    # A 5,000-document bulk request allocates tens of thousands of short-lived objects; with the
    # default threshold (700) the collector runs dozens of times per request and promotes the
    # request's objects into older generations. Collecting less often cuts the CPU per document
    # by about a quarter. Only here, in the emulator's own process: in-process users keep theirs.
    gc.set_threshold(100_000, 50, 100)
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(_JsonFormatter())
    logging.basicConfig(level=args.log_level.upper(), handlers=[handler], force=True)
    emulator = BulkEmulator(
        args.host, args.port, username=args.username, password=args.password, api_key=args.api_key, seed=args.seed
    )
    if args.faults is not None:
        emulator.set_faults(args.faults)
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        emulator.start()
    except OSError as exc:
        logger.error("cannot listen on %s:%s: %s", args.host, args.port, exc)
        return 1
    while not stop.wait(1.0):
        pass
    emulator.stop()
    logger.info("es emulator stopped", extra={"stats": emulator.stats().to_json()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
