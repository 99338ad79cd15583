"""The tailer through rotation, truncation, deletion, symlinks, partial and over-long lines, bad bytes."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from log_sidecar.ids import document_id, parse_document_id
from log_sidecar.records import RecordBuilder
from tests.unit.log_sidecar.conftest import MakeHarness


def write(path: Path, *lines: str) -> None:
    with path.open("a") as out:
        for line in lines:
            out.write(line + "\n")


def test_lines_become_documents_with_offsets_ids_and_enrichment(make_harness: MakeHarness, logs: Path) -> None:
    write(logs / "app.log", '{"msg": "one", "time": "2026-01-02T03:04:05+00:00"}', "two")
    h = make_harness()
    h.pump()
    docs = sorted(h.sink.stored.items(), key=lambda item: item[1]["log"]["offset"])
    assert [d.get("msg", d.get("message")) for _, d in docs] == ["one", "two"]
    (_first_id, first), (second_id, second) = docs
    assert first["@timestamp"] == "2026-01-02T03:04:05+00:00"
    assert first["log"] == {"file": {"path": str(logs / "app.log")}, "offset": 0}
    assert second["log"]["offset"] == len('{"msg": "one", "time": "2026-01-02T03:04:05+00:00"}') + 1
    assert first["kubernetes"] == {"pod": {"name": "pod-1"}, "namespace": "ns-1"}
    assert first["host"] == {"name": "node-1"}
    key, offset = parse_document_id(second_id)
    assert second_id == document_id(key, offset)
    assert offset == second["log"]["offset"]
    assert h.metric("log_sidecar_lines_read_total") == 2


def test_rename_rotation_finishes_the_old_file_then_follows_the_new(make_harness: MakeHarness, logs: Path) -> None:
    app = logs / "app.log"
    h = make_harness(rotate_wait_seconds=2.0)
    writer = app.open("a")
    for i in range(5):
        writer.write(f"old {i}\n")
    writer.flush()
    h.pump(1)
    app.rename(logs / "app.log.1")
    # The writer has not reopened yet: these lines land in the rotated file.
    for i in range(5, 8):
        writer.write(f"old {i}\n")
    writer.flush()
    write(app, *(f"new {i}" for i in range(4)))
    h.pump(1)
    writer.write("old 8\n")  # a late write just before the writer reopens
    writer.close()
    h.pump(4)
    assert sorted(h.sink.messages()) == sorted([f"old {i}" for i in range(9)] + [f"new {i}" for i in range(4)])
    assert len(h.tailer.tails) == 1, "the rotated file is closed once finished"
    assert h.metric("log_sidecar_file_events_total", event="rotated") == 1
    assert h.metric("log_sidecar_documents_total", result="delivered") == 13


def test_copytruncate_reads_again_from_zero_under_new_ids(make_harness: MakeHarness, logs: Path) -> None:
    app = logs / "app.log"
    write(app, *(f"before {i}" for i in range(3)))
    h = make_harness()
    h.pump(1)
    old_ids = set(h.sink.stored)
    os.truncate(app, 0)
    h.pump(1)
    write(app, "after 0", "after 1")
    h.pump(2)
    assert sorted(h.sink.messages()) == sorted([f"before {i}" for i in range(3)] + ["after 0", "after 1"])
    new_ids = set(h.sink.stored) - old_ids
    assert len(new_ids) == 2
    assert {parse_document_id(i)[1] for i in new_ids} == {0, len("after 0") + 1}
    assert {parse_document_id(i)[0] for i in new_ids}.isdisjoint({parse_document_id(i)[0] for i in old_ids})
    assert h.metric("log_sidecar_file_events_total", event="truncated") == 1


def test_truncate_and_rewrite_past_our_offset_is_caught_by_the_fingerprint(
    make_harness: MakeHarness, logs: Path
) -> None:
    app = logs / "app.log"
    write(app, "first generation line")
    h = make_harness()
    h.pump(1)
    # Truncated and rewritten longer between two polls: the size alone cannot tell.
    with app.open("w") as out:
        out.write("second generation, line one\nsecond generation, line two\n")
    h.pump(2)
    assert sorted(h.sink.messages()) == [
        "first generation line",
        "second generation, line one",
        "second generation, line two",
    ]
    assert h.metric("log_sidecar_file_events_total", event="replaced") == 1


def test_deleted_file_is_read_to_its_end_then_closed(make_harness: MakeHarness, logs: Path) -> None:
    app = logs / "app.log"
    writer = app.open("a")
    writer.write("a\nb\n")
    writer.flush()
    h = make_harness(rotate_wait_seconds=1.0)
    h.pump(1)
    writer.write("c\nd\n")
    writer.flush()
    app.unlink()  # removed mid-read: our descriptor still reaches the bytes
    h.pump(3)
    writer.close()
    assert sorted(h.sink.messages()) == ["a", "b", "c", "d"]
    assert h.tailer.tails == {}
    assert h.metric("log_sidecar_file_events_total", event="deleted") == 1
    assert h.metric("log_sidecar_file_events_total", event="closed") == 1


def test_symlinked_path_is_followed_and_a_file_matched_twice_is_read_once(
    make_harness: MakeHarness, tmp_path: Path, logs: Path
) -> None:
    real_dir = tmp_path / "pods"
    real_dir.mkdir()
    target = real_dir / "0.log"
    write(target, "through the link")
    (logs / "app.log").symlink_to(target)
    h = make_harness(paths=(str(logs / "*.log"), str(real_dir / "*.log")))
    h.pump(2)
    (doc,) = h.sink.stored.values()
    assert doc["message"] == "through the link"
    assert doc["log"]["file"]["path"] == str(logs / "app.log")


def test_partial_line_waits_for_its_newline_and_is_flushed_after_the_timeout(
    make_harness: MakeHarness, logs: Path
) -> None:
    app = logs / "app.log"
    write(app, "complete")
    h = make_harness(partial_flush_seconds=5.0, flush_interval_seconds=0.1)
    h.pump(1)
    with app.open("a") as out:
        out.write("half a li")
    h.pump(2)
    assert h.sink.messages() == ["complete"]
    with app.open("a") as out:
        out.write("ne\nstuck without newline")
    h.pump(2)
    assert h.sink.messages() == ["complete", "half a line"]
    h.clock.advance(5.0)
    h.pump(1)
    assert h.sink.messages() == ["complete", "half a line", "stuck without newline"]
    with app.open("a") as out:
        out.write(" - the rest\n")
    h.pump(2)
    assert h.sink.messages() == ["complete", "half a line", "stuck without newline", " - the rest"]
    offsets = sorted(d["log"]["offset"] for d in h.sink.stored.values())
    assert offsets[-1] == app.stat().st_size - len(" - the rest\n"), "the rest starts where the flushed part ended"


def test_long_lines_are_cut_and_flagged_and_memory_stays_bounded(make_harness: MakeHarness, logs: Path) -> None:
    app = logs / "app.log"
    with app.open("w") as out:
        out.write("x" * 1_000_000 + "\n")  # 1 MB line, read in several chunks
        out.write("y" * 150 + "\n")  # over the limit within one chunk
        out.write("short\n")
    h = make_harness(max_line_bytes=100)
    h.pump(2)
    docs = sorted(h.sink.stored.values(), key=lambda d: d["log"]["offset"])
    assert [len(d["message"]) for d in docs] == [100, 100, 5]
    assert docs[0]["log"]["flags"] == ["truncated"]
    assert docs[1]["log"]["flags"] == ["truncated"]
    assert "flags" not in docs[2]["log"]
    assert docs[1]["log"]["offset"] == 1_000_001
    assert h.metric("log_sidecar_malformed_records_total", reason="truncated") == 2
    assert h.store.offset(next(iter(h.tailer.tails.values())).key) == app.stat().st_size


def test_invalid_utf8_is_replaced_never_fatal(make_harness: MakeHarness, logs: Path) -> None:
    app = logs / "app.log"
    app.write_bytes(b"bad \xff\xfe bytes\n" + b'{"msg": "caf\xc3"}\n' + b"fine\n")
    h = make_harness()
    h.pump(1)
    messages = h.sink.messages()
    assert messages[0] == "bad \ufffd\ufffd bytes"
    assert messages[2] == "fine"
    assert h.metric("log_sidecar_malformed_records_total", reason="invalid_utf8") == 2


def test_binary_garbage_invalid_json_and_blank_lines_are_counted_not_fatal(
    make_harness: MakeHarness, logs: Path
) -> None:
    app = logs / "app.log"
    garbage = bytes(range(256)) * 40
    app.write_bytes(garbage + b"\n{not json\n\n   \n" + b'{"ok": true}\n')
    h = make_harness()
    h.pump(2)
    docs = list(h.sink.stored.values())
    assert any(d.get("ok") is True for d in docs)
    assert any(d.get("message") == "{not json" for d in docs)
    assert h.metric("log_sidecar_malformed_records_total", reason="invalid_json") == 1
    assert h.metric("log_sidecar_skipped_total", reason="blank") == 2
    for doc in docs:  # every document is valid JSON the sink accepted
        json.dumps(doc)
    key = next(iter(h.tailer.tails.values())).key
    assert h.store.offset(key) == app.stat().st_size


def test_restart_resumes_at_the_checkpoint(make_harness: MakeHarness, logs: Path) -> None:
    app = logs / "app.log"
    write(app, "a", "b")
    first = make_harness()
    first.pump(1)
    first.close()
    write(app, "c")
    second = make_harness(sink=first.sink)
    second.pump(1)
    assert first.sink.messages() == ["a", "b", "c"]
    assert second.metric("log_sidecar_file_events_total", event="resume") == 1
    assert sum(first.sink.requests) == 3, "nothing was sent twice"


def test_inode_reuse_with_a_different_fingerprint_reads_the_new_file_from_the_start(
    make_harness: MakeHarness, logs: Path
) -> None:
    app = logs / "app.log"
    write(app, "old file line 1", "old file line 2")
    first = make_harness()
    first.pump(1)
    first.close()
    ino = app.stat().st_ino
    old_key = first.store.entries()[0].key
    # Simulate inode reuse: same (dev, ino), other content. Rewriting in place keeps the inode.
    with app.open("r+") as out:
        out.truncate(0)
        out.write("NEW content, first line that is long enough\nsecond\n")
    assert app.stat().st_ino == ino
    second = make_harness(sink=first.sink)
    second.pump(1)
    assert sorted(first.sink.messages()) == sorted(
        ["old file line 1", "old file line 2", "NEW content, first line that is long enough", "second"]
    )
    (entry,) = second.store.entries()
    assert entry.generation == 1
    assert entry.key != old_key
    assert second.metric("log_sidecar_file_events_total", event="replaced") == 1


def test_a_file_rotated_while_the_sidecar_was_down_is_found_and_finished(make_harness: MakeHarness, logs: Path) -> None:
    app = logs / "app.log"
    write(app, "shipped 1", "shipped 2")
    first = make_harness()
    first.pump(1)
    first.close()
    write(app, "written while down 1", "written while down 2")
    app.rename(logs / "app.log.1")  # not matched by *.log
    write(app, "new file")
    second = make_harness(sink=first.sink, rotate_wait_seconds=1.0)
    second.pump(3)
    assert sorted(first.sink.messages()) == sorted(
        ["shipped 1", "shipped 2", "written while down 1", "written while down 2", "new file"]
    )
    assert len(second.tailer.tails) == 1


def test_lag_and_bytes_at_risk_are_reported(make_harness: MakeHarness, logs: Path) -> None:
    app = logs / "app.log"
    write(app, "a", "b")
    h = make_harness(rotate_wait_seconds=100.0)
    h.reader.step()  # read, but nothing acknowledged yet
    h.reader.update_metrics()
    assert h.metric("log_sidecar_lag_bytes", file=str(app)) == 4
    app.rename(logs / "app.log.1")
    h.reader.step()
    h.reader.update_metrics()
    assert h.metric("log_sidecar_rotated_bytes_at_risk") == 4
    assert h.metric("log_sidecar_lag_bytes", file=f"{app} (rotated)") == 4
    h.pump(2)
    h.reader.update_metrics()
    assert h.metric("log_sidecar_rotated_bytes_at_risk") == 0


def test_a_record_that_cannot_be_built_is_shipped_as_text_and_counted(
    make_harness: MakeHarness, logs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = RecordBuilder.build

    def fragile(self: RecordBuilder, data: bytes, *args: Any) -> tuple[str, bytes, tuple[tuple[str, str], ...]]:
        if b"explode" in data:
            raise RecursionError("maximum recursion depth exceeded")  # e.g. absurdly nested JSON
        return original(self, data, *args)

    monkeypatch.setattr(RecordBuilder, "build", fragile)
    write(logs / "app.log", "before", '{"explode": [[[]]]}', "after")
    h = make_harness()
    h.pump(1)
    assert h.sink.messages() == ["before", '{"explode": [[[]]]}', "after"]
    assert h.metric("log_sidecar_malformed_records_total", reason="unprocessable") == 1


def test_a_traceback_is_shipped_as_one_document(make_harness: MakeHarness, logs: Path) -> None:
    app = logs / "app.log"
    write(
        app,
        "2026-01-01 12:00:00 ERROR request failed",
        "Traceback (most recent call last):",
        '  File "app.py", line 3, in <module>',
        "ValueError: boom",
        "2026-01-01 12:00:01 INFO next",
    )
    h = make_harness(multiline_pattern=r"^\d{4}-\d{2}-\d{2} ", partial_flush_seconds=5.0)
    h.pump(1)
    (first,) = h.sink.stored.values()
    assert first["message"].splitlines()[-1] == "ValueError: boom"
    assert first["log"]["flags"] == ["multiline"]
    h.clock.advance(5.0)  # no next record comes: the pending one is complete after the idle time
    h.pump(1)
    assert h.sink.messages() == [first["message"], "2026-01-01 12:00:01 INFO next"]
    assert h.store.offset(h.store.entries()[0].key) == app.stat().st_size


def test_a_file_rewritten_while_away_is_not_mistaken_for_the_rotated_one(make_harness: MakeHarness, logs: Path) -> None:
    app = logs / "app.log"
    write(app, "shipped before the restart")
    first = make_harness()
    first.pump(1)
    first.close()
    rotated = logs / "app.log.1"
    app.rename(rotated)
    with rotated.open("r+") as out:  # same inode, other content: not the file we were reading
        out.truncate(0)
        out.write("someone else's data\n")
    write(app, "new file")
    second = make_harness(sink=first.sink)
    second.pump(2)
    assert sorted(first.sink.messages()) == ["new file", "shipped before the restart"]
    assert [t.path for t in second.tailer.tails.values()] == [str(app)]
    assert second.metric("log_sidecar_file_events_total", event="gone") == 1
