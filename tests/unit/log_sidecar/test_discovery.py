"""Discovery: which directories are watched, and new files seen the moment they appear (real inotify)."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from log_sidecar.discovery import WatchTarget, name_matches, watch_targets
from log_sidecar.watcher import DirectoryWatcher
from tests.support import wait_until
from tests.unit.log_sidecar.conftest import MakeHarness


class Arrivals:
    """What a watcher hands over: the matched paths and the open descriptors (read when the test asks)."""

    def __init__(self) -> None:
        self.handed: list[tuple[str, int]] = []
        self.rescans = 0
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()

    def arrived(self, path: str, fd: int) -> None:
        self.entered.set()
        self.gate.wait(10)  # a test can hold watchdog's thread here, as a busy machine would
        self.handed.append((path, fd))

    def rescan(self) -> None:
        self.rescans += 1

    @property
    def files(self) -> list[tuple[str, bytes]]:
        """(matched path, the whole file as its descriptor reads it now)."""
        return [(path, os.pread(fd, 1 << 20, 0)) for path, fd in list(self.handed)]

    def paths(self) -> list[str]:
        return [path for path, _ in list(self.handed)]

    def close(self) -> None:
        for _, fd in self.handed:
            os.close(fd)


@pytest.fixture
def arrivals() -> Iterator[Arrivals]:
    handed = Arrivals()
    yield handed
    handed.close()


@pytest.fixture
def watch(arrivals: Arrivals) -> Iterator[list[DirectoryWatcher]]:
    """Watchers started by a test, stopped after it."""
    started: list[DirectoryWatcher] = []
    yield started
    for watcher in started:
        watcher.stop()


def start(watchers: list[DirectoryWatcher], arrivals: Arrivals, *patterns: Path) -> DirectoryWatcher:
    watcher = DirectoryWatcher([str(p) for p in patterns], arrivals.arrived, arrivals.rescan)
    watchers.append(watcher)
    watcher.start()
    return watcher


def test_the_directories_of_the_globs_are_watched_and_a_missing_one_by_its_nearest_ancestor(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    (tmp_path / "pods" / "ns_a" / "app").mkdir(parents=True)
    (tmp_path / "pods" / "ns_b").mkdir(parents=True)
    patterns = [
        str(tmp_path / "logs" / "*.log"),
        str(tmp_path / "later" / "app" / "*.log"),  # created by the app after we start
        str(tmp_path / "pods" / "*" / "*" / "*.log"),
    ]
    targets = watch_targets(patterns)
    assert targets == {
        str(tmp_path): WatchTarget(str(tmp_path), frozenset(), frozenset({"later"})),
        str(tmp_path / "logs"): WatchTarget(str(tmp_path / "logs"), frozenset({"*.log"}), frozenset()),
        str(tmp_path / "pods"): WatchTarget(str(tmp_path / "pods"), frozenset(), frozenset({"*"})),
        str(tmp_path / "pods" / "ns_a"): WatchTarget(str(tmp_path / "pods" / "ns_a"), frozenset(), frozenset({"*"})),
        str(tmp_path / "pods" / "ns_b"): WatchTarget(str(tmp_path / "pods" / "ns_b"), frozenset(), frozenset({"*"})),
        str(tmp_path / "pods" / "ns_a" / "app"): WatchTarget(
            str(tmp_path / "pods" / "ns_a" / "app"), frozenset({"*.log"}), frozenset()
        ),
    }


def test_names_match_like_glob_hidden_files_included() -> None:
    assert name_matches("app.log", ["*.log"])
    assert not name_matches("app.log.1", ["*.log"])
    assert not name_matches(".app.log.swp", ["*.log*"]), "glob's * never matches a leading dot"
    assert name_matches(".hidden.log", [".*.log"])
    assert name_matches("app-7.log", ["app-[0-9].log"])


def test_a_file_created_written_and_renamed_away_at_once_is_handed_over_whole(
    tmp_path: Path, arrivals: Arrivals, watch: list[DirectoryWatcher]
) -> None:
    start(watch, arrivals, tmp_path / "*.log")
    app = tmp_path / "app.log"
    content = b"".join(b'{"seq": %d}\n' % i for i in range(3000))
    app.write_bytes(content)
    app.rename(tmp_path / "app.log.1")  # out of the glob: a re-glob would never see it
    wait_until(lambda: arrivals.files, 5, message="the new file handed over")
    # At its IN_CREATE, and maybe again at its rename (the tailer keeps one): always under its matched name.
    assert set(arrivals.files) == {(str(app), content)}


def test_a_file_renamed_before_it_could_be_opened_is_found_by_its_new_name(
    tmp_path: Path, arrivals: Arrivals, watch: list[DirectoryWatcher]
) -> None:
    start(watch, arrivals, tmp_path / "*.log")
    arrivals.gate.clear()  # hold watchdog's thread in the first hand-over
    (tmp_path / "first.log").write_bytes(b"first\n")
    wait_until(arrivals.entered.is_set, 5, message="watchdog's thread held")
    app = tmp_path / "app.log"
    app.write_bytes(b"whole\n")
    app.rename(tmp_path / "app.log.1")  # while the watcher is busy: its IN_CREATE finds nothing at app.log
    arrivals.gate.set()
    wait_until(lambda: len(arrivals.files) == 2, 5, message="both files handed over")
    assert sorted(arrivals.files) == [(str(app), b"whole\n"), (str(tmp_path / "first.log"), b"first\n")]


def test_a_file_moved_into_the_glob_arrives(tmp_path: Path, arrivals: Arrivals, watch: list[DirectoryWatcher]) -> None:
    start(watch, arrivals, tmp_path / "*.log")
    (tmp_path / "app.tmp").write_bytes(b"written elsewhere\n")
    (tmp_path / "app.tmp").rename(tmp_path / "app.log")
    wait_until(lambda: arrivals.files, 5, message="the moved-in file handed over")
    assert arrivals.files == [(str(tmp_path / "app.log"), b"written elsewhere\n")]


def test_a_directory_the_app_creates_later_is_watched_as_soon_as_it_appears(
    tmp_path: Path, arrivals: Arrivals, watch: list[DirectoryWatcher]
) -> None:
    logs = tmp_path / "var" / "log" / "app"
    watcher = start(watch, arrivals, logs / "*.log")
    assert watcher.watched == [str(tmp_path)]
    logs.mkdir(parents=True)
    (logs / "app.log").write_bytes(b"first words\n")  # at once: maybe before the new directory's watch began
    wait_until(lambda: watcher.watched == [str(logs)], 5, message="the ancestor's watch replaced")
    (logs / "app.log").rename(logs / "app.log.1")
    wait_until(lambda: arrivals.files, 5, message="the file in the new directory handed over")
    assert set(arrivals.files) == {(str(logs / "app.log"), b"first words\n")}
    (logs / "second.log").write_bytes(b"second\n")
    (logs / "second.log").rename(logs / "second.log.1")
    wait_until(lambda: str(logs / "second.log") in arrivals.paths(), 5, message="watched directly now")


def test_a_deleted_and_recreated_directory_is_watched_again(
    tmp_path: Path, arrivals: Arrivals, watch: list[DirectoryWatcher]
) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    watcher = start(watch, arrivals, logs / "*.log")
    logs.rmdir()
    wait_until(lambda: watcher.watched == [str(tmp_path)], 5, message="back to the ancestor")
    logs.mkdir()
    wait_until(lambda: watcher.watched == [str(logs)], 5, message="the new directory watched")
    (logs / "app.log").write_bytes(b"again\n")
    wait_until(lambda: arrivals.files == [(str(logs / "app.log"), b"again\n")], 5, message="its new file")


def test_rotation_and_deletion_ask_for_a_re_glob(
    tmp_path: Path, arrivals: Arrivals, watch: list[DirectoryWatcher]
) -> None:
    (tmp_path / "app.log").write_bytes(b"x\n")
    start(watch, arrivals, tmp_path / "*.log")
    (tmp_path / "app.log").rename(tmp_path / "app.log.1")
    wait_until(lambda: arrivals.rescans >= 1, 5, message="a re-glob asked for after the rename")
    (tmp_path / "other.log").write_bytes(b"y\n")
    wait_until(lambda: arrivals.files, 5)
    before = arrivals.rescans
    (tmp_path / "other.log").unlink()
    wait_until(lambda: arrivals.rescans > before, 5, message="a re-glob asked for after the deletion")


def test_the_pipeline_ships_a_file_renamed_away_before_any_scan_whole_and_follows_it_to_its_end(
    make_harness: MakeHarness, logs: Path
) -> None:
    h = make_harness(rotate_wait_seconds=1.0)
    h.pump(1)  # the first scan is done; the next periodic one is LOG_SCAN_INTERVAL_SECONDS away
    app = logs / "app.log"
    writer = app.open("a")
    writer.writelines(f"early {i}\n" for i in range(100))
    writer.flush()
    app.rename(logs / "app.log.1")
    writer.writelines(f"late {i}\n" for i in range(10))  # the writer has not reopened yet
    writer.close()

    def adopted() -> bool:
        h.turn()
        return bool(h.tailer.tails)

    wait_until(adopted, 5, message="the watcher's file adopted")
    (status,) = h.tailer.statuses()
    assert status.path == str(app), "documents name the file as LOG_PATHS matched it"
    assert not status.matched, "followed as a rotated file"
    assert h.metric("log_sidecar_file_events_total", event="rotated") == 1
    h.pump(3)
    assert sorted(h.sink.messages()) == sorted([f"early {i}" for i in range(100)] + [f"late {i}" for i in range(10)])
    assert not h.tailer.tails, "closed LOG_ROTATE_WAIT_SECONDS after its last write"


def test_a_relative_glob_is_watched_and_its_files_named_as_glob_names_them(
    tmp_path: Path, arrivals: Arrivals, watch: list[DirectoryWatcher], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert watch_targets(["*.log"]) == {"": WatchTarget("", frozenset({"*.log"}), frozenset())}
    start(watch, arrivals, Path("*.log"))
    Path("app.log").write_bytes(b"here\n")
    wait_until(lambda: arrivals.files, 5, message="the new file handed over")
    assert set(arrivals.files) == {("app.log", b"here\n")}, "as glob.glob('*.log') names it"
