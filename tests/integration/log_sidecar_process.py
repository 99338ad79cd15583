"""The log sidecar as a real process, numbered line writers and the exactly-once check.

Shared by the reliability tests (test_log_sidecar.py) and the input tests
(test_log_sidecar_inputs.py); the fixtures that use it live in conftest.py.
"""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sink_emulators.elasticsearch import BulkEmulator
from tests.support import ServiceProcess, free_tcp_port
from tests.support.processes import http_ready

INDEX = "logs-test"
DELIVERY_TIMEOUT = 30.0


class Sidecar:
    """``python -m log_sidecar`` with fast test timings; restartable on the same state dir."""

    def __init__(self, tmp_path: Path, **env: str) -> None:
        self.logs = tmp_path / "logs"
        self.state = tmp_path / "state"
        self.logs.mkdir(exist_ok=True)
        self.admin_port = free_tcp_port()
        self.env = {
            "LOG_PATHS": str(self.logs / "*.log"),
            "LOG_STATE_DIR": str(self.state),
            "LOG_SINK": "elasticsearch",
            "ES_INDEX": INDEX,
            "ADMIN_HOST": "127.0.0.1",
            "ADMIN_PORT": str(self.admin_port),
            "LOG_SCAN_INTERVAL_SECONDS": "0.5",
            "LOG_POLL_INTERVAL_SECONDS": "0.05",
            "LOG_FLUSH_INTERVAL_SECONDS": "0.2",
            "LOG_ROTATE_WAIT_SECONDS": "1",
            "LOG_RETRY_INITIAL_SECONDS": "0.05",
            "LOG_RETRY_MAX_SECONDS": "0.5",
            "LOG_SINK_TIMEOUT_SECONDS": "5",
            "LOG_BATCH_MAX_DOCS": "500",
            "POD_NAME": "demo-app-0",
            "POD_NAMESPACE": "sidecar-lab",
            "NODE_NAME": "node-1",
            **env,
        }
        self.process = ServiceProcess.python_module("log_sidecar", self.env, tmp_path / "sidecar.out")

    def start(self) -> Sidecar:
        ready = http_ready(f"http://127.0.0.1:{self.admin_port}/readyz")
        self.process.start().wait_for(ready, "/readyz to answer 200", timeout=20)
        return self

    def metric(self, name: str, **labels: str) -> float:
        """Read one sample from /metrics (0 if absent)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}/metrics", timeout=5) as response:
            text = response.read().decode()
        wanted = name + ("{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}" if labels else "")
        for line in text.splitlines():
            if line.startswith(wanted + " "):
                return float(line.split()[-1])
        return 0.0

    def log_records(self, logger: str | None = None) -> list[dict[str, Any]]:
        """The sidecar's JSON log lines so far (of ``logger`` only, if given)."""
        records = []
        for line in self.process.output().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a traceback's continuation, or a half-written last line
            if isinstance(record, dict) and (logger is None or record.get("logger") == logger):
                records.append(record)
        return records

    def stop(self) -> int:
        return self.process.stop(timeout=20)

    def kill(self) -> None:
        self.process.kill()


class LineWriter:
    """Write numbered JSON lines ``{"seq": n, "msg": ...}`` like an app does, optionally rotating."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.written: list[int] = []
        self._out = path.open("a")

    def write(self, count: int, **extra: Any) -> None:
        for _ in range(count):
            seq = len(self.written)
            self._out.write(json.dumps({"seq": seq, "msg": f"line {seq}", **extra}) + "\n")
            self.written.append(seq)
        self._out.flush()

    def rotate(self, suffix: str) -> None:
        """Rotation by rename + create, the way logging.handlers.RotatingFileHandler does it."""
        self._out.close()
        self.path.rename(self.path.with_name(self.path.name + suffix))
        self._out = self.path.open("a")

    def close(self) -> None:
        self._out.close()


class WatchedWriter(LineWriter):
    """Reopen the path when it is renamed away, like logging.handlers.WatchedFileHandler.

    Between a rename and the writer's next check, lines still go to the rotated file:
    the sidecar must finish that file, not just jump to the new one.
    """

    def write(self, count: int, **extra: Any) -> None:
        try:
            current = os.stat(self.path).st_ino
        except FileNotFoundError:
            current = -1
        if current != os.fstat(self._out.fileno()).st_ino:
            self._out.close()
            self._out = self.path.open("a")
        super().write(count, **extra)

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.write(5)
            time.sleep(0.002)


def launch(sidecars: list[Sidecar], tmp_path: Path, es: BulkEmulator, **env: str) -> Sidecar:
    sidecar = Sidecar(tmp_path, ES_URL=es.url, **env)
    sidecars.append(sidecar)
    return sidecar.start()


def wait_for(sidecar: Sidecar, check: Callable[[], object], what: str, timeout: float = DELIVERY_TIMEOUT) -> None:
    """Poll ``check`` while the sidecar runs; a failure carries the sidecar's output."""
    sidecar.process.wait_for(check, what, timeout)


def seqs_stored(es: BulkEmulator) -> list[int]:
    return [int(doc["seq"]) for doc in es.documents(INDEX).values() if "seq" in doc]


def assert_exactly_once(es: BulkEmulator, written: list[int], sidecar: Sidecar) -> None:
    """Every written line is stored once: unique ids == lines, and each payload once."""

    wait_for(sidecar, lambda: es.count(INDEX) >= len(written), f"{len(written)} documents")
    docs = es.documents(INDEX)
    stored = Counter(int(doc["seq"]) for doc in docs.values())
    duplicated = sorted(seq for seq, n in stored.items() if n > 1)
    missing = sorted(set(written) - set(stored))
    assert not duplicated, f"stored twice: {duplicated[:20]}"
    assert not missing, f"never stored: {missing[:20]}"
    assert len(docs) == len(written), "as many unique _ids as lines written"
