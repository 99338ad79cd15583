"""``make local``'s runner: the pod's contract on 127.0.0.1, restarts, and an ordered stop."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.labs.running_pod import ROOT, RUNNER, LocalPod
from tests.labs.sandbox import make_sandbox
from tests.support import free_tcp_port, wait_until

pytestmark = pytest.mark.integration

STOP_ORDER = ("app", "exporter", "log-sidecar", "config-sidecar")


@pytest.fixture
def own_pod(tmp_path: Path) -> Iterator[LocalPod]:
    """A pod of its own, since these tests kill its containers and stop it."""
    pod = LocalPod(make_sandbox(ROOT, tmp_path / "repo"), tmp_path / "local_pod.out").start()
    yield pod
    pod.stop()


def listening_addresses(port: int) -> set[str]:
    """The local addresses with a TCP socket in LISTEN state on ``port`` (from /proc/net/tcp{,6})."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in Path(table).read_text().splitlines()[1:]:
            local, state = row.split()[1], row.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:
                found.add(address)
    return found


def shipped_messages(pod: LocalPod) -> list[str]:
    path = pod.state_dir / "shipped-logs.jsonl"
    if not path.exists():
        return []
    return [json.dumps(json.loads(line)) for line in path.read_text().splitlines() if line.strip()]


def test_the_pod_runs_the_contract_on_loopback_and_stops_the_app_first(own_pod: LocalPod) -> None:
    # The config source is a kubelet-style volume, so the config sidecar sees real ..data swaps.
    source = own_pod.state_dir / "config-source"
    assert (source / "..data").is_symlink()
    assert os.readlink(source / "app.yaml") == "..data/app.yaml"
    # Nothing listens on other interfaces than 127.0.0.1 (0100007F in /proc/net/tcp).
    if Path("/proc/net/tcp").exists():
        for name, port in own_pod.ports.items():
            if name != "STATSD_PORT":
                assert listening_addresses(port) == {"0100007F"}, f"{name}={port}"

    # A request's log line travels app -> logs volume -> log sidecar -> the file sink.
    request_id = "local-pod-test-1"
    response = requests.get(own_pod.url("APP_PORT", "/api/greeting"), headers={"X-Request-ID": request_id}, timeout=10)
    assert response.status_code == 200
    wait_until(lambda: any(request_id in doc for doc in shipped_messages(own_pod)), timeout=30)

    assert own_pod.stop() == 0
    output = own_pod.process.output()
    stops = [line for line in output.splitlines() if re.search(r"\| stopping \S+ \(SIGTERM\)", line)]
    order = [re.search(r"stopping (\S+) ", line).group(1) for line in stops]  # type: ignore[union-attr]
    assert tuple(order) == STOP_ORDER, output
    for name in STOP_ORDER:
        assert re.search(rf"\| {name} stopped \(status 0\)", output), f"{name} did not stop cleanly:\n{output}"
    assert "local pod stopped\n" in output
    # The log sidecar stopped last, so it shipped what the app wrote while it shut down.
    app_lines = (own_pod.state_dir / "logs" / "app.log").read_text().splitlines()
    assert app_lines
    assert len(shipped_messages(own_pod)) >= len(app_lines)
    assert not list((own_pod.state_dir / "run").glob("*.pid"))


def test_a_killed_container_is_restarted_like_kubelet_does(local_pod: LocalPod) -> None:
    # The session's pod: the exporter comes back, and the labs that read its counters ran before.
    pid_file = local_pod.state_dir / "run" / "exporter.pid"
    old_pid = int(pid_file.read_text())
    os.killpg(old_pid, signal.SIGKILL)

    def restarted() -> bool:
        return pid_file.exists() and int(pid_file.read_text()) != old_pid

    wait_until(restarted, timeout=30, message="a new exporter process")
    wait_until(lambda: requests.get(local_pod.url("EXPORTER_PORT", "/livez"), timeout=2).ok, timeout=30)
    assert re.search(r"exporter exited \(status -9\); restarting in \d+s", local_pod.process.output())


def test_a_container_that_cannot_start_stops_the_pod_with_its_reason(tmp_path: Path) -> None:
    sandbox = make_sandbox(ROOT, tmp_path / "repo")
    pod = LocalPod(sandbox, tmp_path / "out", {"EXPORTER_MAX_METRICS": "lots"})
    pod.process.start()
    status = pod.process.proc.wait(120) if pod.process.proc else None
    pod.stop()
    output = pod.process.output()
    assert status == 1, output
    assert "EXPORTER_MAX_METRICS" in output
    assert "the pod did not start: exporter: exited with status 2" in output
    assert "log-sidecar stopped (status 0)" in output


def test_a_busy_port_fails_fast_and_says_how_to_move(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {**os.environ, "APP_PORT": str(port), "LOCAL_POD_PORT_OFFSET": str(free_tcp_port() - 8081)}
        env["LOCAL_POD_DIR"] = str(tmp_path / "state")
        result = subprocess.run(
            [sys.executable, str(RUNNER)], env=env, capture_output=True, text=True, timeout=60, check=False
        )
    assert result.returncode == 1
    assert f"APP_PORT={port}" in result.stdout
    assert "LOCAL_POD_PORT_OFFSET" in result.stdout


def test_help_lists_every_variable() -> None:
    result = subprocess.run([sys.executable, str(RUNNER), "--help"], capture_output=True, text=True, check=True)
    for variable in ("LOCAL_POD_DIR", "LOCAL_POD_PORT_OFFSET", "APP_PORT", "CONFIG_SIDECAR_PORT", "ES_URL"):
        assert variable in result.stdout
