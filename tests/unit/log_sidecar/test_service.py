"""The assembled service in-process: threads, admin endpoints, the state-dir lock, drain."""

from __future__ import annotations

import dataclasses
import json
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from log_sidecar.service import LogSidecar
from log_sidecar.settings import Settings
from sidecar_common import StartupError, load_settings
from tests.support import free_tcp_port, wait_until


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    (tmp_path / "logs").mkdir()
    return load_settings(
        Settings,
        {
            "LOG_PATHS": str(tmp_path / "logs" / "*.log"),
            "LOG_STATE_DIR": str(tmp_path / "state"),
            "LOG_SINK": "file",
            "ADMIN_HOST": "127.0.0.1",
            "ADMIN_PORT": str(free_tcp_port()),
            "LOG_POLL_INTERVAL_SECONDS": "0.02",
            "LOG_SCAN_INTERVAL_SECONDS": "0.2",
            "LOG_FLUSH_INTERVAL_SECONDS": "0.1",
        },
    )


@pytest.fixture
def sidecar(settings: Settings) -> Iterator[LogSidecar]:
    service = LogSidecar(settings)
    stop = threading.Event()
    service.start()
    runner = threading.Thread(target=service.run, args=(stop,))
    runner.start()
    yield service
    stop.set()
    runner.join(15)
    service.close()


def shipped(settings: Settings) -> list[dict[str, object]]:
    try:
        text = settings.file_sink_target.read_text()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text.splitlines()]


def test_lines_are_shipped_and_the_admin_endpoints_tell_the_truth(sidecar: LogSidecar, settings: Settings) -> None:
    port = settings.admin_port
    wait_until(lambda: get(port, "/readyz")[0] == 200, 10, message="ready after the first scan")
    assert get(port, "/livez")[0] == 200
    log = Path(settings.paths[0]).parent / "app.log"
    log.write_text("".join(f'{{"n": {i}}}\n' for i in range(20)))
    wait_until(lambda: len(shipped(settings)) == 20, 10, message="20 documents in the file sink")
    assert sorted(doc["n"] for doc in shipped(settings)) == list(range(20))  # type: ignore[type-var]
    # The sink's output is visible before the shipper has counted the answer: wait for the count.
    delivered = 'log_sidecar_documents_total{result="delivered"} 20.0'
    wait_until(lambda: delivered in get(port, "/metrics")[1], 10, message="20 delivered documents counted")
    metrics = get(port, "/metrics")[1]
    assert "log_sidecar_lines_read_total 20.0" in metrics
    assert "log_sidecar_sink_up 1.0" in metrics
    status = json.loads(get(port, "/status")[1])
    assert status["files"][0]["path"] == str(log)
    assert status["watched_directories"] == [str(log.parent)], "new files are seen by inotify"
    wait_until(lambda: json.loads(get(port, "/status")[1])["files"][0]["committed"] == log.stat().st_size, 10)


def test_building_has_no_side_effects(settings: Settings) -> None:
    LogSidecar(settings).close()
    assert not settings.state_dir.exists(), "nothing is created, locked or opened before start()"


def test_a_second_sidecar_on_the_same_state_dir_is_refused(sidecar: LogSidecar, settings: Settings) -> None:
    second = LogSidecar(dataclasses.replace(settings, admin_port=free_tcp_port()))
    with pytest.raises(StartupError, match="locked") as caught:
        second.start()
    second.close()
    assert caught.value.variable == "LOG_STATE_DIR"
    assert get(settings.admin_port, "/livez")[0] == 200, "the first one is untouched"


def test_stop_drains_and_writes_the_checkpoint(settings: Settings) -> None:
    log = Path(settings.paths[0]).parent / "app.log"
    log.write_text("a\nb\n")
    service = LogSidecar(settings)
    service.start()
    wait_until(lambda: len(shipped(settings)) == 2, 10)
    with log.open("a") as out:
        out.write("c\nno newline yet")
    stop = threading.Event()
    stop.set()
    service.run(stop)
    service.close()
    assert [doc["message"] for doc in shipped(settings)] == ["a", "b", "c", "no newline yet"]
    checkpoint = json.loads((settings.state_dir / "checkpoint.json").read_text())
    assert checkpoint["files"][0]["offset"] == log.stat().st_size


def test_a_busy_admin_port_is_a_startup_error_naming_it(settings: Settings) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        sidecar = LogSidecar(dataclasses.replace(settings, admin_port=port))
        with pytest.raises(StartupError) as caught:
            sidecar.start()
        sidecar.close()
    assert caught.value.variable == "ADMIN_PORT"
    # close() released the state dir's lock: another sidecar may take it.
    again = LogSidecar(settings)
    again.start()
    again.close()
