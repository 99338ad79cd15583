"""The private-network helper the control-port tests rely on: it must see 0.0.0.0 as reachable."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.support import ServiceProcess
from tests.support.netns import PrivateNetwork, listening_sockets

pytestmark = pytest.mark.unit

# Not tests.support.http_stub: the server must run inside the private network namespace (a child
# process) and bind 0.0.0.0 as well as loopback, since the test is about how those raw sockets are seen.
SERVER = """
import http.server, socketserver, threading
class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.send_response(200 if self.server.server_address[0] == "127.0.0.1" else 404)
        self.end_headers()
    def log_message(self, *args):
        pass
public = http.server.HTTPServer(("0.0.0.0", 18080), Handler)
control = http.server.HTTPServer(("127.0.0.1", 18079), Handler)
threading.Thread(target=control.serve_forever, daemon=True).start()
public.serve_forever()
"""


def test_a_server_in_the_private_network_is_listed_and_reached(tmp_path: Path) -> None:
    network = PrivateNetwork()
    server = ServiceProcess(network.command([sys.executable, "-c", SERVER]), {}, tmp_path / "server.out").start()
    try:
        server.wait_for(lambda: len(listening_sockets(server.pid)) == 2, "both sockets listening", timeout=10)
        sockets = listening_sockets(server.pid)
        assert [(s.address, s.port, s.loopback_only) for s in sockets] == [
            ("127.0.0.1", 18079, True),
            ("0.0.0.0", 18080, False),
        ]
        public = sockets[1]
        assert network.request("POST", f"http://{public.reachable_address}:{public.port}/x") == (404, "")
        assert network.request("POST", "http://127.0.0.1:18079/x") == (200, "")
    finally:
        server.kill()
        network.close()
