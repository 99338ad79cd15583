"""``make local``'s runner: the pod's contract on 127.0.0.1, restarts, and an ordered stop."""

from __future__ import annotations

import http.client
import importlib.util
import json
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from mesh_proxy import ca
from tests.labs.running_pod import ROOT, RUNNER, LocalPod
from tests.labs.sandbox import make_sandbox
from tests.support import wait_until

pytestmark = pytest.mark.integration

# Ctrl-C stops the web pod first (it calls the api pod), and in each pod the app first, its Envoy
# right after it (it carried the app's last calls), the log sidecar late (it ships the last lines).
STOP_ORDER = (
    "web/app",
    "web/mesh-proxy",
    "web/log-sidecar",
    "web/config-sidecar",
    "app",
    "mesh-proxy",
    "exporter",
    "log-sidecar",
    "config-sidecar",
)
API_IDENTITY = "spiffe://sidecar-lab.local/ns/sidecar-lab/sa/demo-app"  # k8s/base/serviceaccounts.yaml
WEB_IDENTITY = "spiffe://sidecar-lab.local/ns/sidecar-lab/sa/web"
LOOPBACK = "0100007F"  # 127.0.0.1 as /proc/net/tcp writes it


@pytest.fixture
def own_pod(tmp_path: Path) -> Iterator[LocalPod]:
    """`make local` of its own, as a reader runs it, since the test stops it with Ctrl-C."""
    pod = LocalPod(make_sandbox(ROOT, tmp_path / "repo"), tmp_path / "local_pod.out", via_make=True).start()
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


def shipped_messages(pod: LocalPod, pod_dir: str = "") -> list[str]:
    path = pod.state_dir / pod_dir / "shipped-logs.jsonl"
    if not path.exists():
        return []
    return [json.dumps(json.loads(line)) for line in path.read_text().splitlines() if line.strip()]


def plaintext_get(port: int, path: str) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", path)
        return connection.getresponse().status
    finally:
        connection.close()


def shipped(pod: LocalPod, pod_dir: str, text: str) -> bool:
    return any(text in doc for doc in shipped_messages(pod, pod_dir))


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_make_local_runs_both_pods_on_loopback_and_ctrl_c_stops_them_in_order(own_pod: LocalPod) -> None:
    # The config sources are kubelet-style volumes, so the config sidecars see real ..data swaps.
    for pod_dir in ("", "web"):
        source = own_pod.state_dir / pod_dir / "config-source"
        assert (source / "..data").is_symlink()
        assert os.readlink(source / "app.yaml") == "..data/app.yaml"
        assert os.readlink(source / "mesh") == "..data/mesh"
    # Nothing listens on other interfaces than 127.0.0.1.
    if Path("/proc/net/tcp").exists():
        for name, port in own_pod.ports.items():
            if name != "STATSD_PORT":
                assert listening_addresses(port) == {LOOPBACK}, f"{name}={port}"

    # A request's log line travels app -> logs volume -> log sidecar -> the file sink, in both pods.
    request_id = "local-pod-test-1"
    response = requests.get(own_pod.url("WEB_PORT", "/api/greeting"), headers={"X-Request-ID": request_id}, timeout=10)
    assert response.status_code == 200, response.text
    assert response.json()["upstream"]["service"] == "demo-app"
    wait_until(lambda: shipped(own_pod, "", request_id), 30, message=f"{request_id} shipped by the api pod")
    wait_until(lambda: shipped(own_pod, "web", request_id), 30, message=f"{request_id} shipped by the web pod")

    # Every container, Envoys included, has a pid file; Ctrl-C in make's terminal stops them all.
    pids = {str(path.relative_to(own_pod.state_dir)): int(path.read_text()) for path in own_pod.pid_files}
    envoys = [pids["run/mesh-proxy.pid"], pids["web/run/mesh-proxy.pid"]]
    assert all(Path(f"/proc/{pid}/comm").read_text().strip() == "envoy" for pid in envoys)

    own_pod.interrupt()
    output = own_pod.process.output()
    stops = [line for line in output.splitlines() if re.search(r"\| stopping \S+ \(SIGTERM\)", line)]
    order = [re.search(r"stopping (\S+) ", line).group(1) for line in stops]  # type: ignore[union-attr]
    assert tuple(order) == STOP_ORDER, output
    for name in STOP_ORDER:
        assert re.search(rf"\| {re.escape(name)} stopped \(status 0\)", output), (
            f"{name} did not stop cleanly:\n{output}"
        )
    assert "local pod stopped\n" in output
    for name, pid in pids.items():
        assert not alive(pid), f"{name} (pid {pid}) outlived Ctrl-C"
    # The log sidecar stopped after the app, so it shipped what the app wrote while it shut down.
    app_lines = (own_pod.state_dir / "logs" / "app.log").read_text().splitlines()
    assert app_lines
    assert len(shipped_messages(own_pod)) >= len(app_lines)
    assert not own_pod.pid_files


def test_web_calls_the_api_pod_through_both_envoys_with_mtls_and_rbac(local_pod: LocalPod) -> None:
    state = local_pod.state_dir
    # One issuing step: the lab CA stays in ca/, each pod gets its own identity kubelet-style.
    identities = {}
    for pod_dir in ("", "web"):
        certs = state / pod_dir / "certs"
        assert (certs / "..data").is_symlink()
        assert os.readlink(certs / "tls.crt") == "..data/tls.crt"
        identities[pod_dir] = ca.uri_sans(ca.load_certificate(certs / "tls.crt"))
    assert identities == {"": [API_IDENTITY], "web": [WEB_IDENTITY]}
    keys = [path.relative_to(state) for path in state.rglob("ca.key")]
    assert keys == [Path("ca/ca.key")], "the CA key must stay out of every pod's volumes"

    # Plain text to the api pod's inbound port never reaches the app.
    with pytest.raises((http.client.HTTPException, OSError)):
        plaintext_get(local_pod.ports["MESH_INBOUND_PORT"], "/api/greeting")

    # Web's outbound port: the API is admitted for web's identity, an ops path is not (RBAC in the api pod).
    outbound = local_pod.url("WEB_MESH_OUTBOUND_PORT")
    request_id = "local-pod-mesh-1"
    answer = requests.get(f"{outbound}/api/greeting", headers={"X-Request-ID": request_id}, timeout=10)
    assert answer.status_code == 200, answer.text
    assert answer.json()["service"] == "demo-app"
    denied = requests.get(f"{outbound}/stats", timeout=10)
    assert (denied.status_code, denied.text) == (403, "RBAC: access denied")

    # The api pod's Envoy logged who called: web's SPIFFE ID, from its certificate.
    def inbound_line() -> dict[str, object] | None:
        for line in (state / "logs" / "envoy-access.log").read_text().splitlines():
            record: dict[str, object] = json.loads(line)
            if record.get("http.request.id") == request_id and record.get("network.direction") == "inbound":
                return record
        return None

    record = wait_until(inbound_line, timeout=10, message="the inbound access-log line")
    assert record is not None
    assert record["tls.client.x509.alternative_names"] == WEB_IDENTITY
    assert record["http.response.status_code"] == 200


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
    status = pod.process.wait(120)
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
        # An offset far from the taken port, so no other port of the two pods lands on it by chance.
        offset = 30000 if port < 30000 else 0
        env = {**os.environ, "APP_PORT": str(port), "LOCAL_POD_PORT_OFFSET": str(offset)}
        env["LOCAL_POD_DIR"] = str(tmp_path / "state")
        result = subprocess.run(
            [sys.executable, str(RUNNER)], env=env, capture_output=True, text=True, timeout=60, check=False
        )
    assert result.returncode == 1
    assert f"APP_PORT={port}" in result.stdout
    assert "LOCAL_POD_PORT_OFFSET" in result.stdout


def test_help_lists_every_variable() -> None:
    result = subprocess.run([sys.executable, str(RUNNER), "--help"], capture_output=True, text=True, check=True)
    for variable in (
        "LOCAL_POD_DIR",
        "LOCAL_POD_PORT_OFFSET",
        "LOCAL_POD_MESH",
        "LOCAL_POD_WEB",
        "APP_PORT",
        "CONFIG_SIDECAR_PORT",
        "MESH_INBOUND_PORT",
        "WEB_PORT",
        "WEB_MESH_STATS_PORT",
        "ES_URL",
    ):
        assert variable in result.stdout


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"WEB_PORT": "8080"}, "WEB_PORT"),  # the api pod's APP_PORT at offset 0
        ({"LOCAL_POD_PORT_OFFSET": "60000"}, "APP_PORT"),
        ({"LOCAL_POD_HOST": "localhost"}, "LOCAL_POD_HOST"),  # Envoy listens on IP addresses
    ],
)
def test_settings_that_cannot_work_are_refused_before_anything_starts(
    tmp_path: Path, env: dict[str, str], variable: str
) -> None:
    full_env = {**os.environ, "LOCAL_POD_DIR": str(tmp_path / "state"), **env}
    result = subprocess.run(
        [sys.executable, str(RUNNER)], env=full_env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert variable in result.stderr
    assert not (tmp_path / "state").exists()


def runner_module() -> Any:
    """scripts/local_pod.py as a module, to read the pods it would start without starting them."""
    spec = importlib.util.spec_from_file_location("local_pod_runner", RUNNER)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their annotations through sys.modules
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("mesh", [True, False], ids=["mesh", "no-mesh"])
def test_the_pods_start_envoy_before_the_app_and_web_calls_through_it(tmp_path: Path, mesh: bool) -> None:
    runner = runner_module()
    settings = runner.Settings(state_dir=tmp_path, mesh=mesh)
    settings.validate()
    api, web = runner.local_pods(settings, tmp_path)
    names = [[container.name for container in pod.containers] for pod in (api, web)]
    proxies = (["mesh-proxy"], ["web/mesh-proxy"]) if mesh else ([], [])
    assert names[0] == ["config-sidecar", "log-sidecar", "exporter", *proxies[0], "app"]
    assert names[1] == ["web/config-sidecar", "web/log-sidecar", *proxies[1], "web/app"]
    env = {container.name: container.env for pod in (api, web) for container in pod.containers}
    if mesh:
        # Web calls its own Envoy; that Envoy calls the api pod's inbound side and checks its identity.
        assert env["web/app"]["APP_UPSTREAM_URL"] == "http://127.0.0.1:8101"
        assert env["web/mesh-proxy"]["MESH_UPSTREAM_ADDRESSES"] == "127.0.0.1:8443"
        assert env["web/mesh-proxy"]["MESH_UPSTREAM_PRINCIPAL"] == API_IDENTITY
        assert env["mesh-proxy"]["MESH_ALLOWED_PRINCIPALS"] == WEB_IDENTITY
        assert env["mesh-proxy"]["MESH_POLICY_DIR"] == env["config-sidecar"]["CONFIG_TARGET_DIR"]
        assert "mesh/routes.yaml=" in env["web/config-sidecar"]["CONFIG_SCHEMAS"]
        # Nothing reaches the api pod's app but through its Envoy, whatever LOCAL_POD_HOST says.
        wide = runner.Settings(state_dir=tmp_path, host="0.0.0.0")  # never bound here: only read
        assert runner.api_pod(wide, runner.Volumes(tmp_path)).containers[-1].env["APP_HOST"] == "127.0.0.1"
        wide_web = {c.name: c.env for c in runner.web_pod(wide, runner.Volumes(tmp_path / "web")).containers}
        assert wide_web["web/mesh-proxy"]["MESH_UPSTREAM_ADDRESSES"] == "127.0.0.1:8443"  # not the wildcard
    else:
        assert env["web/app"]["APP_UPSTREAM_URL"] == "http://127.0.0.1:8080"
        assert "CONFIG_SCHEMAS" not in env["config-sidecar"]
    # The pods' volumes never hold the CA: it lives next to them, in ca/.
    assert {pod.volumes.root for pod in (api, web)} == {tmp_path, tmp_path / "web"}
