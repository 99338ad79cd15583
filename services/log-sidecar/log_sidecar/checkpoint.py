"""Where to resume each file after a restart: a JSON checkpoint written atomically.

The checkpoint holds, per file identity, the offset up to which every record
was acknowledged by the sink (see acks.py), never further: a crash can only
make the sidecar send something again, never skip it.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sidecar_common.durable import replace_file

logger = logging.getLogger(__name__)

FILE_NAME = "checkpoint.json"
FORMAT_VERSION = 1
# Entries of files we stopped reading are kept this long, so a reused inode still gets
# a new generation (and so new document ids) instead of colliding with the old file.
CLOSED_RETENTION_SECONDS = 7 * 24 * 3600.0


class CheckpointError(Exception):
    """The checkpoint could not be written; the previous one is still in place."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


@dataclass
class FileEntry:
    """What the sidecar knows about one file identity."""

    dev: int
    ino: int
    generation: int
    key: str
    fingerprint: str  # sha256 hex of the first fingerprint_len bytes
    fingerprint_len: int
    offset: int  # acknowledged prefix: resume reading here
    path: str
    closed_at: float | None = None
    # Read time (epoch) that names the dated index of records past ``offset`` without a timestamp of
    # their own: a resend after a restart must reach the same index, or its 409 protection is lost.
    index_time: float | None = None
    # Offsets past ``offset`` where a held record was handed out before its end was known (a partial
    # line or a multiline record flushed after the idle timeout). A re-read cuts there again, so the
    # record keeps its id and content; read whole, it would reuse the id and its rest would be lost.
    cuts: list[int] = field(default_factory=list)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> FileEntry:
        return cls(
            dev=int(raw["dev"]),
            ino=int(raw["ino"]),
            generation=int(raw["generation"]),
            key=str(raw["key"]),
            fingerprint=str(raw["fingerprint"]),
            fingerprint_len=int(raw["fingerprint_len"]),
            offset=int(raw["offset"]),
            path=str(raw["path"]),
            closed_at=None if raw.get("closed_at") is None else float(raw["closed_at"]),
            index_time=None if raw.get("index_time") is None else float(raw["index_time"]),
            cuts=[int(cut) for cut in raw.get("cuts", ())],
        )


class CheckpointStore:
    """File entries in memory, saved to ``<directory>/checkpoint.json`` on request.

    Thread-safe: the reader adds entries, the shipper commits offsets.
    """

    def __init__(
        self,
        directory: Path,
        clock: Callable[[], float] = time.time,
        retention_seconds: float = CLOSED_RETENTION_SECONDS,
    ) -> None:
        self.directory = directory
        self.path = directory / FILE_NAME
        self._clock = clock
        self._retention = retention_seconds
        self._entries: dict[tuple[int, int], FileEntry] = {}
        self._by_key: dict[str, FileEntry] = {}
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._dirty = False
        self.last_saved_at: float | None = None

    # Loading --------------------------------------------------------------
    def load(self) -> None:
        """Read the checkpoint if there is one; a corrupt file is moved aside, never trusted."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return
        try:
            payload = json.loads(raw)
            entries = [FileEntry.from_json(item) for item in payload["files"]]
        except (ValueError, KeyError, TypeError) as exc:
            aside = self.path.with_name(FILE_NAME + ".corrupt")
            os.replace(self.path, aside)
            logger.error(
                "checkpoint unreadable, moved aside; files are read again from the start "
                "(deterministic ids keep Elasticsearch free of duplicates)",
                extra={"path": str(self.path), "moved_to": str(aside), "error": str(exc)},
            )
            return
        with self._lock:
            for entry in entries:
                self._entries[(entry.dev, entry.ino)] = entry
                self._by_key[entry.key] = entry

    # Queries and updates ----------------------------------------------------
    def entries(self) -> list[FileEntry]:
        with self._lock:
            return list(self._entries.values())

    def candidates(self, dev: int, ino: int) -> list[FileEntry]:
        """Entries that may describe the file at (dev, ino): the exact one first, then same inode elsewhere.

        A volume remounted after a restart can change the device number; the
        caller confirms a candidate by its fingerprint.
        """
        with self._lock:
            exact = self._entries.get((dev, ino))
            others = [e for (d, i), e in self._entries.items() if i == ino and d != dev]
        return ([exact] if exact else []) + others

    def put(self, entry: FileEntry) -> None:
        """Record ``entry`` as the current state of its (dev, ino), replacing what was there."""
        with self._lock:
            for old in [e for e in self._entries.values() if e.ino == entry.ino and e.key != entry.key]:
                if old.dev == entry.dev or old.fingerprint == entry.fingerprint:
                    del self._entries[(old.dev, old.ino)]
                    self._by_key.pop(old.key, None)
            previous = self._by_key.pop(entry.key, None)
            if previous is not None:
                self._entries.pop((previous.dev, previous.ino), None)
            self._entries[(entry.dev, entry.ino)] = entry
            self._by_key[entry.key] = entry
            self._dirty = True

    def update(self, key: str, **changes: Any) -> None:
        """Change fields of the entry named ``key`` (a newer fingerprint, a new path)."""
        with self._lock:
            entry = self._by_key.get(key)
            if entry is None:
                return
            for name, value in changes.items():
                setattr(entry, name, value)
            self._dirty = True

    def commit(self, key: str, offset: int) -> bool:
        """Advance the acknowledged offset of ``key``; ignore keys no longer current (an old generation)."""
        with self._lock:
            entry = self._by_key.get(key)
            if entry is None or offset <= entry.offset:
                return False
            entry.offset = offset
            if entry.cuts:
                entry.cuts = [cut for cut in entry.cuts if cut > offset]
            self._dirty = True
            return True

    def add_cut(self, key: str, offset: int) -> None:
        """Remember that the record held at ``offset`` of ``key`` was handed out there (see FileEntry.cuts)."""
        with self._lock:
            entry = self._by_key.get(key)
            if entry is not None and offset > entry.offset and offset not in entry.cuts:
                entry.cuts.append(offset)
                self._dirty = True

    def offset(self, key: str) -> int | None:
        with self._lock:
            entry = self._by_key.get(key)
            return None if entry is None else entry.offset

    def mark_closed(self, key: str) -> None:
        with self._lock:
            entry = self._by_key.get(key)
            if entry is not None and entry.closed_at is None:
                entry.closed_at = self._clock()
                self._dirty = True

    @property
    def dirty(self) -> bool:
        return self._dirty

    # Saving -----------------------------------------------------------------
    def save(self, force: bool = False) -> bool:
        """Write the checkpoint atomically if anything changed; return whether a write happened.

        Temp file in the same directory, fsync, rename over the old file, fsync
        the directory: after a crash the checkpoint is either the old or the new
        one, never a torn mix.
        """
        with self._write_lock:
            with self._lock:
                if not (self._dirty or force):
                    return False
                self._purge_closed()
                payload = {
                    "version": FORMAT_VERSION,
                    "written_at": self._clock(),
                    "files": [asdict(e) for e in sorted(self._entries.values(), key=lambda e: (e.path, e.ino))],
                }
                self._dirty = False
            data = json.dumps(payload, indent=1).encode() + b"\n"
            try:
                replace_file(self.path, data)
            except OSError as exc:
                with self._lock:
                    self._dirty = True
                raise CheckpointError(self.path, str(exc)) from exc
            self.last_saved_at = self._clock()
            return True

    def _purge_closed(self) -> None:
        horizon = self._clock() - self._retention
        for ident, entry in list(self._entries.items()):
            if entry.closed_at is not None and entry.closed_at < horizon:
                del self._entries[ident]
                self._by_key.pop(entry.key, None)
