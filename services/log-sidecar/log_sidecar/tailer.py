"""Follow log files through rotation, truncation and deletion, handing out complete lines.

* Discovery: the directory watcher (watcher.py) opens a new file the moment it
  appears and hands the descriptor over (``arrive``); the re-glob every
  LOG_SCAN_INTERVAL_SECONDS is the safety net. A file that was renamed away
  before it was adopted is followed like any rotated file.
* Rotation by rename + create: the old file stays open and is read to its end;
  it is closed LOG_ROTATE_WAIT_SECONDS after its last write (a writer may
  still append to it briefly), and the new file is picked up at once.
* copytruncate: a file shorter than our read position (or whose first bytes
  changed) was truncated; reading restarts at 0 under a new generation, so
  the new content gets new document ids.
* Deleted files: the open descriptor still reaches the data; it is finished,
  then closed.
* Dated indices: a record without a timestamp of its own is named into an
  index by the file's pinned read time, saved in the checkpoint, not by the
  clock at each read; so a record resent after a restart across midnight
  reaches the same index (where its ``_id`` is known) instead of a new one.
  The pin moves to the current hour only once every record read under the old
  one was acknowledged, and only past the bytes an earlier run may have sent.
* Partial last lines wait for their newline; after LOG_PARTIAL_FLUSH_SECONDS
  without new bytes they are shipped as they are (so is a pending multiline
  record). Where that cut fell is saved first, and a re-read after a crash
  cuts there again: the flushed part keeps its id (a 409 on resend) and the
  rest of the line its own, instead of the whole line reusing the first id. Lines longer than
  LOG_MAX_LINE_BYTES are cut, and the rest of the line is skipped without
  ever holding more than the limit in memory.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from log_sidecar import discovery
from log_sidecar.acks import AckTracker
from log_sidecar.checkpoint import CheckpointError, CheckpointStore
from log_sidecar.identity import FileIdentity, Match, establish, resolve, to_entry
from log_sidecar.metrics import Metrics
from log_sidecar.multiline import MultilineJoiner
from log_sidecar.records import FileContext, format_timestamp
from log_sidecar.settings import Settings
from log_sidecar.watcher import DirectoryWatcher

logger = logging.getLogger(__name__)

CHUNK_BYTES = 256 * 1024
# Read at most this much from one file per pass, so one busy file cannot starve the others.
PASS_BYTES = 4 * 1024 * 1024
# The read time that names dated indices changes at most this often (UTC hours): every
# date pattern coarser than an hour then sees one stable index per record across restarts.
INDEX_PERIOD_SECONDS = 3600.0


class LineConsumer(Protocol):
    """Receives what a Tail reads, in file order."""

    def lines(self, tail: Tail, start: int, lines: list[bytes]) -> None:
        """Complete lines (without their newline), contiguous from byte ``start``."""

    def line(self, tail: Tail, start: int, data: bytes, end: int, truncated: bool) -> None:
        """One record spanning ``[start, end)``: a flushed partial line or a cut over-long line."""

    def skip(self, tail: Tail, end: int) -> None:
        """Bytes up to ``end`` that produce no record (the discarded rest of an over-long line)."""

    def flush(self, tail: Tail) -> None:
        """Emit anything held for ``tail`` (a pending multiline record): no more bytes follow for now."""

    def saturated(self) -> bool:
        """True while the consumer cannot take more (the buffer is full): stop reading."""


class Tail:
    """One open log file and our position in it."""

    def __init__(self, path: str, fd: int, dev: int, ino: int, offset: int, now: float) -> None:
        self.path = path
        self.ctx = FileContext(path)
        self.fd = fd
        self.dev = dev
        self.ino = ino
        self.identity: FileIdentity | None = None
        self.next_generation = 0
        self.offset = offset  # next byte to read
        self.consumed = offset  # bytes handed to the consumer (offset minus what is held below)
        self.leftover = b""  # a partial line waiting for its newline
        self.long_head: bytes | None = None  # the kept start of an over-long line
        self.long_start = 0
        self.discarding = False  # inside an over-long line: drop bytes until its newline
        self.size = 0
        self.matched = True  # False once rotated away or deleted
        self.deleted = False
        self.unmatched_since: float | None = None
        self.last_data_at = now
        self.waiting_since: float | None = None  # data present, identity not yet fixed
        self.joiner: MultilineJoiner | None = None
        self.index_time = 0.0  # pinned read time naming the index of records without their own timestamp
        self.index_ts = format_timestamp(0.0)
        self.reread_until = 0  # bytes below this may have been sent by an earlier run, under the pinned time
        self.cuts: list[int] = []  # where an earlier run flushed held records: flush again when reaching them

    @property
    def key(self) -> str:
        assert self.identity is not None, "a tail hands out lines only once its identity is fixed"
        return self.identity.key

    @property
    def holding(self) -> bool:
        """Bytes read but not yet handed out."""
        return bool(self.leftover) or self.long_head is not None or (self.discarding and self.consumed < self.offset)

    def pin_index_time(self, epoch: float) -> None:
        self.index_time = epoch
        self.index_ts = format_timestamp(epoch)

    def set_path(self, path: str) -> None:
        self.path = path
        self.ctx = FileContext(path)

    def feed(self, data: bytes, consumer: LineConsumer, max_line: int) -> None:
        """Split freshly read ``data`` into lines for ``consumer``; keep the unfinished tail."""
        base = self.offset
        self.offset += len(data)
        if self.discarding:
            newline = data.find(b"\n")
            if newline < 0:
                return
            end = base + newline + 1
            if self.long_head is not None:
                consumer.line(self, self.long_start, self.long_head, end, True)
                self.long_head = None
            else:
                consumer.skip(self, end)
            self.consumed = end
            self.discarding = False
            data = data[newline + 1 :]
        buf = self.leftover + data if self.leftover else data
        parts = buf.split(b"\n")
        rest = parts.pop()
        if parts:
            start = self.consumed
            self.consumed = self.offset - len(rest)
            consumer.lines(self, start, parts)
        if len(rest) > max_line:
            self.long_head = rest[:max_line]
            self.long_start = self.consumed
            self.discarding = True
            self.leftover = b""
        else:
            self.leftover = rest

    def flush_partial(self, consumer: LineConsumer) -> None:
        """Hand out what is held although its newline has not come (idle timeout, end of file, shutdown)."""
        if self.long_head is not None:
            consumer.line(self, self.long_start, self.long_head, self.offset, True)
            self.long_head = None
        elif self.discarding and self.consumed < self.offset:
            consumer.skip(self, self.offset)
        elif self.leftover:
            consumer.line(self, self.consumed, self.leftover, self.offset, False)
            self.leftover = b""
        self.consumed = self.offset

    def restart(self, generation: int) -> None:
        """Forget our position: the file's content starts again at byte 0."""
        self.identity = None
        self.next_generation = generation
        self.offset = self.consumed = 0
        self.leftover = b""
        self.long_head = None
        self.discarding = False
        self.waiting_since = None
        self.cuts = []  # offsets in the old content
        self.reread_until = 0


@dataclass(frozen=True)
class FileStatus:
    """What the metrics need to know about one open file."""

    path: str
    key: str | None
    size: int
    matched: bool


class Tailer:
    """All open files: discovery, identity, reading, rotation and closing."""

    def __init__(
        self,
        settings: Settings,
        store: CheckpointStore,
        tracker: AckTracker,
        metrics: Metrics,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        watcher: DirectoryWatcher | None = None,
    ) -> None:
        self.settings = settings
        self._watcher = watcher
        # Files the watcher opened as they appeared, (matched path, descriptor): appended on its
        # thread, adopted on ours (a deque's append and popleft are thread-safe).
        self._arrivals: deque[tuple[str, int]] = deque()
        self._store = store
        self._tracker = tracker
        self._metrics = metrics
        self._clock = clock
        self._wall_clock = wall_clock
        self._pattern = re.compile(settings.multiline_pattern) if settings.multiline_pattern else None
        self.tails: dict[tuple[int, int], Tail] = {}
        self._next_scan = 0.0
        self._retired_keys: set[str] = set()
        self.scans = 0

    # Discovery --------------------------------------------------------------
    def scan_due(self, now: float) -> bool:
        return now >= self._next_scan

    def request_scan(self) -> None:
        """Re-glob at the next turn (any thread: a float store)."""
        self._next_scan = 0.0

    def arrive(self, path: str, fd: int) -> None:
        """Take a file the watcher opened as it appeared, matched as ``path``; adopted at the next turn (any thread)."""
        self._arrivals.append((path, fd))

    def adopt_arrivals(self) -> int:
        """Follow the files the watcher handed over; return how many were new to us."""
        adopted = 0
        while self._arrivals:
            path, fd = self._arrivals.popleft()
            tail = self._follow(path, fd, matched=None)
            if tail is not None:
                adopted += 1
        return adopted

    def scan(self) -> None:
        """Open newly matched files; note files that no longer match (rotated away or deleted)."""
        now = self._clock()
        self._next_scan = now + self.settings.scan_interval_seconds
        if self._watcher is not None:
            self._watcher.ensure()  # re-watch what was lost (a deleted directory, a dead reader thread)
        self.adopt_arrivals()  # first, so a file both watched and globbed keeps the watcher's record
        found = discovery.scan(self.settings.paths)
        for ident, match in found.items():
            tail = self.tails.get(ident)
            if tail is None:
                self._open(match.path)
                continue
            if tail.path != match.path:
                tail.set_path(match.path)
                if tail.identity is not None:
                    self._store.update(tail.identity.key, path=match.path)
            if not tail.matched:
                tail.matched = True
                tail.unmatched_since = None
        for ident, tail in self.tails.items():
            if ident not in found and tail.matched:
                self._unmatched(tail, now)
        if self.scans == 0:
            self._recover_rotated_while_away()
        self.scans += 1

    def _open(self, path: str, matched: bool = True) -> Tail | None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            logger.warning("cannot open log file", extra={"file": path, "error": str(exc)})
            return None
        return self._follow(path, fd, matched)

    def _follow(self, path: str, fd: int, matched: bool | None) -> Tail | None:
        """Follow the open file ``fd``, matched by LOG_PATHS as ``path``; ``matched=None``: find out.

        A file the watcher opened may have been renamed away since: then ``path`` no longer
        names it, and it is finished and closed like any rotated file.
        """
        try:
            st = os.fstat(fd)
        except OSError as exc:
            logger.warning("cannot read a log file's status", extra={"file": path, "error": str(exc)})
            os.close(fd)
            return None
        ident = (st.st_dev, st.st_ino)
        if ident in self.tails:  # replaced between glob and open, or seen by both the watcher and the glob
            os.close(fd)
            return None
        rotated_before_adoption = matched is None and not _names(path, ident)
        if matched is None:
            matched = True  # noted as rotated below, once followed
        resolution = resolve(fd, st.st_dev, st.st_ino, st.st_size, self._store.candidates(st.st_dev, st.st_ino))
        now = self._clock()
        tail = Tail(path, fd, st.st_dev, st.st_ino, resolution.offset, now)
        tail.size = st.st_size
        tail.next_generation = resolution.generation
        if self._pattern is not None:
            tail.joiner = MultilineJoiner(
                self._pattern, self.settings.multiline_max_lines, self.settings.max_line_bytes
            )
        if not matched:
            tail.matched = False
            tail.unmatched_since = now
        entry = resolution.entry
        if resolution.match is Match.RESUME and entry is not None:
            prefix = os.pread(fd, entry.fingerprint_len, 0)
            tail.identity = FileIdentity(st.st_dev, st.st_ino, entry.generation, entry.key, prefix)
            # An older checkpoint has no pinned time: the current one is the best guess left.
            tail.pin_index_time(self._wall_clock() if entry.index_time is None else entry.index_time)
            tail.reread_until = st.st_size  # an earlier run cannot have read past the file's current end
            tail.cuts = sorted(cut for cut in set(entry.cuts) if cut > resolution.offset)
            self._adopt(tail, new=False)
        self.tails[ident] = tail
        self._metrics.file_events.labels(resolution.match.value).inc()
        self._metrics.file_events.labels("opened").inc()
        logger.info(
            "following %s (%s) from offset %d",
            path,
            resolution.match.value,
            resolution.offset,
            extra={"file": path, "match": resolution.match.value, "offset": resolution.offset, "size": st.st_size},
        )
        if rotated_before_adoption:
            self._unmatched(tail, now)
        return tail

    def _recover_rotated_while_away(self) -> None:
        """Finish files rotated while the sidecar was down: find them by inode next to their old name."""
        followed = {(t.dev, t.ino) for t in self.tails.values()}
        for entry in self._store.entries():
            if entry.closed_at is not None or (entry.dev, entry.ino) in followed:
                continue
            path = discovery.find_inode(os.path.dirname(entry.path), entry.dev, entry.ino)
            tail = self._open(path, matched=False) if path else None
            if tail is not None and tail.identity is not None and tail.identity.key == entry.key:
                logger.info("finishing a file rotated while we were away", extra={"file": path, "was": entry.path})
                continue
            if tail is not None:  # same inode, other content: not ours to finish
                self._close(tail, "gone")
            logger.warning(
                "file gone since the last run; bytes after offset %d, if any, were not shipped",
                entry.offset,
                extra={"file": entry.path, "offset": entry.offset},
            )
            self._metrics.skipped.labels("file_gone").inc()
            self._metrics.file_events.labels("gone").inc()
            self._store.mark_closed(entry.key)

    # Identity ---------------------------------------------------------------
    def _adopt(self, tail: Tail, new: bool) -> None:
        identity = tail.identity
        assert identity is not None
        self._tracker.start(identity.key, tail.offset)
        entry = to_entry(identity, tail.offset, tail.path, tail.index_time)
        entry.cuts = list(tail.cuts)
        if not new:
            committed = self._store.offset(identity.key)
            entry.offset = tail.offset if committed is None else committed
        self._store.put(entry)
        if new:
            # The key names every document id of this file: persist it before the first
            # document leaves, so a restart can never re-derive a different one.
            self._save()

    def _establish(self, tail: Tail, now: float) -> bool:
        force = tail.waiting_since is not None and now - tail.waiting_since >= self.settings.partial_flush_seconds
        identity = establish(
            tail.fd, tail.dev, tail.ino, tail.next_generation, self.settings.fingerprint_bytes, force=force
        )
        if identity is None:
            if tail.waiting_since is None:
                tail.waiting_since = now
            return False
        tail.identity = identity
        tail.waiting_since = None
        tail.pin_index_time(self._wall_clock())
        self._adopt(tail, new=True)
        return True

    def _grow_fingerprint(self, tail: Tail) -> None:
        identity = tail.identity
        assert identity is not None
        wanted = self.settings.fingerprint_bytes
        if len(identity.prefix) >= wanted or tail.size <= len(identity.prefix):
            return
        prefix = os.pread(tail.fd, wanted, 0)
        if prefix.startswith(identity.prefix):
            identity.prefix = prefix
            self._store.update(identity.key, fingerprint=identity.fingerprint, fingerprint_len=len(prefix))

    def _save(self) -> bool:
        try:
            if self._store.save():
                self._metrics.checkpoint_writes.labels("ok").inc()
        except CheckpointError as exc:
            self._metrics.checkpoint_writes.labels("error").inc()
            logger.error("checkpoint write failed", extra={"path": str(exc.path), "error": exc.reason})
            return False
        return True

    def _index_time_current(self, tail: Tail) -> bool:
        """Keep the tail's pinned index time, or move it to now when that is safe; False: do not read yet.

        Safe means: no record read under the old time is still unacknowledged (a crash
        would resend it under the new one), and the checkpoint saying so is on disk.
        """
        now = self._wall_clock()
        period = INDEX_PERIOD_SECONDS
        if now // period == tail.index_time // period or tail.offset < tail.reread_until:
            return True
        key = tail.key
        if self._tracker.outstanding(key):
            return False  # reading resumes once the in-flight records are acknowledged
        committed = self._tracker.committed(key)
        if committed is not None:
            self._store.commit(key, committed)
        previous = tail.index_time
        self._store.update(key, index_time=now)
        if not self._save():
            self._store.update(key, index_time=previous)
            return False
        tail.pin_index_time(now)
        return True

    # Reading ----------------------------------------------------------------
    def poll(self, consumer: LineConsumer) -> tuple[int, bool]:
        """Read new bytes of every file into ``consumer``; return (bytes read, caught up with every file)."""
        total = 0
        caught_up = True
        for tail in list(self.tails.values()):
            if consumer.saturated():
                return total, False
            read, done = self._poll_tail(tail, consumer)
            total += read
            caught_up = caught_up and done
        return total, caught_up

    def _poll_tail(self, tail: Tail, consumer: LineConsumer) -> tuple[int, bool]:
        now = self._clock()
        try:
            st = os.fstat(tail.fd)
        except OSError as exc:  # cannot happen for an open descriptor, but never crash the loop
            logger.error("fstat failed", extra={"file": tail.path, "error": str(exc)})
            return 0, True
        tail.size = st.st_size
        tail.deleted = st.st_nlink == 0
        if tail.identity is None and (tail.size == 0 or not self._establish(tail, now)):
            return 0, True
        if tail.size < tail.offset:
            self._restart(tail, consumer, Match.TRUNCATED)
            return 0, False
        if tail.size == tail.offset:
            return 0, True
        identity = tail.identity
        assert identity is not None
        if tail.offset and not identity.matches(tail.fd):
            self._restart(tail, consumer, Match.REPLACED)
            return 0, False
        if not self._index_time_current(tail):
            return 0, True
        self._grow_fingerprint(tail)
        read = 0
        max_line = self.settings.max_line_bytes
        while read < PASS_BYTES:
            want = min(CHUNK_BYTES, tail.cuts[0] - tail.offset) if tail.cuts else CHUNK_BYTES
            data = os.pread(tail.fd, want, tail.offset)
            if not data:
                break
            tail.feed(data, consumer, max_line)
            read += len(data)
            if tail.cuts and tail.offset >= tail.cuts[0]:
                del tail.cuts[0]
                # An earlier run handed out what it held right here: do the same, so the records match.
                tail.flush_partial(consumer)
                consumer.flush(tail)
            if consumer.saturated():
                break
        if read:
            tail.last_data_at = now
            self._metrics.bytes_read.inc(read)
        return read, tail.offset >= tail.size

    def _restart(self, tail: Tail, consumer: LineConsumer, why: Match) -> None:
        """The file was truncated or rewritten: ship what we hold, then read it again from 0."""
        old = tail.identity
        assert old is not None
        self._flush_held(tail, consumer, must=True)
        logger.warning(
            "%s %s: reading it again from the start",
            tail.path,
            why.value,
            extra={"file": tail.path, "event": why.value, "size": tail.size, "position": tail.offset},
        )
        self._metrics.file_events.labels(why.value).inc()
        self._retired_keys.add(old.key)
        tail.restart(old.generation + 1)

    # Housekeeping -----------------------------------------------------------
    def housekeeping(self, consumer: LineConsumer) -> None:
        """Flush idle partial lines, notice rotation and deletion, close finished files."""
        now = self._clock()
        for tail in list(self.tails.values()):
            idle = now - tail.last_data_at
            at_end = tail.offset >= tail.size
            # Only a writer that stalled makes a partial line final; a reader paused by a full
            # buffer has simply not read the rest of the line yet.
            if at_end and tail.identity is not None and idle >= self.settings.partial_flush_seconds:
                self._flush_held(tail, consumer, must=False)
            if not at_end:
                continue
            if tail.matched and (tail.deleted or not self._still_at_path(tail)):
                self._unmatched(tail, now)
                self.request_scan()
            if not tail.matched and tail.unmatched_since is not None:
                quiet = now - max(tail.unmatched_since, tail.last_data_at)
                if quiet >= self.settings.rotate_wait_seconds:
                    if tail.identity is not None:
                        self._flush_held(tail, consumer, must=True)
                    self._close(tail, "deleted" if tail.deleted else "rotated")
        self._forget_retired()

    def _still_at_path(self, tail: Tail) -> bool:
        return _names(tail.path, (tail.dev, tail.ino))

    def _unmatched(self, tail: Tail, now: float) -> None:
        tail.matched = False
        tail.unmatched_since = now
        try:
            tail.deleted = os.fstat(tail.fd).st_nlink == 0  # gone from every directory, not renamed
        except OSError:
            tail.deleted = True
        event = "deleted" if tail.deleted else "rotated"
        self._metrics.file_events.labels(event).inc()
        logger.info(
            "%s was %s; finishing it before closing",
            tail.path,
            event,
            extra={"file": tail.path, "event": event, "unread_bytes": max(0, tail.size - tail.offset)},
        )

    def _close(self, tail: Tail, why: str) -> None:
        self.tails.pop((tail.dev, tail.ino), None)
        try:
            os.close(tail.fd)
        except OSError as exc:
            logger.warning("close failed", extra={"file": tail.path, "error": str(exc)})
        self._metrics.file_events.labels("closed").inc()
        if tail.identity is not None:
            self._store.mark_closed(tail.identity.key)
            self._retired_keys.add(tail.identity.key)
        logger.info("closed %s (%s)", tail.path, why, extra={"file": tail.path, "reason": why})

    def _forget_retired(self) -> None:
        for key in list(self._retired_keys):
            if self._tracker.outstanding(key) == 0:
                self._tracker.forget(key)
                self._retired_keys.discard(key)

    def flush_all(self, consumer: LineConsumer) -> None:
        """Hand out everything held, complete or not (shutdown)."""
        for tail in self.tails.values():
            if tail.identity is not None:
                self._flush_held(tail, consumer, must=False)  # if the cut cannot be saved: read again next start

    def _flush_held(self, tail: Tail, consumer: LineConsumer, must: bool) -> None:
        """Hand out what ``tail`` holds (a partial line, a pending multiline record) before its end is known.

        The cut is saved first (FileEntry.cuts). If that fails the records stay held,
        to be read again, unless ``must``: the file is going away and shipping them
        (a resend could then duplicate them) beats losing them.
        """
        if tail.holding or (tail.joiner is not None and tail.joiner.pending):
            self._store.add_cut(tail.key, tail.offset)
            if not self._save() and not must:
                return
        tail.flush_partial(consumer)
        consumer.flush(tail)

    def close_all(self) -> None:
        while self._arrivals:
            os.close(self._arrivals.popleft()[1])
        for tail in self.tails.values():
            try:
                os.close(tail.fd)
            except OSError:
                continue
        self.tails.clear()

    def statuses(self) -> Sequence[FileStatus]:
        tails = list(self.tails.values())  # one atomic copy: the admin thread calls this too
        return [FileStatus(t.path, None if t.identity is None else t.identity.key, t.size, t.matched) for t in tails]


def _names(path: str, ident: tuple[int, int]) -> bool:
    """Whether ``path`` still names the file ``ident`` (not renamed away, deleted or replaced)."""
    try:
        st = os.stat(path)
    except OSError:
        return False
    return (st.st_dev, st.st_ino) == ident
