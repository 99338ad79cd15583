"""Appending log lines that survive rename and truncate rotation, errors, and several writers."""

from __future__ import annotations

import json
import os
from pathlib import Path

from demo_app.log_file import LogFile
from tests.support import FakeClock


class Notices:
    def __init__(self) -> None:
        self.messages: list[tuple[str, OSError | None]] = []

    def __call__(self, message: str, error: OSError | None) -> None:
        self.messages.append((message, error))


def test_missing_directories_are_created(tmp_path: Path) -> None:
    path = tmp_path / "var" / "log" / "app" / "app.log"
    log = LogFile(path, Notices())
    assert log.write(b"one\n")
    assert log.write(b"two\n")
    assert path.read_bytes() == b"one\ntwo\n"
    log.close()


def test_after_a_rename_lines_go_to_the_new_file(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    log = LogFile(path, Notices())
    log.write(b"before\n")
    path.rename(tmp_path / "app.log.1")
    log.write(b"after\n")
    assert (tmp_path / "app.log.1").read_bytes() == b"before\n"
    assert path.read_bytes() == b"after\n"
    log.close()


def test_after_a_truncation_lines_start_at_the_new_end_without_a_hole(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    log = LogFile(path, Notices())
    for index in range(100):
        log.write(b"line %d\n" % index)
    os.truncate(path, 0)  # copytruncate
    log.write(b"fresh\n")
    assert path.read_bytes() == b"fresh\n"
    log.close()


def test_an_unwritable_file_is_reported_once_and_retried_later(tmp_path: Path) -> None:
    blocker = tmp_path / "logs"
    blocker.write_text("a file where the log directory should be")
    notices, clock = Notices(), FakeClock()
    log = LogFile(blocker / "app.log", notices, retry_seconds=5, clock=clock)
    assert not log.write(b"lost to the file, not to stdout\n")
    assert not log.write(b"again\n")
    assert len(notices.messages) == 1
    message, error = notices.messages[0]
    assert "logging to stdout only" in message
    assert error is not None
    assert log.lines_failed == 2
    blocker.unlink()
    assert not log.write(b"too early to retry\n")
    clock.advance(6)
    assert log.write(b"back\n")
    assert (blocker / "app.log").read_bytes() == b"back\n"
    assert notices.messages[-1] == (f"log file {blocker / 'app.log'} is writable again", None)
    log.close()


def test_lines_from_many_processes_never_interleave(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    writers, lines_each = 4, 200

    def write_lines(writer: int) -> None:
        log = LogFile(path, Notices())
        for index in range(lines_each):
            # Long lines (beyond one pipe buffer) make interleaving likely if writes were split.
            log.write((json.dumps({"writer": writer, "index": index, "pad": "x" * 5000}) + "\n").encode())
        log.close()

    children = []
    for writer in range(writers):
        pid = os.fork()
        if pid == 0:
            try:
                write_lines(writer)
            finally:
                os._exit(0)
        children.append(pid)
    for pid in children:
        os.waitpid(pid, 0)
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert sorted((record["writer"], record["index"]) for record in records) == [
        (writer, index) for writer in range(writers) for index in range(lines_each)
    ]
