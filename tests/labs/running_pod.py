"""``scripts/local_pod.py`` as the labs' fixture: in a sandbox, on free ports, stopped in order."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import requests

from sidecar_common import content_version, read_config_files
from tests.labs.sandbox import reset_config
from tests.support import ServiceProcess, free_tcp_port, free_udp_port, wait_until

ROOT = Path(__file__).resolve().parents[2]
RUNNER = ROOT / "scripts" / "local_pod.py"
READY_LINE = "local pod ready"
STARTUP_TIMEOUT_SECONDS = 180.0  # two pods, nine containers, on a loaded 2-core machine
STOP_TIMEOUT_SECONDS = 120.0
# Every TCP port of both pods (scripts/local_pod.py), each given a free one.
TCP_PORTS = (
    "APP_PORT",
    "APP_CONTROL_PORT",
    "CONFIG_SIDECAR_PORT",
    "LOG_SIDECAR_PORT",
    "EXPORTER_PORT",
    "EXPORTER_CONTROL_PORT",
    "MESH_INBOUND_PORT",
    "MESH_OUTBOUND_PORT",
    "MESH_ADMIN_PORT",
    "MESH_STATS_PORT",
    "WEB_PORT",
    "WEB_CONTROL_PORT",
    "WEB_CONFIG_SIDECAR_PORT",
    "WEB_LOG_SIDECAR_PORT",
    "WEB_MESH_INBOUND_PORT",
    "WEB_MESH_OUTBOUND_PORT",
    "WEB_MESH_ADMIN_PORT",
    "WEB_MESH_STATS_PORT",
)
# Each pod's config source in the sandbox, and where the runner keeps its config-source volume.
POD_CONFIGS = {
    "api": ("config", ".local-pod/config-source"),
    "web": ("deploy/compose/web/config", ".local-pod/web/config-source"),
}


class LocalPod:
    """A running local pod whose blocks run with ``cwd`` = its sandbox and its ports in ``env``."""

    def __init__(
        self, sandbox: Path, log_path: Path, extra_env: Mapping[str, str] | None = None, *, via_make: bool = False
    ) -> None:
        self.sandbox = sandbox
        self.ports = {name: free_tcp_port() for name in TCP_PORTS} | {"STATSD_PORT": free_udp_port()}
        # The log sidecar re-globs LOG_PATHS every 10 s and app.log appears only after it starts:
        # a 1 s scan spares each pod's first shipped line that wait (timing only; no lab relies on it).
        scan = {"LOG_SCAN_INTERVAL_SECONDS": "1"}
        self.env = {name: str(port) for name, port in self.ports.items()} | scan | dict(extra_env or {})
        # `make local`, as a reader starts it (in its own process group, like a terminal's foreground job),
        # or the runner itself.
        argv = ["make", "--no-print-directory", "local"] if via_make else [sys.executable, str(RUNNER)]
        self.process = ServiceProcess(argv, self.env, log_path, cwd=sandbox)

    @property
    def state_dir(self) -> Path:
        return self.sandbox / ".local-pod"

    def url(self, port_name: str, path: str = "") -> str:
        return f"http://127.0.0.1:{self.ports[port_name]}{path}"

    def start(self) -> LocalPod:
        self.process.start()
        try:
            wait_until(self._ready, timeout=STARTUP_TIMEOUT_SECONDS, interval=0.2, message="the local pod to be ready")
        except AssertionError:
            self.stop()
            raise AssertionError(f"local pod did not start; its output:\n{self.process.output()}") from None
        return self

    def _ready(self) -> bool:
        if not self.process.running():
            raise AssertionError(f"local_pod.py exited early:\n{self.process.output()}")
        return READY_LINE in self.process.output()

    @property
    def pid_files(self) -> list[Path]:
        """Every container's pid file, of both pods."""
        return sorted((self.state_dir / "run").glob("*.pid")) + sorted((self.state_dir / "web" / "run").glob("*.pid"))

    def interrupt(self) -> int:
        """Ctrl-C: SIGINT to the whole foreground process group (make and the runner), as a terminal sends it."""
        os.killpg(self.process.pid, signal.SIGINT)
        return self.process.wait(STOP_TIMEOUT_SECONDS)

    def stop(self) -> int:
        """SIGTERM the runner (it stops the containers in order); kill any container it left behind."""
        status = self.process.stop(timeout=STOP_TIMEOUT_SECONDS)
        for pid_file in self.pid_files:
            with contextlib.suppress(ValueError, ProcessLookupError, PermissionError):
                os.killpg(int(pid_file.read_text()), signal.SIGKILL)
        return status

    def reset_config(self) -> None:
        """Give the next lab the repository's config in both pods, pushed kubelet-style and applied by the apps."""
        reset_config(ROOT, self.sandbox)
        for pod, (source, volume) in POD_CONFIGS.items():
            if not (self.sandbox / volume).is_dir():
                continue  # a run without the web pod (LOCAL_POD_WEB=false)
            subprocess.run(
                [sys.executable, "-m", "config_sidecar", "kubelet-swap", "--from", source, "--to", volume],
                cwd=self.sandbox,
                check=True,
                capture_output=True,
                timeout=30,
            )
            self._wait_serving("APP_PORT" if pod == "api" else "WEB_PORT", source)

    def _wait_serving(self, port_name: str, source: str) -> None:
        version = content_version(read_config_files(self.sandbox / source))
        wait_until(
            lambda: self.app_config_version(port_name) == version,
            timeout=30,
            message=f"the app on {port_name} to serve {version}",
        )

    def app_config_version(self, port_name: str = "APP_PORT") -> str | None:
        response = requests.get(self.url(port_name, "/api/config"), timeout=5)
        version = response.json().get("version")
        return str(version) if version is not None else None
