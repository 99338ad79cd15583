"""Print documents as JSON lines on standard output (debugging, or a platform that collects stdout)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import IO, Any

from log_sidecar.sinks.base import SendResult, SinkUnavailableError
from log_sidecar.sinks.file import describe_line, with_id


class StdoutSink:
    """Write each batch to stdout and flush it; a closed pipe is a retryable failure, not a loss."""

    name = "stdout"

    def __init__(self, stream: IO[bytes] | None = None) -> None:
        self._stream = stream or sys.stdout.buffer

    def framing(self, key: str) -> None:
        return None  # the id goes inside the document: encode() each one

    def encode(self, doc_id: str, timestamp: str, source: bytes) -> bytes:
        return with_id(doc_id, source)

    def send(self, items: Sequence[bytes]) -> SendResult:
        try:
            self._stream.write(b"".join(items))
            self._stream.flush()
        except (OSError, ValueError) as exc:
            raise SinkUnavailableError("io_error", f"stdout: {exc}") from None
        return SendResult(delivered=len(items))

    def describe(self, item: bytes) -> dict[str, Any]:
        return describe_line(item)

    def open(self) -> None:
        pass  # stdout is always there

    def close(self) -> None:
        try:
            self._stream.flush()
        except (OSError, ValueError):
            return
