"""Signal mode: find the app's top process by name in /proc and signal it."""

from __future__ import annotations

import signal
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from config_sidecar.notifier import ReloadError, ReloadRequest
from config_sidecar.settings import Settings
from config_sidecar.signal_reload import ProcessInfo, SignalReloader, find_targets, list_processes
from tests.support import ServiceProcess, wait_until
from tests.support.kubelet import KubeletVolume

CHILD = """
import signal, sys, time
from pathlib import Path
from typing import Any
marker = Path(sys.argv[1])
signal.signal(signal.SIGHUP, lambda *_: marker.write_text(str(int(marker.read_text() or 0) + 1)))
marker.write_text("0")
while True:
    time.sleep(0.05)
"""


def test_targets_are_the_top_most_matching_processes() -> None:
    processes = [
        ProcessInfo(1, 0, "tini", ("tini", "--", "gunicorn")),
        ProcessInfo(10, 1, "gunicorn", ("/venv/bin/python", "/venv/bin/gunicorn", "demo_app:app")),
        ProcessInfo(11, 10, "gunicorn", ("/venv/bin/python", "/venv/bin/gunicorn", "demo_app:app")),
        ProcessInfo(12, 10, "gunicorn", ("/venv/bin/python", "/venv/bin/gunicorn", "demo_app:app")),
        ProcessInfo(20, 0, "python", ("python", "-m", "demo_app")),
        ProcessInfo(30, 0, "config-sidecar", ("config-sidecar",)),
    ]
    assert find_targets("gunicorn", processes, own_pid=30) == [10]  # the master, not its workers
    assert find_targets("demo_app", processes, own_pid=30) == [20]
    assert find_targets("config-sidecar", processes, own_pid=30) == []  # never ourselves
    assert find_targets("a-very-long-process-name", [ProcessInfo(5, 0, "a-very-long-pro", ())], 1) == [5]
    assert find_targets("app", [ProcessInfo(6, 0, "sh", ("sh", "-c", "app"))], 1) == []  # an argument is not a name


@pytest.fixture
def child(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    name = f"reload-target-{uuid.uuid4().hex[:8]}"
    marker = tmp_path / "hups"
    marker.write_text("")
    script = tmp_path / name  # run as "python <path>/<name>", so its program name is <name>
    script.write_text(CHILD)
    with ServiceProcess([sys.executable, str(script), str(marker)], {}, tmp_path / "child.out") as process:
        process.wait_for(lambda: marker.read_text() == "0", "its SIGHUP handler installed", timeout=15)
        yield name, marker


def test_list_processes_sees_a_real_child(child: tuple[str, Path]) -> None:
    name, _ = child
    assert any(p.is_named(name) for p in list_processes())


def test_signal_reaches_the_process_and_counts_as_acknowledged(child: tuple[str, Path]) -> None:
    name, marker = child
    reloader = SignalReloader(signal.SIGHUP, name)
    assert reloader.reload(ReloadRequest("v7")) == "v7"
    wait_until(lambda: marker.read_text() == "1", 10, message="SIGHUP handled")


def test_no_such_process_is_a_retryable_failure() -> None:
    reloader = SignalReloader(signal.SIGHUP, f"absent-{uuid.uuid4().hex}")
    with pytest.raises(ReloadError, match="no process named"):
        reloader.reload(ReloadRequest("v"))


def test_sidecar_in_signal_mode_signals_after_each_publish(
    child: tuple[str, Path], volume: KubeletVolume, make_settings: Callable[..., Settings], start_sidecar: Any
) -> None:
    name, marker = child
    volume.write({"app.yaml": "greeting: one\n"})
    sidecar = start_sidecar(make_settings(reload_signal="SIGHUP", reload_process=name))
    wait_until(lambda: marker.read_text() == "1", 15, message="signalled after the first publish")
    volume.write({"app.yaml": "greeting: two\n"})
    wait_until(lambda: marker.read_text() == "2", 15, message="signalled after the update")
    status = sidecar.status()
    assert status["reload"]["mode"] == "signal"
    assert status["applied"]["version"] == status["published"]["version"]
