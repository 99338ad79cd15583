"""What every sink is: encode a document, send a batch, say per document what happened."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class ItemFailure:
    """One document the sink did not store: ``index`` is its position in the items sent."""

    index: int
    status: int
    error_type: str
    reason: str
    retryable: bool


@dataclass
class SendResult:
    """The sink's answer to one request: counts of stored documents and the failures."""

    delivered: int = 0
    duplicates: int = 0  # already stored earlier (409 on create): delivered before a crash or retry
    failures: list[ItemFailure] = field(default_factory=list)


class SinkUnavailableError(Exception):
    """Nothing can be assumed stored (connection refused, timeout, 429/503 for the whole request): retry all."""

    def __init__(self, reason: str, detail: str, retry_after: float | None = None) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.retry_after = retry_after


class PayloadRejectedError(Exception):
    """The sink refused the request for its content (400, 413): split it to find the bad document."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"HTTP {status}: {detail}")
        self.status = status
        self.detail = detail


class Framing(Protocol):
    """How a sink wraps each document of one file, said as bytes: the reader then builds an item in one step.

    item = ``head(timestamp)`` + the document's offset in decimal + ``middle`` + source + ``end``,
    and is exactly what ``encode("<key>.<offset>", timestamp, source)`` returns. ``timestamp``
    may choose the index (a dated index pattern).
    """

    middle: bytes
    end: bytes

    def head(self, timestamp: str) -> bytes:
        """Everything before the offset digits of the document id."""
        ...


class Sink(Protocol):
    """A destination for documents; implementations: elasticsearch, fluentd, file, stdout."""

    name: str

    def framing(self, key: str) -> Framing | None:
        """How documents of the file ``key`` are framed, or None: each goes through ``encode``."""
        ...

    def encode(self, doc_id: str, timestamp: str, source: bytes) -> bytes:
        """Turn one document (id, @timestamp, JSON source as UTF-8) into the bytes this sink sends."""
        ...

    def send(self, items: Sequence[bytes]) -> SendResult:
        """Send encoded documents; raise SinkUnavailableError or PayloadRejectedError for whole-request failures."""
        ...

    def describe(self, item: bytes) -> dict[str, Any]:
        """Decode one encoded document for the dead-letter file: {"id", "index"?, "document"}."""
        ...

    def open(self) -> None:
        """Acquire what must exist before the first send (the file sink's file); raise OSError if unusable.

        Network sinks connect per request or lazily: nothing to do. Construction has no side effects.
        """
        ...

    def close(self) -> None:
        """Release connections and files; safe to call twice or before ``open()``."""
        ...
