"""The checkpoint is written atomically and only ever holds acknowledged offsets."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from log_sidecar.acks import AckTracker
from log_sidecar.checkpoint import CheckpointError, CheckpointStore, FileEntry
from tests.support import FakeClock


def entry(key: str = "k" * 16, ino: int = 7, offset: int = 0, dev: int = 1) -> FileEntry:
    return FileEntry(dev, ino, 0, key, "f" * 64, 10, offset, "/logs/app.log")


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    store.put(entry(offset=5))
    assert store.save()
    assert not store.save(), "nothing changed: no write"
    again = CheckpointStore(tmp_path)
    again.load()
    assert again.entries() == [entry(offset=5)]
    assert json.loads((tmp_path / "checkpoint.json").read_text())["version"] == 1


def test_a_failed_write_leaves_the_previous_checkpoint_intact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = CheckpointStore(tmp_path)
    store.put(entry(offset=5))
    store.save()
    before = (tmp_path / "checkpoint.json").read_bytes()
    store.commit("k" * 16, 99)

    def crash(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(CheckpointError):
        store.save()
    assert (tmp_path / "checkpoint.json").read_bytes() == before
    assert store.dirty, "still to be written next time"
    monkeypatch.undo()
    assert store.save()
    reloaded = CheckpointStore(tmp_path)
    reloaded.load()
    assert reloaded.offset("k" * 16) == 99


def test_a_corrupt_checkpoint_is_moved_aside_not_trusted(tmp_path: Path) -> None:
    (tmp_path / "checkpoint.json").write_text('{"files": [{"dev": 1')
    store = CheckpointStore(tmp_path)
    store.load()
    assert store.entries() == []
    assert (tmp_path / "checkpoint.json.corrupt").exists()


def test_commit_only_moves_forward_and_ignores_unknown_keys(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    store.put(entry(offset=10))
    assert not store.commit("k" * 16, 5)
    assert not store.commit("other-generation", 50)
    assert store.commit("k" * 16, 20)
    assert store.offset("k" * 16) == 20


def test_a_new_generation_replaces_the_entry_of_its_inode(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    store.put(entry(key="a" * 16, offset=10))
    store.put(entry(key="b" * 16, offset=0))
    assert [e.key for e in store.entries()] == ["b" * 16]
    assert not store.commit("a" * 16, 20), "acks of the old generation no longer move anything"


def test_candidates_tolerate_a_changed_device_number(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    store.put(entry(dev=1, ino=7))
    assert [c.dev for c in store.candidates(2, 7)] == [1]
    assert store.candidates(1, 8) == []


def test_closed_entries_are_purged_after_the_retention(tmp_path: Path) -> None:
    clock = FakeClock()
    store = CheckpointStore(tmp_path, clock=clock, retention_seconds=60)
    store.put(entry())
    store.mark_closed("k" * 16)
    store.save()
    assert len(store.entries()) == 1
    clock.advance(61)
    store.save(force=True)
    assert store.entries() == []


def test_the_checkpoint_advances_only_over_the_contiguous_acknowledged_prefix() -> None:
    tracker = AckTracker()
    tracker.start("k", 100)
    ranges = []
    for end in (110, 120, 130):
        rng = tracker.open_range("k")  # each range starts where the previous one ended
        tracker.extend(rng, end)
        ranges.append(rng)
    first, second, third = ranges
    assert (first.start, second.start, third.start) == (100, 110, 120)
    assert tracker.complete([second]) == {}, "a gap before it: nothing is safe yet"
    assert tracker.committed("k") == 100
    assert tracker.complete([first]) == {"k": 120}
    assert tracker.complete([third]) == {"k": 130}
    assert tracker.outstanding("k") == 0


def test_skipped_bytes_commit_at_once_only_when_nothing_is_in_flight() -> None:
    tracker = AckTracker()
    tracker.start("k", 0)
    assert tracker.skip("k", 5) == 5
    pending = tracker.open_range("k")
    tracker.extend(pending, 15)
    assert tracker.skip("k", 20) is None, "bytes after an unacknowledged range wait for it"
    assert tracker.complete([pending]) == {"k": 20}


def test_cuts_and_the_index_time_survive_a_restart_until_acknowledged(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    store.put(entry(offset=5))
    store.update("k" * 16, index_time=1234.5)
    store.add_cut("k" * 16, 20)
    store.add_cut("k" * 16, 40)
    store.add_cut("k" * 16, 3)  # already acknowledged: nothing to re-cut
    store.save()
    again = CheckpointStore(tmp_path)
    again.load()
    (loaded,) = again.entries()
    assert (loaded.cuts, loaded.index_time) == ([20, 40], 1234.5)
    again.commit("k" * 16, 20)
    assert again.entries()[0].cuts == [40]
