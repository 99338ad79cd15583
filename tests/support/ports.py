"""Free ports on 127.0.0.1 for services the tests start.

The kernel may hand the same free port to two bind(0) calls in a row once the
first socket is closed, and a test that asks for several ports (a whole local
pod) then starts two services on one port. So each port is handed out once per
test process.
"""

from __future__ import annotations

import socket
import threading

_handed_out: set[tuple[int, int]] = set()
_lock = threading.Lock()


def _free_port(kind: socket.SocketKind) -> int:
    with _lock:
        while True:
            with socket.socket(socket.AF_INET, kind) as sock:
                sock.bind(("127.0.0.1", 0))
                port = int(sock.getsockname()[1])
            if (kind, port) not in _handed_out:
                _handed_out.add((kind, port))
                return port


def free_tcp_port() -> int:
    return _free_port(socket.SOCK_STREAM)


def free_udp_port() -> int:
    return _free_port(socket.SOCK_DGRAM)
