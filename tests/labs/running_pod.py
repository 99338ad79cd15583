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
STARTUP_TIMEOUT_SECONDS = 120.0  # four Python services on a loaded 2-core machine
STOP_TIMEOUT_SECONDS = 90.0


class LocalPod:
    """A running local pod whose blocks run with ``cwd`` = its sandbox and its ports in ``env``."""

    def __init__(self, sandbox: Path, log_path: Path, extra_env: Mapping[str, str] | None = None) -> None:
        self.sandbox = sandbox
        self.ports = {
            "APP_PORT": free_tcp_port(),
            "APP_CONTROL_PORT": free_tcp_port(),
            "CONFIG_SIDECAR_PORT": free_tcp_port(),
            "LOG_SIDECAR_PORT": free_tcp_port(),
            "EXPORTER_PORT": free_tcp_port(),
            "EXPORTER_CONTROL_PORT": free_tcp_port(),
            "STATSD_PORT": free_udp_port(),
        }
        # The log sidecar re-globs LOG_PATHS every 10 s and app.log appears only after it starts:
        # a 1 s scan spares each pod's first shipped line that wait (timing only; no lab relies on it).
        scan = {"LOG_SCAN_INTERVAL_SECONDS": "1"}
        self.env = {name: str(port) for name, port in self.ports.items()} | scan | dict(extra_env or {})
        self.process = ServiceProcess([sys.executable, str(RUNNER)], self.env, log_path, cwd=sandbox)

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

    def stop(self) -> int:
        """SIGTERM the runner (it stops the containers in order); kill any container it left behind."""
        status = self.process.stop(timeout=STOP_TIMEOUT_SECONDS)
        for pid_file in (self.state_dir / "run").glob("*.pid"):
            with contextlib.suppress(ValueError, ProcessLookupError, PermissionError):
                os.killpg(int(pid_file.read_text()), signal.SIGKILL)
        return status

    def reset_config(self) -> None:
        """Give the next lab the repository's config, pushed kubelet-style and applied by the app."""
        reset_config(ROOT, self.sandbox)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "config_sidecar",
                "kubelet-swap",
                "--from",
                "config",
                "--to",
                ".local-pod/config-source",
            ],
            cwd=self.sandbox,
            check=True,
            capture_output=True,
            timeout=30,
        )
        version = content_version(read_config_files(self.sandbox / "config"))
        wait_until(lambda: self.app_config_version() == version, timeout=30, message=f"the app to serve {version}")

    def app_config_version(self) -> str | None:
        response = requests.get(self.url("APP_PORT", "/api/config"), timeout=5)
        version = response.json().get("version")
        return str(version) if version is not None else None
