"""The admin HTTP server every sidecar exposes: /livez, /readyz, /metrics and extras.

Standard library ``ThreadingHTTPServer`` on purpose: a sidecar's admin port
serves a probe every few seconds and a scrape every 15 s, and a full web
framework would cost more memory than the sidecar's real work.

Two listeners at most: the read-only admin port (probes, metrics, status; reached
from outside the pod) and, for services with state-changing endpoints, a control
port bound to the loopback address only. A control route asked for on the admin
port gets the same 404 as a route that does not exist.
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

from sidecar_common.admin_settings import CONTROL_HOST
from sidecar_common.heartbeat import Heartbeat
from sidecar_common.lifecycle import StartupError

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


@dataclass(frozen=True)
class Endpoint:
    """Where a listener binds, and the variable a startup error names when it cannot."""

    host: str
    port: int
    variable: str = "ADMIN_PORT"

    @classmethod
    def control(cls, port: int, variable: str = "CONTROL_PORT") -> Endpoint:
        return cls(CONTROL_HOST, port, variable)


class _Listener:
    """One bound ThreadingHTTPServer and the thread serving it."""

    def __init__(self, endpoint: Endpoint, handler: type[BaseHTTPRequestHandler], name: str) -> None:
        try:
            self.httpd = ThreadingHTTPServer((endpoint.host, endpoint.port), handler)
        except OSError as exc:
            raise StartupError(endpoint.variable, f"{endpoint.host}:{endpoint.port}: {exc.strerror or exc}") from None
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, name=name, daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def close(self) -> None:
        # serve_forever() notices shutdown only at its next 0.5 s poll; a throwaway
        # connection wakes its selector at once, so a sidecar's exit is not delayed.
        closer = threading.Thread(target=self.httpd.shutdown, name="admin-http-stop", daemon=True)
        closer.start()
        host, port = self.httpd.server_address[:2]
        while closer.is_alive():
            with contextlib.suppress(OSError), socket.create_connection((str(host), int(port)), timeout=0.2):
                pass
            closer.join(0.02)
        self.httpd.server_close()
        self.thread.join(timeout=5)


class AdminServer:
    """Serve probes and metrics on the admin endpoint (and control routes on loopback) in daemon threads.

    ``/livez`` is 200 only while every registered heartbeat is fresh; ``/readyz``
    only once ``ready()`` returns true; ``/metrics`` renders ``registry`` with
    text/OpenMetrics negotiation and gzip. Nothing binds before ``start()``.
    """

    def __init__(
        self,
        endpoint: Endpoint,
        registry: CollectorRegistry,
        heartbeats: list[Heartbeat] | tuple[Heartbeat, ...] = (),
        ready: Callable[[], bool] = lambda: True,
        control: Endpoint | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.control_endpoint = control
        self.registry = registry
        self.heartbeats = list(heartbeats)
        self.ready = ready
        self.routes: dict[tuple[str, str], Handler] = {
            ("GET", "/livez"): self._livez,
            ("GET", "/readyz"): self._readyz,
            ("GET", "/metrics"): self._metrics,
        }
        self.control_routes: dict[tuple[str, str], Handler] = {}
        self._listeners: list[_Listener] = []

    @property
    def port(self) -> int:
        """The bound admin port (useful when the endpoint asked for port 0)."""
        return self._listeners[0].port

    @property
    def control_port(self) -> int | None:
        return self._listeners[1].port if len(self._listeners) > 1 else None

    def route(self, method: str, path: str, handler: Handler, *, control: bool = False) -> None:
        """Serve ``handler``; a ``control`` route only on the loopback control listener."""
        if control and self.control_endpoint is None:
            raise ValueError(f"{method} {path} changes state: give the server a control endpoint")
        (self.control_routes if control else self.routes)[(method.upper(), path)] = handler

    def start(self) -> None:
        """Bind and serve; StartupError names the variable of a port that cannot be bound."""
        if self._listeners:
            return
        self._listeners.append(_Listener(self.endpoint, self._handler_class(self.routes), "admin-http"))
        if self.control_endpoint is not None:
            try:
                self._listeners.append(
                    _Listener(self.control_endpoint, self._handler_class(self.control_routes), "control-http")
                )
            except StartupError:
                self.close()
                raise

    def close(self) -> None:
        """Stop serving and release the ports; safe to call twice or before ``start()``."""
        listeners, self._listeners = self._listeners, []
        for listener in listeners:
            listener.close()

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
    def _dispatch(self, routes: dict[tuple[str, str], Handler], request: Request) -> Response:
        handler = routes.get((request.method, request.path))
        if handler is None:
            allowed = sorted(m for (m, p) in routes if p == request.path)
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

    def _handler_class(self, routes: dict[tuple[str, str], Handler]) -> type[BaseHTTPRequestHandler]:
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
                self._send(server._dispatch(routes, request), request)

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
