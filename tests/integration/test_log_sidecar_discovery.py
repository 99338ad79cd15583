"""No file unseen: files that live less than 100 ms under a name LOG_PATHS matches are shipped whole, once.

The sidecar runs with the default LOG_SCAN_INTERVAL_SECONDS (10 s): the periodic re-glob
cannot see any of these files (each is renamed out of the glob within 100 ms and the test
is over long before the next scan), so only the inotify watch on their directory can.
"""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

from sink_emulators.elasticsearch import BulkEmulator
from tests.integration.log_sidecar_process import (
    INDEX,
    LineWriter,
    Sidecar,
    assert_exactly_once,
    launch,
    wait_for,
)

LIFETIME = 0.1  # what the issue asks for: created, written and renamed away within 100 ms
LINES_PER_FILE = 3000


class RenamingWriter(LineWriter):
    """A LineWriter whose caller renames the file itself (to time it), then opens the next one."""

    def rotate_to_new_file(self) -> None:
        self._out.close()
        self._out = self.path.open("a")


def write_short_lived_files(writer: RenamingWriter, count: int) -> None:
    """Fill the current file and rotate it away by rename, ``count`` times; each file lives < LIFETIME."""
    for rotation in range(1, count + 1):
        born = time.monotonic()  # the file was just created (by the writer's open)
        writer.write(LINES_PER_FILE)
        writer.path.rename(writer.path.with_name(f"{writer.path.name}.{rotation}"))  # out of the glob
        lived = time.monotonic() - born
        assert lived < LIFETIME, f"the file lived {lived * 1000:.0f} ms: the test would prove nothing"
        writer.rotate_to_new_file()


def status(sidecar: Sidecar) -> dict[str, object]:
    with urllib.request.urlopen(f"http://127.0.0.1:{sidecar.admin_port}/status", timeout=5) as response:
        answer: dict[str, object] = json.loads(response.read())
        return answer


def test_files_renamed_away_within_100_ms_are_shipped_whole_exactly_once(
    tmp_path: Path, es: BulkEmulator, sidecars: list[Sidecar]
) -> None:
    sidecar = launch(sidecars, tmp_path, es, LOG_SCAN_INTERVAL_SECONDS="10")
    writer = RenamingWriter(sidecar.logs / "app.log")  # created after the sidecar started, like the app's
    write_short_lived_files(writer, 5)
    writer.write(100)  # the current file, still in place
    writer.close()
    assert_exactly_once(es, writer.written, sidecar)
    stored = es.documents(INDEX).values()
    assert {doc["log"]["file"]["path"] for doc in stored} == {str(sidecar.logs / "app.log")}, "named as matched"
    assert sidecar.metric("log_sidecar_file_events_total", event="new") == 6


def test_a_log_directory_the_app_creates_after_the_sidecar_started_is_watched_as_it_appears(
    tmp_path: Path, es: BulkEmulator, sidecars: list[Sidecar]
) -> None:
    app_dir = tmp_path / "logs" / "app" / "v1"  # none of it exists yet but logs/ (Sidecar creates it)
    sidecar = launch(sidecars, tmp_path, es, LOG_SCAN_INTERVAL_SECONDS="10", LOG_PATHS=str(app_dir / "*.log"))
    assert status(sidecar)["watched_directories"] == [str(tmp_path / "logs")], "the nearest existing ancestor"
    app_dir.mkdir(parents=True)
    wait_for(sidecar, lambda: status(sidecar)["watched_directories"] == [str(app_dir)], "the new directory watched")
    writer = RenamingWriter(app_dir / "app.log")
    write_short_lived_files(writer, 3)
    writer.close()
    assert_exactly_once(es, writer.written, sidecar)
