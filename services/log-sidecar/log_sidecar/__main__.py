"""``python -m log_sidecar`` / ``log-sidecar``: tail log files and ship them with no loss and no duplicates."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from log_sidecar.service import LogSidecar
from log_sidecar.settings import Settings
from sidecar_common import GracefulShutdown, StartupError, configure_logging, parse_cli

DESCRIPTION = (
    "Tail the app's log files (LOG_PATHS) and ship them to Elasticsearch, Fluentd, a file or stdout. "
    "Checkpoints in LOG_STATE_DIR advance only after the sink acknowledged; deterministic document ids "
    "make a resend after a crash a no-op in Elasticsearch. SIGTERM drains within LOG_DRAIN_SECONDS."
)


def main(argv: Sequence[str] | None = None) -> int:
    settings, _ = parse_cli(Settings, "log-sidecar", DESCRIPTION, argv)
    configure_logging("log-sidecar", settings.log_level)
    shutdown = GracefulShutdown()
    shutdown.install()
    try:
        sidecar = LogSidecar(settings, stop=shutdown.stop)
        sidecar.start()
    except StartupError as exc:
        print(f"log-sidecar: cannot start: {exc}", file=sys.stderr)
        return 2
    return sidecar.run()


if __name__ == "__main__":
    raise SystemExit(main())
