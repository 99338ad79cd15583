"""Join the lines of one multiline record (a Python traceback, a stack trace) into one document.

A line matching LOG_MULTILINE_PATTERN starts a record; every other line belongs
to the record before it. A record is complete when the next one starts, or when
no line arrived for LOG_PARTIAL_FLUSH_SECONDS (the reader decides that).
"""

from __future__ import annotations

import re

from log_sidecar.records import MULTILINE, TRUNCATED


class JoinedRecord:
    """Lines ``[start, end)`` of a file joined with newlines, and the flags they earned."""

    __slots__ = ("end", "flags", "start", "text")

    def __init__(self, text: str, start: int, end: int, flags: tuple[str, ...]) -> None:
        self.text = text
        self.start = start
        self.end = end
        self.flags = flags

    def __repr__(self) -> str:
        return f"JoinedRecord({self.text!r}, {self.start}, {self.end}, {self.flags})"


class MultilineJoiner:
    """Accumulate lines of one file; ``feed`` returns the previous record once a new one starts."""

    def __init__(self, start_pattern: re.Pattern[str], max_lines: int, max_chars: int) -> None:
        self._pattern = start_pattern
        self._max_lines = max_lines
        self._max_chars = max_chars
        self._lines: list[str] = []
        self._chars = 0
        self._start = 0
        self._end = 0
        self._truncated = False

    @property
    def pending(self) -> bool:
        return bool(self._lines)

    @property
    def pending_start(self) -> int:
        return self._start

    def feed(self, text: str, start: int, end: int, truncated: bool = False) -> JoinedRecord | None:
        """Add the line ``text`` that spans bytes ``[start, end)``; return a record that just completed."""
        done = None
        if self._lines and self._pattern.match(text):
            done = self.flush()
        if not self._lines:
            self._lines.append(text)
            self._chars = len(text)
            self._start = start
            self._truncated = truncated
        elif len(self._lines) >= self._max_lines or self._chars + len(text) > self._max_chars:
            self._truncated = True  # the bytes still count as consumed: they end up in no document
        else:
            self._lines.append(text)
            self._chars += len(text) + 1
            self._truncated = self._truncated or truncated
        self._end = end
        return done

    def extend(self, end: int) -> None:
        """Let the pending record also cover bytes that produce no line (a discarded over-long tail)."""
        if self._lines:
            self._end = max(self._end, end)

    def flush(self) -> JoinedRecord | None:
        """Return the pending record, complete or not, and start afresh."""
        if not self._lines:
            return None
        flags: tuple[str, ...] = ()
        if len(self._lines) > 1:
            flags += (MULTILINE,)
        if self._truncated:
            flags += (TRUNCATED,)
        record = JoinedRecord("\n".join(self._lines), self._start, self._end, flags)
        self._lines = []
        self._chars = 0
        self._truncated = False
        return record
