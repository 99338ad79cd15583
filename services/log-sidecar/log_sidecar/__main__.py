"""``python -m log_sidecar`` / ``log-sidecar``: tail log files and ship them with no loss and no duplicates."""

from __future__ import annotations

from collections.abc import Sequence

from log_sidecar.service import LogSidecar
from log_sidecar.settings import Settings
from sidecar_common import run_service

DESCRIPTION = (
    "Tail the app's log files (LOG_PATHS) and ship them to Elasticsearch, Fluentd, a file or stdout. "
    "Checkpoints in LOG_STATE_DIR advance only after the sink acknowledged; deterministic document ids "
    "make a resend after a crash a no-op in Elasticsearch. SIGTERM drains within LOG_DRAIN_SECONDS."
)


def main(argv: Sequence[str] | None = None) -> int:
    return run_service("log-sidecar", Settings, LogSidecar, description=DESCRIPTION, argv=argv)


if __name__ == "__main__":
    raise SystemExit(main())
