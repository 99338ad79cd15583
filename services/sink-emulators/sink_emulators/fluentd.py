"""A Fluentd forward-protocol (v1) receiver for tests: msgpack over TCP, every carrier mode, acks.

Decodes what ``in_forward`` accepts — Message ``[tag, time, record, option?]``, Forward
``[tag, [[time, record], ...], option?]``, PackedForward ``[tag, bin, option?]`` and
CompressedPackedForward (the same with ``{"compressed": "gzip"}``) — with times as integers,
floats or the EventTime ext type (type 0: big-endian uint32 seconds + uint32 nanoseconds).
An option ``{"chunk": id}`` is answered with ``{"ack": id}`` once the events are stored.
A ``nil`` message is a heartbeat. Anything else is a protocol error: it is recorded in
``errors()``, logged, and the connection is closed, as ``in_forward`` does.

Not supported: the handshake phase (HELO/PING/PONG shared-key auth), TLS, UDP heartbeats,
and in_forward's JSON convenience input.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import logging
import signal
import socket
import socketserver
import struct
import sys
import threading
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from types import FrameType, TracebackType
from typing import Any, NamedTuple

import msgpack

logger = logging.getLogger("sink_emulators.fluentd")

_RECV_BYTES = 256 * 1024
_MAX_BUFFER = 64 * 1024 * 1024
_NANOS = 1_000_000_000
# How often the accept loop checks for stop(): short, so stopping (once per test) is quick.
_POLL_SECONDS = 0.02


class EventTime(NamedTuple):
    """The forward protocol's nanosecond timestamp (msgpack ext type 0)."""

    seconds: int
    nanoseconds: int


class ForwardProtocolError(ValueError):
    """A message that is not valid forward protocol; ``reason`` says what is wrong with it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ForwardEvent:
    """One received event; ``mode`` is the carrier it came in, ``event_time`` whether its time was an EventTime."""

    tag: str
    time_ns: int
    record: dict[str, Any]
    mode: str
    event_time: bool

    @property
    def time(self) -> float:
        """Seconds since the epoch."""
        return self.time_ns / _NANOS


def _ext_hook(code: int, data: bytes) -> Any:
    if code == 0 and len(data) == 8:
        seconds, nanoseconds = struct.unpack(">II", data)
        return EventTime(seconds, nanoseconds)
    return msgpack.ExtType(code, data)


def _unpacker() -> msgpack.Unpacker:
    # surrogateescape keeps a PackedForward payload sent as msgpack str (old clients) recoverable as bytes.
    return msgpack.Unpacker(
        raw=False, ext_hook=_ext_hook, unicode_errors="surrogateescape", max_buffer_size=_MAX_BUFFER
    )


def _time_ns(value: Any) -> tuple[int, bool]:
    """Return (nanoseconds since the epoch, whether it was an EventTime) for an event's time."""
    if isinstance(value, EventTime):
        return value.seconds * _NANOS + value.nanoseconds, True
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ForwardProtocolError(f"event time must be an integer, a float or an EventTime, got {value!r}")
    return int(value * _NANOS) if isinstance(value, float) else value * _NANOS, False


def _entry(entry: Any, tag: str, mode: str) -> ForwardEvent:
    if not isinstance(entry, list | tuple) or len(entry) != 2:
        raise ForwardProtocolError(f"an entry must be [time, record], got {entry!r}")
    time_value, record = entry
    if not isinstance(record, dict):
        raise ForwardProtocolError(f"a record must be a map, got {type(record).__name__}")
    nanos, event_time = _time_ns(time_value)
    return ForwardEvent(tag, nanos, record, mode, event_time)


def decode_message(message: Any) -> tuple[list[ForwardEvent], dict[str, Any]]:
    """Decode one forward-protocol message into (events, option); a heartbeat (nil) has neither."""
    if message is None:
        return [], {}
    if not isinstance(message, list | tuple) or len(message) < 2:
        raise ForwardProtocolError(f"a message must be an array of at least [tag, ...], got {message!r}")
    tag, second = message[0], message[1]
    if not isinstance(tag, str):
        raise ForwardProtocolError(f"the tag must be a string, got {tag!r}")
    if isinstance(second, EventTime | int | float) and not isinstance(second, bool):
        if len(message) not in (3, 4):
            raise ForwardProtocolError(f"Message mode is [tag, time, record, option?], got {len(message)} elements")
        option = _option(message[3] if len(message) == 4 else None)
        return [_entry([second, message[2]], tag, "message")], option
    if len(message) not in (2, 3):
        raise ForwardProtocolError(f"Forward modes are [tag, entries, option?], got {len(message)} elements")
    option = _option(message[2] if len(message) == 3 else None)
    if isinstance(second, list | tuple):
        return [_entry(entry, tag, "forward") for entry in second], option
    if isinstance(second, str):
        second = second.encode("utf-8", "surrogateescape")
    if not isinstance(second, bytes):
        raise ForwardProtocolError(f"entries must be an array or a binary event stream, got {type(second).__name__}")
    mode = "packed_forward"
    compressed = option.get("compressed")
    if compressed is not None:
        if compressed != "gzip":
            raise ForwardProtocolError(f"unsupported compression {compressed!r} (only gzip is defined)")
        try:
            second = gzip.decompress(second)  # concatenated gzip members are one stream
        except (OSError, EOFError, zlib.error) as exc:
            raise ForwardProtocolError(f"CompressedPackedForward payload is not gzip: {exc}") from None
        mode = "compressed_packed_forward"
    stream = _unpacker()
    stream.feed(second)
    try:
        entries = list(stream)
    except (ValueError, msgpack.UnpackException) as exc:
        raise ForwardProtocolError(f"{mode} payload is not a msgpack event stream: {exc}") from None
    events = [_entry(entry, tag, mode) for entry in entries]
    size = option.get("size")
    if size is not None and size != len(events):
        logger.warning("option size=%s but %d events in the %s payload", size, len(events), mode)
    return events, option


def _option(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ForwardProtocolError(f"the option must be a map, got {value!r}")
    return value


class _ForwardServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], receiver: FluentForwardReceiver) -> None:
        self.receiver = receiver
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _ForwardHandler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Log a connection's failure instead of printing a traceback to stderr."""
        logger.error("unexpected failure serving %s", client_address, exc_info=sys.exc_info())


class _ForwardHandler(socketserver.BaseRequestHandler):
    """Read msgpack messages off one connection until the client closes it or breaks the protocol."""

    server: _ForwardServer
    request: socket.socket

    def handle(self) -> None:
        sock = self.request
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.server.connections_lock:
            self.server.connections.add(sock)
        try:
            self._read(sock)
        except OSError as exc:
            logger.debug("connection ended: %s", exc)
        finally:
            with self.server.connections_lock:
                self.server.connections.discard(sock)

    def _read(self, sock: socket.socket) -> None:
        receiver = self.server.receiver
        unpacker = _unpacker()
        while True:
            data = sock.recv(_RECV_BYTES)
            if not data:
                return
            unpacker.feed(data)
            try:
                for message in unpacker:
                    receiver.accept(message, sock)
            except (ValueError, msgpack.UnpackException) as exc:  # ForwardProtocolError is a ValueError
                receiver.reject(str(exc))
                return


class FluentForwardReceiver:
    """Receive forward-protocol events on ``host:port`` (port 0 picks a free one at the first start).

    ``events()`` returns what arrived, in order. ``send_acks = False`` makes it swallow acks
    (to test a client's ack timeout). ``stop()``/``start()`` rebinds the same port and keeps
    the events, so a test can take the receiver away and bring it back.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, send_acks: bool = True) -> None:
        self.host = host
        self.send_acks = send_acks
        self._port = port
        self._lock = threading.Lock()
        self._events: list[ForwardEvent] = []
        self._acks: list[str] = []
        self._errors: list[str] = []
        self._heartbeats = 0
        self._server: _ForwardServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> FluentForwardReceiver:
        """Listen and serve in a daemon thread; return self."""
        if self._server is not None:
            return self
        server = _ForwardServer((self.host, self._port), self)
        self._port = int(server.server_address[1])
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": _POLL_SECONDS},
            name=f"fluent-forward-{self._port}",
            daemon=True,
        )
        self._thread.start()
        logger.info("fluent forward receiver listening on %s:%d", self.host, self._port)
        return self

    def stop(self) -> None:
        """Stop listening and close every open connection; received events are kept."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        with server.connections_lock:
            connections = list(server.connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        server.server_close()
        if thread is not None:
            thread.join(10)

    def __enter__(self) -> FluentForwardReceiver:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self._port

    def accept(self, message: Any, sock: socket.socket) -> None:
        """Store the events of one message, then ack it if its option asked for it."""
        events, option = decode_message(message)
        chunk = option.get("chunk")
        with self._lock:
            if message is None:
                self._heartbeats += 1
            self._events.extend(events)
            if chunk is not None and self.send_acks:
                self._acks.append(str(chunk))
        if chunk is not None and self.send_acks:
            sock.sendall(msgpack.packb({"ack": chunk}))

    def reject(self, reason: str) -> None:
        """Record a protocol error; the caller closes the connection."""
        with self._lock:
            self._errors.append(reason)
        logger.warning("closing a forward connection after a protocol error: %s", reason)

    def events(self, tag: str | None = None) -> list[ForwardEvent]:
        """Every event received so far (of ``tag`` if given), in arrival order."""
        with self._lock:
            return [event for event in self._events if tag is None or event.tag == tag]

    def records(self, tag: str | None = None) -> list[dict[str, Any]]:
        """The records of ``events(tag)``."""
        return [event.record for event in self.events(tag)]

    def acks(self) -> list[str]:
        """The chunk ids acknowledged so far."""
        with self._lock:
            return list(self._acks)

    def errors(self) -> list[str]:
        """Protocol errors seen so far (each closed its connection)."""
        with self._lock:
            return list(self._errors)

    @property
    def heartbeats(self) -> int:
        return self._heartbeats

    def clear(self) -> None:
        """Forget received events, acks, errors and heartbeats."""
        with self._lock:
            self._events.clear()
            self._acks.clear()
            self._errors.clear()
            self._heartbeats = 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run a receiver that logs a summary line per message until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(prog="python -m sink_emulators.fluentd", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    parser.add_argument("--port", type=int, default=24224, help="port to bind (default: %(default)s)")
    args = parser.parse_args(argv)
    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(name)s %(message)s")
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    receiver = FluentForwardReceiver(args.host, args.port).start()
    seen = 0
    while not stop.wait(1.0):
        events = receiver.events()
        if len(events) > seen:
            logger.info("received %d events (%d in total)", len(events) - seen, len(events))
            seen = len(events)
    receiver.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
