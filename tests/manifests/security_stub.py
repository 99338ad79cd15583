"""A stand-in for the parts of Elasticsearch's security API and Kibana's data views API the setup sidecar uses.

Elasticsearch cannot run here. The stub keeps what a node keeps in its security index
(users, passwords, roles) and what Kibana keeps in Elasticsearch (data views), checks basic
auth on every call as the real node does, and can lose it all the way a node on an emptyDir
does when its pod is replaced (``wipe``).
"""

from __future__ import annotations

import base64
import json
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ELASTIC_PASSWORD = "elastic-secret"  # what the node is bootstrapped with (ELASTIC_PASSWORD)


class SecurityStub:
    """Elasticsearch (security endpoints, cluster health) and Kibana (status, data views) on two loopback ports."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: Counter[str] = Counter()  # "METHOD path" -> count
        self.es_up = True
        self.users: dict[str, tuple[str, list[str]]] = {}
        self.roles: dict[str, dict[str, Any]] = {}
        self.data_views: dict[str, dict[str, Any]] = {}
        self.wipe()
        self.es = self._server(self._es_route)
        self.kibana = self._server(self._kibana_route)

    def wipe(self) -> None:
        """A new, empty node: only the bootstrap `elastic` user; Kibana's saved objects gone with it."""
        with self.lock:
            self.users = {"elastic": (ELASTIC_PASSWORD, ["superuser"])}
            self.roles = {}
            self.data_views = {}

    def authenticates(self, user: str, password: str) -> bool:
        with self.lock:
            return self.users.get(user, ("", []))[0] == password != ""

    # HTTP plumbing.

    def _server(self, route: Any) -> ThreadingHTTPServer:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                with stub.lock:
                    stub.calls[f"{self.command} {self.path}"] += 1
                status, payload = route(self.command, self.path, self._user(), body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _user(self) -> tuple[str, str] | None:
                header = self.headers.get("Authorization", "")
                if not header.startswith("Basic "):
                    return None
                user, _, password = base64.b64decode(header[6:]).decode().partition(":")
                return user, password

            def do_GET(self) -> None:
                self._handle()

            def do_PUT(self) -> None:
                self._handle()

            def do_POST(self) -> None:
                self._handle()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return server

    def _es_route(self, method: str, path: str, user: tuple[str, str] | None, body: Any) -> tuple[int, dict[str, Any]]:
        if not self.es_up:
            return 503, {"error": "node starting"}
        if user is None or not self.authenticates(*user):
            return 401, {"error": {"type": "security_exception", "reason": "unable to authenticate user"}}
        name = user[0]
        if method == "GET" and path.startswith("/_cluster/health"):
            return 200, {"status": "green"}
        if method == "GET" and path == "/_security/_authenticate":
            return 200, {"username": name}
        if name != "elastic":
            return 403, {"error": {"type": "security_exception", "reason": "action is unauthorized"}}
        with self.lock:
            if method == "POST" and path == "/_security/user/kibana_system/_password":
                self.users["kibana_system"] = (body["password"], ["kibana_system"])
                return 200, {}
            if method == "PUT" and path.startswith("/_security/role/"):
                self.roles[path.rsplit("/", 1)[1]] = body
                return 200, {"role": {"created": True}}
            if method == "PUT" and path.startswith("/_security/user/"):
                self.users[path.rsplit("/", 1)[1]] = (body["password"], body["roles"])
                return 200, {"created": True}
        return 404, {"error": f"the stub has no {method} {path}"}

    def _kibana_route(
        self, method: str, path: str, user: tuple[str, str] | None, body: Any
    ) -> tuple[int, dict[str, Any]]:
        if method == "GET" and path == "/api/status":
            return 200, {"status": {"overall": {"level": "available"}}}
        if user is None or not self.authenticates(*user):
            return 401, {"message": "Unauthorized"}
        with self.lock:
            if method == "GET" and path.startswith("/api/data_views/data_view/"):
                view = self.data_views.get(path.rsplit("/", 1)[1])
                return (200, {"data_view": view}) if view else (404, {"message": "not found"})
            if method == "POST" and path == "/api/data_views/data_view":
                view = body["data_view"]
                if view["id"] in self.data_views:
                    return 409, {"message": "duplicate id"}
                self.data_views[view["id"]] = view
                return 200, {"data_view": view}
        return 404, {"message": f"the stub has no {method} {path}"}

    @property
    def es_url(self) -> str:
        return f"http://127.0.0.1:{self.es.server_address[1]}"

    @property
    def kibana_url(self) -> str:
        return f"http://127.0.0.1:{self.kibana.server_address[1]}"

    def stop(self) -> None:
        for server in (self.es, self.kibana):
            server.shutdown()
            server.server_close()
