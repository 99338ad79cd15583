"""A private network namespace, so a test can run a server bound to 0.0.0.0 as it is in a pod.

In a pod the app's API binds every interface; the tests may only ever listen on, and
talk to, loopback. A network namespace of our own has nothing but a loopback interface:
a server bound to 0.0.0.0 inside it is exactly as reachable as in a pod (its "outside"
is the namespace's own address) and unreachable from this machine's network. The
namespace is held open by a sleeping process; commands join it with ``nsenter``.

Needs util-linux's ``unshare``/``nsenter`` and the right to create namespaces: root
(CI; the fresh-machine container gets CAP_SYS_ADMIN and CAP_NET_ADMIN for it), or, for another user, the
unprivileged user namespaces Debian enables by default (the namespace then comes with a
user namespace of its own in which that user is root).
"""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

# Bring "lo" up from inside the new namespace (it starts down) without needing iproute2.
_HOLDER = """
import fcntl, signal, socket, struct
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
with socket.socket() as s:
    flags = struct.unpack("16sh", fcntl.ioctl(s, SIOCGIFFLAGS, struct.pack("16sh", b"lo", 0)))[1]
    fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sh", b"lo", flags | IFF_UP))
print("ready", flush=True)
signal.pause()
"""

# One HTTP request from inside the namespace; prints status and body as JSON.
_REQUEST = """
import json, sys, urllib.error, urllib.request
method, url, body = sys.argv[1], sys.argv[2], sys.argv[3].encode()
request = urllib.request.Request(url, data=body if method != "GET" else None, method=method)
try:
    with urllib.request.urlopen(request, timeout=10) as response:
        status, payload = response.status, response.read()
except urllib.error.HTTPError as error:
    status, payload = error.code, error.read()
print(json.dumps({"status": status, "body": payload.decode(errors="replace")}))
"""


@dataclass(frozen=True)
class ListeningSocket:
    """A TCP socket in LISTEN state: its bound address and port."""

    address: str
    port: int

    @property
    def loopback_only(self) -> bool:
        """True if only the pod's (namespace's) own localhost can reach it."""
        return ipaddress.ip_address(self.address).is_loopback

    @property
    def reachable_address(self) -> str:
        """Where a client inside the namespace connects to reach this socket."""
        if self.address in ("0.0.0.0", "::"):
            return "127.0.0.1" if self.address == "0.0.0.0" else "::1"
        return self.address


class PrivateNetwork:
    """A network namespace with only a loopback interface, held open until ``close()``."""

    def __init__(self) -> None:
        # Root makes a plain network namespace; anyone else one inside a user namespace.
        self._user_namespace = os.geteuid() != 0
        user = ["--user", "--map-root-user"] if self._user_namespace else []
        self._holder = subprocess.Popen(
            ["unshare", *user, "--net", "--", sys.executable, "-c", _HOLDER],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self._holder.stdout is not None
        line = self._holder.stdout.readline().strip()
        if line != "ready":
            self._holder.kill()
            _, err = self._holder.communicate(timeout=5)
            raise RuntimeError(f"cannot create a network namespace: {err.strip() or line}")

    def command(self, argv: Sequence[str]) -> list[str]:
        """``argv`` run inside the namespace."""
        if self._user_namespace:
            return ["nsenter", "--preserve-credentials", "--user", "--net", "-t", str(self._holder.pid), "--", *argv]
        return ["nsenter", f"--net=/proc/{self._holder.pid}/ns/net", "--", *argv]

    def request(self, method: str, url: str, body: bytes = b"") -> tuple[int, str]:
        """One HTTP request made from inside the namespace: (status, body)."""
        done = subprocess.run(
            self.command([sys.executable, "-c", _REQUEST, method, url, body.decode()]),
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        answer = json.loads(done.stdout)
        return int(answer["status"]), str(answer["body"])

    def close(self) -> None:
        self._holder.kill()
        self._holder.communicate(timeout=5)  # also closes the pipes


def listening_sockets(pid: int) -> list[ListeningSocket]:
    """Every TCP socket process ``pid`` holds in LISTEN state, read from /proc (its own namespace's view)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    sockets = []
    for table, width in (("tcp", 4), ("tcp6", 16)):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state != "0A" or inode not in inodes:  # 0A = TCP_LISTEN
                continue
            raw_address, raw_port = local.split(":")
            sockets.append(ListeningSocket(_address(raw_address, width), int(raw_port, 16)))
    return sorted(sockets, key=lambda s: (s.port, s.address))


def _address(hex_address: str, width: int) -> str:
    """/proc/net/tcp* print addresses as host-order 32-bit words in hex."""
    raw = bytes.fromhex(hex_address)
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, width, 4))
    return str(ipaddress.ip_address(words))
