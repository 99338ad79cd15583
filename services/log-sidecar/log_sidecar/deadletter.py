"""Documents the sink will never accept go to a file, with the reason, instead of being dropped.

``<LOG_STATE_DIR>/dead-letter.ndjson``: one JSON object per line with the
time, the reason and status the sink gave, the document id, its source file
and offset, and the document itself, ready to be fixed and re-sent.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from log_sidecar.records import format_timestamp

logger = logging.getLogger(__name__)

FILE_NAME = "dead-letter.ndjson"


class DeadLetterFile:
    """Append dead letters with fsync; past ``max_bytes`` the file rolls over to ``.1`` (one kept)."""

    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.path = directory / FILE_NAME
        self._max_bytes = max_bytes
        self._lock = threading.Lock()

    def write(self, entries: Sequence[dict[str, Any]], now: float) -> None:
        """Append ``entries``; if the disk refuses, log them in full so they are still not lost."""
        if not entries:
            return
        stamp = format_timestamp(now)
        data = b"".join(
            json.dumps({"time": stamp, **entry}, ensure_ascii=False, default=str).encode() + b"\n" for entry in entries
        )
        with self._lock:
            try:
                self._roll_over_if_full(len(data))
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
                try:
                    view = memoryview(data)
                    while view:
                        view = view[os.write(fd, view) :]
                    os.fsync(fd)
                finally:
                    os.close(fd)
            except OSError as exc:
                for entry in entries:
                    logger.error(
                        "dead letter could not be written to %s; logged here instead",
                        self.path,
                        extra={"error": str(exc), "dead_letter": entry},
                    )

    def _roll_over_if_full(self, incoming: int) -> None:
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return
        if size and size + incoming > self._max_bytes:
            os.replace(self.path, self.path.with_name(FILE_NAME + ".1"))
            logger.warning("dead-letter file rolled over", extra={"path": str(self.path), "bytes": size})
