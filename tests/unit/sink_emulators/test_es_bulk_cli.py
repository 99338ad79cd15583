"""``python -m sink_emulators.elasticsearch``: the emulator as a process, the way its container runs it."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import requests

from tests.support import ServiceProcess, free_tcp_port, wait_until
from tests.unit.sink_emulators.es_client import NDJSON, create, ndjson

ROOT = Path(__file__).resolve().parents[3]


def test_the_process_serves_with_auth_and_initial_faults_then_stops_on_sigterm(tmp_path: Path) -> None:
    port = free_tcp_port()
    faults = json.dumps({"poison_field": "bad"})
    module = "sink_emulators.elasticsearch"
    argv = [sys.executable, "-m", module, "--port", str(port), "--seed", "5", "--faults", faults]
    process = ServiceProcess(
        [*argv, "--username", "u", "--password", "pw"],
        env={"PYTHONPATH": str(ROOT)},
        log_path=tmp_path / "emulator.log",
        cwd=ROOT,
    ).start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(
            lambda: requests.get(url, auth=("u", "pw"), timeout=2).ok, timeout=20, message="the emulator to answer"
        )

        body = ndjson(*create("1", {"ok": 1}), *create("2", {"bad": 1}))
        items = requests.post(url + "/_bulk", data=body, headers=NDJSON, auth=("u", "pw"), timeout=10).json()["items"]
        assert [item["create"]["status"] for item in items] == [201, 400]
        assert requests.get(url, timeout=10).status_code == 401

        process.signal(signal.SIGTERM)
        assert process.wait(20) == 0
    finally:
        process.stop()

    first_line = json.loads(process.output().splitlines()[0])
    assert first_line["msg"] == "es emulator listening"
    assert first_line["url"] == url
    assert first_line["auth"] == "basic"
    assert first_line["seed"] == 5
    assert "pw" not in process.output()


def test_a_username_without_a_password_is_a_usage_error() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sink_emulators.elasticsearch", "--username", "u"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    assert result.returncode == 2
    assert "--username and --password go together" in result.stderr
