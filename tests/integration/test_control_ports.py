"""No socket of the app that the pod's network reaches accepts ``POST /-/reload``; the loopback control port does.

The app runs on real gunicorn with its default addresses (APP_HOST=0.0.0.0, APP_PORT=8080,
CONTROL_PORT=8079) inside a private network namespace (tests/support/netns.py): there a
socket bound to 0.0.0.0 is as reachable as in a pod, and nothing outside this machine's
loopback can reach any of it. The test reads the sockets the process really listens on
from /proc instead of trusting the settings, then knocks on each one.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sidecar_common import content_version, read_config_files
from tests.support import ServiceProcess
from tests.support.kubelet import KubeletVolume
from tests.support.netns import ListeningSocket, PrivateNetwork, listening_sockets

API_PORT, CONTROL_PORT = 8080, 8079  # the contract's defaults: the test sets neither


@dataclass
class AppInAPod:
    network: PrivateNetwork
    process: ServiceProcess
    config_dir: Path

    def post(self, socket: ListeningSocket, path: str) -> tuple[int, str]:
        return self.network.request("POST", f"http://{socket.reachable_address}:{socket.port}{path}")


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppInAPod]:
    base = tmp_path_factory.mktemp("control-ports")
    config_dir = base / "config"
    KubeletVolume(config_dir).write({"app.yaml": "greeting: from inside the pod\n"})
    network = PrivateNetwork()
    process = ServiceProcess(
        network.command([sys.executable, "-m", "demo_app"]),
        {"APP_CONFIG_DIR": str(config_dir), "APP_LOG_FILE": "", "STATSD_HOST": "", "APP_WORKERS": "2"},
        base / "app.out",
    ).start()
    try:
        process.wait_for(
            lambda: network.request("GET", f"http://127.0.0.1:{API_PORT}/readyz")[0] == 200,
            "the app ready inside the private network",
            timeout=60,
            interval=0.2,
        )
        yield AppInAPod(network, process, config_dir)
    finally:
        process.stop()
        network.close()


def test_no_socket_but_the_loopback_control_port_accepts_a_reload(app: AppInAPod) -> None:
    sockets = listening_sockets(app.process.pid)
    outside = [s for s in sockets if not s.loopback_only]
    assert outside, f"nothing listens beyond loopback, the test would prove nothing: {sockets}"
    for socket in outside:
        status, body = app.post(socket, "/-/reload")
        unknown_path = app.post(socket, "/no-such-endpoint")
        assert (status, json.loads(body)) == (404, json.loads(unknown_path[1])), f"{socket} answered a reload"
        assert unknown_path[0] == 404

    [control] = [s for s in sockets if s.loopback_only]
    status, body = app.post(control, "/-/reload")
    assert status == 200, body
    assert json.loads(body)["version"] == content_version(read_config_files(app.config_dir))
    # Exactly the contract's two listeners, on the default addresses: nothing else was opened.
    assert {(s.address, s.port) for s in sockets} == {("0.0.0.0", API_PORT), ("127.0.0.1", CONTROL_PORT)}
