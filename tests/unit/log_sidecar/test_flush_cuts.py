"""A record flushed before its end was known, then resent after a crash, keeps its id and loses nothing."""

from __future__ import annotations

from pathlib import Path

from tests.unit.log_sidecar.conftest import MakeHarness
from tests.unit.log_sidecar.harness import Harness


def crash_on_next_request(h: Harness) -> None:
    """The next request is stored by the sink but the sidecar dies before the acknowledgement."""
    h.sink.after_store = h.abort.set


def stored_lines(h: Harness) -> list[str]:
    return sorted(line for message in h.sink.messages() for line in message.split("\n"))


def test_a_flushed_partial_line_completed_while_down_is_shipped_once(make_harness: MakeHarness, logs: Path) -> None:
    app = logs / "app.log"
    app.write_text("complete\nhalf")
    first = make_harness(partial_flush_seconds=5.0)
    first.pump(1)
    crash_on_next_request(first)
    first.clock.advance(5.0)  # the writer stalls: the partial line is shipped as it is
    first.pump(1)
    assert "half" in first.sink.messages()
    first.close()
    with app.open("a") as out:
        out.write(" and the rest\n")

    first.sink.after_store = None
    second = make_harness(first.sink, partial_flush_seconds=5.0)
    second.pump(2)

    assert second.sink.messages() == ["complete", "half", " and the rest"]
    assert second.metric("log_sidecar_documents_total", result="duplicate") == 1
    assert second.store.offset(second.store.entries()[0].key) == app.stat().st_size


def test_a_multiline_record_flushed_then_continued_while_down_loses_no_line(
    make_harness: MakeHarness, logs: Path
) -> None:
    app = logs / "app.log"
    head = ["2026-01-01 12:00:00 ERROR request failed", "Traceback (most recent call last):"]
    rest = ["ValueError: boom", "2026-01-01 12:00:01 INFO next"]
    app.write_text("\n".join(head) + "\n")
    pattern = r"^\d{4}-\d{2}-\d{2} "
    first = make_harness(multiline_pattern=pattern, partial_flush_seconds=5.0)
    first.pump(1)
    crash_on_next_request(first)
    first.clock.advance(5.0)  # nothing follows for a while: the pending record is shipped
    first.pump(1)
    assert stored_lines(first) == sorted(head)
    first.close()
    with app.open("a") as out:
        out.write("\n".join(rest) + "\n")

    first.sink.after_store = None
    second = make_harness(first.sink, multiline_pattern=pattern, partial_flush_seconds=5.0)
    second.pump(1)
    second.clock.advance(5.0)
    second.pump(1)

    assert stored_lines(second) == sorted(head + rest)  # every line once
    assert second.metric("log_sidecar_documents_total", result="duplicate") == 1
