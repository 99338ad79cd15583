"""An HTTP server on 127.0.0.1 that answers from a script and records every request.

It stands in for what a service under test calls: an upstream app, the app's /stats, the
app's ``POST /-/reload``, the app behind a mesh proxy. The test scripts the answers
(status sequences, delays, bodies computed from the request) and reads what was sent.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Request:
    """One request as received; header names are lower-case, ``path`` keeps its query string."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def route(self) -> str:
        """The path without its query string."""
        return urlsplit(self.path).path

    def json(self) -> Any:
        return json.loads(self.body or b"null")


@dataclass(frozen=True)
class Reply:
    """One answer, sent after ``delay`` seconds (cut short when the stub stops)."""

    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    delay: float = 0.0


def json_reply(payload: Any, status: int = 200, delay: float = 0.0) -> Reply:
    return Reply(status, json.dumps(payload).encode(), delay=delay)


Answer = Reply | Callable[[Request], Reply]
NOT_FOUND = json_reply({"error": "not found"}, 404)


class HttpStub:
    """Answers each request from the script of its method and path, else from the default script.

    ``HttpStub(*answers)`` sets the default script (404 without one); ``answer()`` replaces a
    script. A script gives its answers in turn and then repeats the last one (``cycle=True``:
    starts over). ``requests`` lists every request in arrival order. ``stop()`` closes the
    socket, so calls are refused until ``start()`` listens again on the same port.
    """

    def __init__(self, *answers: Answer, port: int = 0, keep_alive: bool = False) -> None:
        self.port = port
        self.keep_alive = keep_alive  # HTTP/1.1 connections that stay open, as Envoy's to an app
        self.requests: list[Request] = []
        self._scripts: dict[tuple[str | None, str | None], Iterator[Answer]] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self.answer(*answers or (NOT_FOUND,))

    def answer(self, *answers: Answer, method: str | None = None, path: str | None = None, cycle: bool = False) -> None:
        """Answer requests of ``method`` to ``path`` (each None: any; ``path`` without a query) with ``answers``."""
        if not answers:
            raise ValueError("a script needs at least one answer")
        script = itertools.cycle(answers) if cycle else itertools.chain(answers[:-1], itertools.repeat(answers[-1]))
        with self._lock:
            self._scripts[(method, path)] = script

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> HttpStub:
        assert self._server is None, "the stub is already listening"
        self._stopping.clear()
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop listening; delayed answers go out at once."""
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> HttpStub:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def _reply(self, request: Request) -> Reply:
        self.requests.append(request)
        with self._lock:
            for key in ((request.method, request.route), (None, request.route), (request.method, None), (None, None)):
                if key in self._scripts:
                    answer = next(self._scripts[key])
                    break
        reply = answer if isinstance(answer, Reply) else answer(request)
        if reply.delay:
            self._stopping.wait(reply.delay)
        return reply

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1" if stub.keep_alive else "HTTP/1.0"

            def do_GET(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {name.lower(): value for name, value in self.headers.items()}
                reply = stub._reply(Request(self.command, self.path, headers, body))
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", reply.content_type)
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the caller stopped waiting (a timeout test): expected

            do_POST = do_PUT = do_PATCH = do_DELETE = do_GET  # noqa: N815 (http.server looks up do_<METHOD>)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler
