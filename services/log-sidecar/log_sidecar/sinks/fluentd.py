"""Ship documents to Fluentd (or Fluent Bit) over the forward protocol, waiting for each chunk's ack.

fluent-logger's ``FluentSender`` writes to the socket and calls it sent: it has
no acknowledgements, keeps failed bytes in a private buffer that it resends on
the next emit (a second copy if we also retried) and hands them to an overflow
handler when the buffer is full. That is at-most-once. Here each batch is one
PackedForward message with ``{"chunk": id}``; it counts as delivered only when
``{"ack": id}`` comes back (``require_ack_response`` in Fluent Bit terms). A
missing ack is a retry, never a loss. Times are fluent-logger's ``EventTime``.
Every record carries its ``_id`` so an Elasticsearch output behind Fluentd
(``id_key _id``) keeps the no-duplicates guarantee.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import socket
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import msgpack
from fluent.sender import EventTime

from log_sidecar.sinks.base import SendResult, SinkUnavailableError

RECV_BYTES = 4096


def event_time(timestamp: str) -> EventTime:
    """The forward protocol's nanosecond time for an ISO @timestamp (now if it does not parse)."""
    try:
        moment = datetime.fromisoformat(timestamp)
    except ValueError:
        return EventTime(time.time())
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return EventTime(moment.timestamp())


def new_chunk_id() -> str:
    return base64.b64encode(os.urandom(16)).decode()


class FluentdSink:
    """One TCP connection, reopened after any failure; one acknowledged chunk per batch."""

    name = "fluentd"

    def __init__(
        self,
        host: str,
        port: int,
        tag: str,
        timeout: float,
        chunk_id: Callable[[], str] = new_chunk_id,
    ) -> None:
        self._address = (host, port)
        self._tag = tag
        self._timeout = timeout
        self._chunk_id = chunk_id
        self._sock: socket.socket | None = None

    def framing(self, key: str) -> None:
        return None  # the id goes inside the document: encode() each one

    def encode(self, doc_id: str, timestamp: str, source: bytes) -> bytes:
        record = {"_id": doc_id, **json.loads(source)}
        return bytes(msgpack.packb([event_time(timestamp), record]))

    def send(self, items: Sequence[bytes]) -> SendResult:
        chunk = self._chunk_id()
        message = msgpack.packb([self._tag, b"".join(items), {"chunk": chunk, "size": len(items)}])
        try:
            sock = self._connect()
            sock.sendall(message)
            self._await_ack(sock, chunk)
        except TimeoutError:
            self._disconnect()
            raise SinkUnavailableError("timeout", f"no ack for chunk {chunk} within {self._timeout} s") from None
        except OSError as exc:
            self._disconnect()
            raise SinkUnavailableError("connection", f"{self._address[0]}:{self._address[1]}: {exc}") from None
        return SendResult(delivered=len(items))

    def _connect(self) -> socket.socket:
        if self._sock is None:
            sock = socket.create_connection(self._address, timeout=self._timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._sock = sock
        return self._sock

    def _await_ack(self, sock: socket.socket, chunk: str) -> None:
        unpacker = msgpack.Unpacker(raw=False)
        deadline = time.monotonic() + self._timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            sock.settimeout(left)
            data = sock.recv(RECV_BYTES)
            if not data:
                raise ConnectionResetError("connection closed before the ack")
            unpacker.feed(data)
            for answer in unpacker:
                # An ack of an earlier chunk we gave up on may still arrive: skip it.
                if isinstance(answer, dict) and answer.get("ack") == chunk:
                    return

    def _disconnect(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
            self._sock = None

    def describe(self, item: bytes) -> dict[str, Any]:
        try:
            _, record = msgpack.unpackb(item, raw=False, strict_map_key=False)
        except (ValueError, msgpack.UnpackException):
            return {"id": None, "document": item.hex()}
        return {"id": record.pop("_id", None), "document": record}

    def open(self) -> None:
        pass  # connects at the first send

    def close(self) -> None:
        self._disconnect()
