"""The admin HTTP server every sidecar exposes: /livez, /readyz, /metrics and extras.

Standard library ``ThreadingHTTPServer`` on purpose: a sidecar's admin port
serves a probe every few seconds and a scrape every 15 s, and a full web
framework would cost more memory than the sidecar's real work.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import logging
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from sidecar_common.heartbeat import Heartbeat

logger = logging.getLogger(__name__)

MAX_BODY = 1 << 20


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


def json_response(payload: Any, status: int = 200) -> Response:
    body = json.dumps(payload, indent=None, default=str).encode() + b"\n"
    return Response(status, body, "application/json")


Handler = Callable[[Request], Response]


class AdminServer:
    """Serve probes and metrics on ``host:port`` in a daemon thread.

    ``/livez`` is 200 only while every registered heartbeat is fresh; ``/readyz``
    only once ``ready()`` returns true; ``/metrics`` renders ``registry`` with
    text/OpenMetrics negotiation and gzip.
    """

    def __init__(
        self,
        host: str,
        port: int,
        registry: CollectorRegistry,
        heartbeats: list[Heartbeat] | tuple[Heartbeat, ...] = (),
        ready: Callable[[], bool] = lambda: True,
    ) -> None:
        self.registry = registry
        self.heartbeats = list(heartbeats)
        self.ready = ready
        self.routes: dict[tuple[str, str], Handler] = {
            ("GET", "/livez"): self._livez,
            ("GET", "/readyz"): self._readyz,
            ("GET", "/metrics"): self._metrics,
        }
        self._httpd = ThreadingHTTPServer((host, port), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    def route(self, method: str, path: str, handler: Handler) -> None:
        self.routes[(method.upper(), path)] = handler

    def start(self) -> None:
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="admin-http", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        # serve_forever() notices shutdown only at its next 0.5 s poll; a throwaway
        # connection wakes its selector at once, so a sidecar's exit is not delayed.
        closer = threading.Thread(target=self._httpd.shutdown, name="admin-http-stop", daemon=True)
        closer.start()
        host, port = self._httpd.server_address[:2]
        while closer.is_alive():
            with contextlib.suppress(OSError), socket.create_connection((str(host), int(port)), timeout=0.2):
                pass
            closer.join(0.02)
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    # Built-in endpoints -------------------------------------------------
    def _livez(self, request: Request) -> Response:
        stale = {hb.name: hb.age() for hb in self.heartbeats if not hb.alive()}
        if stale:
            return json_response({"status": "dead", "stale_heartbeats": stale}, 503)
        return json_response({"status": "ok"})

    def _readyz(self, request: Request) -> Response:
        if self.ready():
            return json_response({"status": "ready"})
        return json_response({"status": "not ready"}, 503)

    def _metrics(self, request: Request) -> Response:
        encoder, content_type = choose_encoder(request.headers.get("accept", ""))
        return Response(200, encoder(self.registry), content_type)

    # Plumbing -------------------------------------------------------------
    def _dispatch(self, request: Request) -> Response:
        handler = self.routes.get((request.method, request.path))
        if handler is None:
            allowed = sorted(m for (m, p) in self.routes if p == request.path)
            if allowed:
                return json_response(
                    {"error": "method not allowed", "detail": f"{request.path} accepts {', '.join(allowed)}"}, 405
                )
            return json_response({"error": "not found", "detail": request.path}, 404)
        try:
            return handler(request)
        except Exception:  # the admin port must survive a failing handler
            logger.exception("admin handler failed", extra={"path": request.path})
            return json_response({"error": "internal error", "detail": request.path}, 500)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "sidecar-admin"

            def _serve(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_BODY:
                    self._send(json_response({"error": "payload too large", "detail": f"max {MAX_BODY} bytes"}, 413))
                    self.close_connection = True
                    return
                body = self.rfile.read(length) if length else b""
                request = Request(
                    method=self.command,
                    path=parts.path,
                    query=parse_qs(parts.query),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                )
                self._send(server._dispatch(request), request)

            def _send(self, response: Response, request: Request | None = None) -> None:
                body = response.body
                headers = dict(response.headers)
                accepts_gzip = request is not None and "gzip" in request.headers.get("accept-encoding", "")
                if accepts_gzip and len(body) > 1024:
                    body = gzip.compress(body, compresslevel=5)
                    headers["Content-Encoding"] = "gzip"
                self.send_response(response.status)
                self.send_header("Content-Type", response.content_type)
                self.send_header("Content-Length", str(len(body)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = _serve  # noqa: N815 - http.server names

            def log_message(self, format: str, *args: Any) -> None:
                pass  # probes every few seconds would drown the sidecar's own logs

        return _Handler
