"""The directory watch: a ``..data`` swap is reported as a commit as soon as it is read, other noise is not."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from watchdog.observers.inotify_c import InotifyConstants, InotifyEvent

from config_sidecar.source import NameFilter
from config_sidecar.watcher import DirectoryWatcher
from tests.support import wait_until
from tests.support.kubelet import KubeletVolume


class Events:
    """Collect ``on_change(commit)`` calls from the watcher's reader thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: list[bool] = []

    def __call__(self, commit: bool) -> None:
        with self._lock:
            self._calls.append(commit)

    @property
    def calls(self) -> list[bool]:
        with self._lock:
            return list(self._calls)


@pytest.fixture
def events() -> Events:
    return Events()


@pytest.fixture
def watched(tmp_path: Path, events: Events) -> Iterator[tuple[KubeletVolume, DirectoryWatcher]]:
    volume = KubeletVolume(tmp_path / "source")
    volume.write({"app.yaml": "a: 1\n"})
    watcher = DirectoryWatcher(volume.directory, NameFilter(("*.swp",)), events)
    assert watcher.ensure() is True
    try:
        yield volume, watcher
    finally:
        watcher.stop()


def test_a_kubelet_swap_is_reported_as_a_commit(
    watched: tuple[KubeletVolume, DirectoryWatcher], events: Events
) -> None:
    volume, _ = watched
    volume.write({"app.yaml": "a: 2\n"})
    wait_until(lambda: True in events.calls, message="the ..data swap was not reported as a commit")


def test_a_move_onto_data_is_a_commit_without_its_moved_from_half(tmp_path: Path, events: Events) -> None:
    # The kernel may hand out IN_MOVED_FROM (..data_tmp) and IN_MOVED_TO (..data) in separate reads;
    # the IN_MOVED_TO alone must already count, nothing may wait to pair the two.
    watcher = DirectoryWatcher(tmp_path, NameFilter(()), events)
    assert watcher.ensure() is True
    try:
        wd = watcher._wd
        assert wd is not None
        watcher.on_event(InotifyEvent(wd, InotifyConstants.IN_MOVED_FROM, 1, b"..data_tmp"))
        assert events.calls == []  # bookkeeping name: not a config change
        watcher.on_event(InotifyEvent(wd, InotifyConstants.IN_MOVED_TO, 1, b"..data"))
        assert events.calls == [True]
    finally:
        watcher.stop()


def test_plain_edits_are_changes_but_hidden_and_ignored_names_are_not(
    watched: tuple[KubeletVolume, DirectoryWatcher], events: Events
) -> None:
    volume, _ = watched
    (volume.directory / ".hidden").write_text("x")
    (volume.directory / "app.yaml.swp").write_text("x")
    (volume.directory / "extra.yaml").write_text("b: 1\n")
    wait_until(lambda: events.calls, message="writing extra.yaml was not reported")
    assert True not in events.calls  # a plain write may be half done: never a commit


def test_a_deleted_directory_is_watched_again_once_it_reappears(
    watched: tuple[KubeletVolume, DirectoryWatcher], events: Events
) -> None:
    volume, watcher = watched
    shutil.rmtree(volume.directory)
    wait_until(lambda: events.calls, message="the deletion of the directory was not reported")
    volume.directory.mkdir()
    wait_until(watcher.ensure, message="the recreated directory was not watched again")
    assert watcher.watching


def test_stop_is_final(tmp_path: Path, events: Events) -> None:
    watcher = DirectoryWatcher(tmp_path, NameFilter(()), events)
    assert watcher.ensure() is True
    watcher.stop()
    assert not watcher.watching
    assert watcher.ensure() is False


def test_a_failing_callback_does_not_end_the_watch(tmp_path: Path) -> None:
    # Callbacks run on watchdog's reader thread: an exception escaping them would end that thread.
    calls: list[bool] = []

    def fail_once(commit: bool) -> None:
        calls.append(commit)
        if len(calls) == 1:
            raise RuntimeError("first change fails")

    watcher = DirectoryWatcher(tmp_path, NameFilter(()), fail_once)
    assert watcher.ensure() is True
    try:
        (tmp_path / "first.yaml").write_text("a: 1\n")
        wait_until(lambda: calls, message="the first change was not reported")
        reported = len(calls)
        (tmp_path / "second.yaml").write_text("a: 2\n")
        wait_until(lambda: len(calls) > reported, message="no change was reported after the callback failed")
        assert watcher.ensure() is False  # the same watch is still alive: no re-watch needed
    finally:
        watcher.stop()


def test_a_queue_overflow_is_reported_as_a_change(tmp_path: Path, events: Events) -> None:
    watcher = DirectoryWatcher(tmp_path, NameFilter(()), events)
    assert watcher.ensure() is True
    try:
        watcher.on_queue_overflow()
        assert events.calls == [False]  # lost events: a full sync, never a commit
    finally:
        watcher.stop()


def test_a_nested_item_change_arrives_as_the_root_data_swap(tmp_path: Path, events: Events) -> None:
    # Kubelet writes nested items inside the new timestamped directory: the only event at the top is the swap.
    volume = KubeletVolume(tmp_path / "source")
    volume.write({"app.yaml": "a: 1\n", "mesh/routes.yaml": "r: 1\n"})
    watcher = DirectoryWatcher(volume.directory, NameFilter(()), events)
    assert watcher.ensure() is True
    try:
        assert watcher._subdirectories == {}  # `mesh` is a link into the current version: never watched
        volume.write({"app.yaml": "a: 1\n", "mesh/routes.yaml": "r: 2\n"})
        wait_until(lambda: True in events.calls, message="the nested change was not reported as a commit")
        assert watcher.ensure() is False
        assert watcher._subdirectories == {}
    finally:
        watcher.stop()


@pytest.fixture
def plain_watched(tmp_path: Path, events: Events) -> Iterator[tuple[Path, DirectoryWatcher]]:
    source = tmp_path / "plain"
    (source / "mesh").mkdir(parents=True)
    (source / "mesh" / "routes.yaml").write_text("r: 1\n")
    watcher = DirectoryWatcher(source, NameFilter(("*.swp",)), events)
    assert watcher.ensure() is True
    try:
        yield source, watcher
    finally:
        watcher.stop()


def test_an_edit_in_a_plain_subdirectory_is_reported(
    plain_watched: tuple[Path, DirectoryWatcher], events: Events
) -> None:
    source, watcher = plain_watched
    wd = watcher._subdirectories["mesh"].wd
    for noise in (b".routes.yaml.swp", b"routes.yaml.swp"):  # hidden and ignored names are noise here too
        watcher.on_event(InotifyEvent(wd, InotifyConstants.IN_CLOSE_WRITE, 0, noise))
    assert events.calls == []
    (source / "mesh" / "routes.yaml").write_text("r: 2\n")
    wait_until(lambda: events.calls, message="the edit in mesh/ was not reported")
    assert True not in events.calls


def test_a_new_subdirectory_is_watched_and_its_files_reported(
    plain_watched: tuple[Path, DirectoryWatcher], events: Events
) -> None:
    source, watcher = plain_watched
    (source / "conf.d" / "deep").mkdir(parents=True)
    wait_until(lambda: events.calls, message="the new directory was not reported")
    # Files written before its watch began are the caller's to find: ensure() says a sync is due.
    assert watcher.ensure() is True
    assert sorted(watcher._subdirectories) == ["conf.d", "conf.d/deep", "mesh"]
    reported = len(events.calls)
    (source / "conf.d" / "deep" / "app.yaml").write_text("a: 1\n")
    wait_until(lambda: len(events.calls) > reported, message="a file in the new subdirectory was not reported")


def test_a_removed_subdirectory_is_reported_and_forgotten(
    plain_watched: tuple[Path, DirectoryWatcher], events: Events
) -> None:
    source, watcher = plain_watched
    shutil.rmtree(source / "mesh")
    wait_until(lambda: events.calls, message="the removal of mesh/ was not reported")
    wait_until(lambda: watcher.ensure() is False and watcher._subdirectories == {}, message="mesh/ still watched")
    assert watcher.watching  # the root watch is untouched
