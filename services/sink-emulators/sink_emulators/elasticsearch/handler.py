"""HTTP/1.1 transport: keep-alive connections, Content-Length and chunked bodies, gzip both ways.

Standard library only (the emulator's container has nothing else). Each response goes out in
one ``sendall`` with TCP_NODELAY set, so a keep-alive client never waits on Nagle's algorithm
and delayed ACKs between the headers and the body.
"""

from __future__ import annotations

import contextlib
import gzip
import logging
import socket
import sys
import threading
import zlib
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from .api import ElasticsearchApi, Reply, Request, json_reply
from .errors import cause, request_error

logger = logging.getLogger("sink_emulators.elasticsearch")

DEFAULT_MAX_CONTENT_LENGTH = 100 * 1024 * 1024  # Elasticsearch's http.max_content_length
_GZIP_MIN_BYTES = 1024  # smaller responses are not worth compressing


class BodyError(Exception):
    """The request body cannot be read or decoded; ``reply`` says so and the connection is closed."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.status)
        self.reply = reply


class EmulatorHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server that knows its open connections, so stopping it hangs them all up."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(
        self, address: tuple[str, int], api: ElasticsearchApi, max_content_length: int, gzip_responses: bool
    ) -> None:
        self.api = api
        self.max_content_length = max_content_length
        self.gzip_responses = gzip_responses
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, BulkRequestHandler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Log a connection's failure instead of printing a traceback; resets by clients are routine."""
        error = sys.exc_info()[1]
        if isinstance(error, OSError):
            logger.debug("connection from %s ended: %s", client_address, error)
        else:
            logger.error("unexpected failure serving %s", client_address, exc_info=sys.exc_info())

    def track(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.add(connection)

    def untrack(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(connection)

    def hang_up_all(self) -> None:
        """Shut down every open connection (idle keep-alive ones included) so clients see the outage."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by the peer
                connection.shutdown(socket.SHUT_RDWR)


class BulkRequestHandler(BaseHTTPRequestHandler):
    """Read one request, hand it to the API, write its reply; repeat while the connection lives."""

    protocol_version = "HTTP/1.1"
    server_version = "es-emulator"
    server: EmulatorHTTPServer

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass  # the client went away while the last bytes were flushed
        finally:
            self.server.untrack(self.connection)

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def do_HEAD(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: object) -> None:
        logger.debug("%s %s", self.address_string(), format % args)

    def _serve(self) -> None:
        try:
            wire, body = self._read_body()
        except BodyError as exc:
            self.close_connection = True
            self._send(exc.reply)
            return
        except (OSError, ValueError) as exc:
            logger.info("dropping a connection whose request body could not be read: %s", exc)
            self.close_connection = True
            return
        split = urlsplit(self.path)
        request = Request(
            method=self.command,
            path=split.path or "/",
            query=dict(parse_qsl(split.query, keep_blank_values=True)),
            headers={name.lower(): value for name, value in self.headers.items()},
            body=body,
            wire_bytes=wire,
        )
        try:
            reply = self.server.api.handle(request)
        except Exception:
            logger.exception("the emulator failed on %s %s", self.command, self.path)
            reply = json_reply(500, request_error(500, cause("exception", "emulator bug; see its log")))
        if reply is None:  # the ``down`` fault: hang up without answering
            self.close_connection = True
            return
        self._send(reply)

    def _read_body(self) -> tuple[int, bytes]:
        """Return (bytes on the wire, decoded body), enforcing the content-length limit."""
        limit = self.server.max_content_length
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            wire = self._read_chunked(limit)
        else:
            declared = self.headers.get("Content-Length") or "0"
            try:
                length = int(declared)
            except ValueError:
                length = -1
            if length < 0:
                raise BodyError(_bad_body(400, f"invalid Content-Length [{declared}]"))
            if length > limit:
                raise BodyError(Reply(HTTPStatus.REQUEST_ENTITY_TOO_LARGE))
            wire = self.rfile.read(length) if length else b""
            if len(wire) < length:
                raise ValueError(f"body ended after {len(wire)} of {length} bytes")
        encoding = self.headers.get("Content-Encoding", "identity").strip().lower()
        if encoding in ("", "identity") or not wire:
            return len(wire), wire
        try:
            if encoding in ("gzip", "x-gzip"):
                body = gzip.decompress(wire)
            elif encoding == "deflate":
                body = zlib.decompress(wire)
            else:
                raise BodyError(_bad_body(400, f"unsupported Content-Encoding [{encoding}]"))
        except (OSError, EOFError, zlib.error) as exc:
            raise BodyError(_bad_body(400, f"failed to decompress the {encoding} request body: {exc}")) from None
        if len(body) > limit:
            raise BodyError(Reply(HTTPStatus.REQUEST_ENTITY_TOO_LARGE))
        return len(wire), body

    def _read_chunked(self, limit: int) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            size_line = self.rfile.readline(1024)
            if not size_line:
                raise ValueError("connection closed inside a chunked body")
            try:
                size = int(size_line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise BodyError(_bad_body(400, f"invalid chunk size line {size_line[:40]!r}")) from None
            if size == 0:
                while self.rfile.readline(8192) not in (b"\r\n", b"\n", b""):
                    pass  # trailers carry nothing the emulator needs
                return b"".join(parts)
            total += size
            if total > limit:
                raise BodyError(Reply(HTTPStatus.REQUEST_ENTITY_TOO_LARGE))
            chunk = self.rfile.read(size)
            if len(chunk) < size:
                raise ValueError("connection closed inside a chunk")
            parts.append(chunk)
            self.rfile.readline(8)  # the CRLF after each chunk

    def _send(self, reply: Reply) -> None:
        body = reply.body
        headers = [("X-elastic-product", "Elasticsearch")] if reply.from_elasticsearch else []
        headers += reply.headers
        if body or self.command != "HEAD":
            headers.append(("content-type", reply.content_type))
        if (
            self.server.gzip_responses
            and self.command != "HEAD"
            and len(body) >= _GZIP_MIN_BYTES
            and "gzip" in self.headers.get("Accept-Encoding", "").lower()
        ):
            body = gzip.compress(body, compresslevel=1)
            headers.append(("content-encoding", "gzip"))
        headers.append(("content-length", str(len(body))))
        if self.close_connection:
            headers.append(("connection", "close"))
        head = f"{self.protocol_version} {reply.status} {_phrase(reply.status)}\r\n"
        head += "".join(f"{name}: {value}\r\n" for name, value in headers) + "\r\n"
        payload = head.encode("latin-1") + (b"" if self.command == "HEAD" else body)
        try:
            self.wfile.write(payload)
        except OSError as exc:  # the client gave up (e.g. timed out during an injected delay)
            logger.debug("client went away before the reply was sent: %s", exc)
            self.close_connection = True


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def _bad_body(status: int, reason: str) -> Reply:
    return json_reply(status, request_error(status, cause("illegal_argument_exception", reason)))
