"""Append documents as JSON lines to a local file: the sink for local runs without Elasticsearch."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from log_sidecar.sinks.base import SendResult, SinkUnavailableError


def with_id(doc_id: str, source: bytes) -> bytes:
    """One JSON line: the document with its ``_id`` first, so readers can de-duplicate."""
    return b'{"_id":"%s",%s\n' % (doc_id.encode(), source[1:])


def describe_line(item: bytes) -> dict[str, Any]:
    try:
        document = json.loads(item)
    except ValueError:
        return {"id": None, "document": item.decode("utf-8", "replace")}
    return {"id": document.pop("_id", None), "document": document}


class FileSink:
    """Append each batch with one write and fsync it before acknowledging.

    A failed write (disk full) is truncated away before the batch is retried, so
    the file never holds half a batch.
    """

    name = "file"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = -1

    def open(self) -> None:
        if self._fd < 0:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)

    def framing(self, key: str) -> None:
        return None  # the id goes inside the document: encode() each one

    def encode(self, doc_id: str, timestamp: str, source: bytes) -> bytes:
        return with_id(doc_id, source)

    def send(self, items: Sequence[bytes]) -> SendResult:
        if self._fd < 0:
            raise SinkUnavailableError("io_error", f"{self.path}: not open")
        data = memoryview(b"".join(items))
        size_before = os.fstat(self._fd).st_size
        try:
            while data:
                written = os.write(self._fd, data)
                data = data[written:]
            os.fsync(self._fd)
        except OSError as exc:
            # If even this fails, the retry may repeat some lines: their _id tells them apart.
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, size_before)
            raise SinkUnavailableError("io_error", f"{self.path}: {exc}") from None
        return SendResult(delivered=len(items))

    def describe(self, item: bytes) -> dict[str, Any]:
        return describe_line(item)

    def close(self) -> None:
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)
