"""Every sidecar, as a process, fails the same way: the same exit code and one line naming the variable."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from sidecar_common import EXIT_CONFIG, EXIT_UNAVAILABLE
from tests.support import free_tcp_port, free_udp_port

# python package -> the program name its one-line errors start with
SIDECARS = {"config_sidecar": "config-sidecar", "log_sidecar": "log-sidecar", "metrics_exporter": "metrics-exporter"}
# The same admin block in the services that are not admin-port sidecars: the app, the mesh proxy's wrapper.
EVERY_SERVICE = {**SIDECARS, "demo_app": "demo-app", "mesh_proxy": "mesh-proxy"}


def environment(package: str, tmp_path: Path) -> dict[str, str]:
    """What each sidecar needs to get as far as binding its ports, all of them on loopback."""
    common = {"ADMIN_HOST": "127.0.0.1", "ADMIN_PORT": str(free_tcp_port())}
    own = {
        "config_sidecar": {
            "CONFIG_SOURCE_DIR": str(tmp_path / "source"),
            "CONFIG_TARGET_DIR": str(tmp_path / "target"),
            "CONFIG_RELOAD_URL": "",
        },
        "log_sidecar": {"LOG_PATHS": str(tmp_path / "logs" / "*.log"), "LOG_STATE_DIR": str(tmp_path / "state")},
        "metrics_exporter": {
            "CONTROL_PORT": str(free_tcp_port()),
            "STATSD_HOST": "127.0.0.1",
            "STATSD_PORT": str(free_udp_port()),
            "EXPORTER_JSON_URL": "",
        },
    }[package]
    return {**os.environ, **common, **own}


def run(package: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", package], env=env, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.parametrize("package", sorted(EVERY_SERVICE))
def test_an_unknown_log_level_exits_2_with_the_same_line(package: str, tmp_path: Path) -> None:
    env = environment(package, tmp_path) if package in SIDECARS else dict(os.environ)
    result = run(package, {**env, "LOG_LEVEL": "verbose"})
    assert result.returncode == EXIT_CONFIG, result.stderr
    assert result.stderr.splitlines() == [
        f"{EVERY_SERVICE[package]}: configuration error: LOG_LEVEL: "
        "must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL, got 'VERBOSE'"
    ]


@pytest.mark.parametrize("package", sorted(SIDECARS))
def test_a_taken_admin_port_exits_3_with_one_line_naming_it(package: str, tmp_path: Path) -> None:
    env = environment(package, tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run(package, {**env, "ADMIN_PORT": str(port)})
    assert result.returncode == EXIT_UNAVAILABLE, result.stdout + result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"{SIDECARS[package]}: cannot start: ADMIN_PORT: 127.0.0.1:{port}: "), lines[0]
