"""``python -m mesh_proxy``: the CA commands, check-policy and the start-up failures, with their exit codes."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mesh_proxy import ca, cert_dir
from mesh_proxy.startup import Startup
from tests.support import ServiceProcess, wait_until
from tests.unit.mesh_proxy.conftest import ROOT, settings


def run(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mesh_proxy", *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_help_lists_every_variable() -> None:
    result = run("--help")
    assert result.returncode == 0
    for variable in ("MESH_INBOUND_PORT", "MESH_CERT_DIR", "MESH_POLICY_DIR", "MESH_RUN_DIR", "LOG_LEVEL"):
        assert variable in result.stdout


def test_a_bad_variable_exits_2_naming_it() -> None:
    result = run(env={"MESH_INBOUND_PORT": "none"})
    assert result.returncode == 2
    assert result.stderr.strip().startswith("mesh-proxy: configuration error: MESH_INBOUND_PORT")


def test_ca_init_then_issue_then_reissue(tmp_path: Path) -> None:
    first = run("ca", "init", "--dir", str(tmp_path / "ca"))
    assert first.returncode == 0, first.stderr
    assert "CA created" in first.stdout
    again = run("ca", "init", "--dir", str(tmp_path / "ca"))
    assert again.returncode == 0
    assert "CA exists" in again.stdout
    issue = ("issue", "--ca", str(tmp_path / "ca"), "--namespace", "sidecar-lab", "--service-account", "web")
    out = ("--out", str(tmp_path / "web"))
    one = run(*issue, *out)
    assert one.returncode == 0, one.stderr
    serial = ca.load_certificate(tmp_path / "web" / "tls.crt").serial_number
    two = run(*issue, *out, "--days", "0.5")
    assert two.returncode == 0, two.stderr
    rotated = ca.load_certificate(tmp_path / "web" / "tls.crt")
    assert rotated.serial_number != serial
    assert f"serial {rotated.serial_number:x}" in two.stdout
    assert rotated.not_valid_after_utc - datetime.now(UTC) < timedelta(hours=12, minutes=1)


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("--namespace", "Sidecar_Lab", "--service-account", "web"), 2, "is not a Kubernetes name"),
        (("--namespace", "ns", "--service-account", "web", "--days", "0"), 2, "--days must be positive"),
    ],
)
def test_issue_refuses_bad_arguments(tmp_path: Path, args: tuple[str, ...], code: int, message: str) -> None:
    result = run("issue", "--ca", str(tmp_path / "ca"), "--out", str(tmp_path / "out"), *args)
    assert result.returncode == code
    assert message in result.stderr


def test_issue_without_a_ca_exits_3_naming_the_file(tmp_path: Path) -> None:
    result = run(
        "issue", "--ca", str(tmp_path / "nothing"), "--namespace", "ns", "--service-account", "sa", "--out", "x"
    )
    assert result.returncode == 3
    assert f"{tmp_path / 'nothing' / 'ca.crt'}: missing" in result.stderr


def test_check_policy_exit_codes(tmp_path: Path) -> None:
    ok = run("check-policy", str(ROOT / "config"))
    assert ok.returncode == 0, ok.stderr
    shutil.copytree(ROOT / "config" / "mesh", tmp_path / "mesh")
    (tmp_path / "mesh" / "clusters.yaml").write_text("resources: []\n")
    bad = run("check-policy", str(tmp_path))
    assert bad.returncode == 1
    lines = bad.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"mesh-proxy check-policy: {tmp_path / 'mesh' / 'clusters.yaml'}: resources: [] ")


def test_an_unusable_run_dir_exits_3_naming_the_variable(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    result = run(env={"MESH_RUN_DIR": str(tmp_path / "file" / "run"), "MESH_ACCESS_LOG": ""})
    assert result.returncode == 3
    assert "MESH_RUN_DIR" in result.stderr


def test_a_missing_log_directory_exits_3_naming_the_variable(tmp_path: Path) -> None:
    result = run(env={"MESH_RUN_DIR": str(tmp_path / "run"), "MESH_ACCESS_LOG": str(tmp_path / "no" / "a.log")})
    assert result.returncode == 3
    assert "MESH_ACCESS_LOG" in result.stderr


def test_sigterm_while_waiting_for_certificates_exits_0(tmp_path: Path) -> None:
    env = {
        "MESH_RUN_DIR": str(tmp_path / "run"),
        "MESH_ACCESS_LOG": "",
        "MESH_CERT_DIR": str(tmp_path / "certs"),
        "MESH_RETRY_SECONDS": "0.05",
    }
    with ServiceProcess.python_module("mesh_proxy", env, tmp_path / "proxy.out") as process:
        process.wait_for(lambda: "\n" in process.output(), "its first line")
        first = process.output().splitlines()[0]  # the one "not starting Envoy" line
        assert "not starting Envoy" in first
        assert str(tmp_path / "certs" / "tls.crt") in first
        process.signal(signal.SIGTERM)
        assert process.wait(10) == 0


def test_the_wait_logs_each_problem_once_and_ends_when_it_is_gone(
    tmp_path: Path, envoy: Path, caplog: pytest.LogCaptureFixture
) -> None:
    shutil.copytree(ROOT / "config" / "mesh", tmp_path / "policy" / "mesh")
    startup = Startup(
        settings(
            MESH_CERT_DIR=str(tmp_path / "certs"),
            MESH_POLICY_DIR=str(tmp_path / "policy"),
            MESH_UPSTREAM_ADDRESSES="127.0.0.1:8443",
            MESH_RETRY_SECONDS="0.01",
            MESH_RUN_DIR=str(tmp_path / "run"),
            MESH_ACCESS_LOG="",
        ),
        envoy,
    )
    startup.prepare()
    stop = threading.Event()
    result: list[bool] = []
    caplog.set_level(logging.DEBUG, logger="mesh_proxy")
    waiter = threading.Thread(target=lambda: result.append(startup.wait(stop)))
    waiter.start()
    wait_until(lambda: sum("still waiting" in r.getMessage() for r in caplog.records) >= 3, timeout=10)
    authority = ca.create_authority(tmp_path / "ca", timedelta(days=1), datetime.now(UTC))
    workload = ca.issue(authority, ca.spiffe_id("ns", "sa"), timedelta(hours=1), datetime.now(UTC))
    cert_dir.publish(tmp_path / "certs", workload)
    waiter.join(20)
    assert result == [True]
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert errors[0].__dict__["file"] == str(tmp_path / "certs" / "tls.crt")
    assert startup.endpoints[0].port == 8443
