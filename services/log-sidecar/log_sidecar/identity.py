"""File identity: which file is this, and where do we resume it?

An inode alone is not enough: after a file is deleted the kernel hands its
inode to the next new file, and a shipper that trusts the inode resumes the new
file at the old file's offset and skips its beginning (Filebeat's long-standing
loss, elastic/beats #1341 and #34419). So an identity is (device, inode) plus a
fingerprint: a hash of the file's first bytes. The fingerprint grows with the
file up to LOG_FINGERPRINT_BYTES, so even small files are told apart by content.
"""

from __future__ import annotations

import enum
import hashlib
import os
from dataclasses import dataclass

from log_sidecar.checkpoint import FileEntry
from log_sidecar.ids import file_key


def fingerprint_of(prefix: bytes) -> str:
    return hashlib.sha256(prefix).hexdigest()


@dataclass
class FileIdentity:
    """One generation of one file: its id key and the leading bytes that prove it is the same file."""

    dev: int
    ino: int
    generation: int
    key: str
    prefix: bytes

    @property
    def fingerprint(self) -> str:
        return fingerprint_of(self.prefix)

    def matches(self, fd: int) -> bool:
        """Tell whether the open file still starts with our prefix (false after a truncate + rewrite)."""
        return os.pread(fd, len(self.prefix), 0) == self.prefix


def establish(
    fd: int, dev: int, ino: int, generation: int, fingerprint_bytes: int, force: bool = False
) -> FileIdentity | None:
    """Fix the identity of a file from its first bytes, or return None if it is too early to tell.

    We wait for a complete first line or LOG_FINGERPRINT_BYTES: two different
    files rarely share a first line, but often share its first few characters.
    The key (and so every document id) comes from the first line only, never
    from whatever else happened to be written when we looked: the first line
    never changes in an append-only file, so the same key is derived again if
    the checkpoint is lost, and the resend is answered 409 instead of stored
    twice. ``force`` settles for what is there (a lone partial line being flushed).
    """
    prefix = os.pread(fd, fingerprint_bytes, 0)
    if not prefix:
        return None
    newline = prefix.find(b"\n")
    if newline < 0 and len(prefix) < fingerprint_bytes and not force:
        return None
    first_line = prefix if newline < 0 else prefix[: newline + 1]
    return FileIdentity(dev, ino, generation, file_key(ino, generation, fingerprint_of(first_line)), prefix)


class Match(enum.Enum):
    NEW = "new"  # never seen: read from the start
    RESUME = "resume"  # same file as in the checkpoint: continue at its offset
    TRUNCATED = "truncated"  # same start, but shorter than the checkpoint: copytruncate while we were away
    REPLACED = "replaced"  # same inode, different content: inode reuse or truncate + rewrite


@dataclass(frozen=True)
class Resolution:
    match: Match
    offset: int
    generation: int
    entry: FileEntry | None


def resolve(fd: int, dev: int, ino: int, size: int, candidates: list[FileEntry]) -> Resolution:
    """Decide how to read the open file ``fd`` given the checkpoint entries for its inode."""
    for entry in candidates:
        prefix = os.pread(fd, entry.fingerprint_len, 0)
        if len(prefix) == entry.fingerprint_len and fingerprint_of(prefix) == entry.fingerprint:
            if size < entry.offset:
                return Resolution(Match.TRUNCATED, 0, entry.generation + 1, entry)
            return Resolution(Match.RESUME, entry.offset, entry.generation, entry)
    exact = next((e for e in candidates if e.dev == dev), None)
    if exact is not None:
        # A new generation, so the new content's document ids differ from the old ones.
        return Resolution(Match.REPLACED, 0, exact.generation + 1, exact)
    return Resolution(Match.NEW, 0, 0, None)


def to_entry(identity: FileIdentity, offset: int, path: str, index_time: float | None = None) -> FileEntry:
    return FileEntry(
        dev=identity.dev,
        ino=identity.ino,
        generation=identity.generation,
        key=identity.key,
        fingerprint=identity.fingerprint,
        fingerprint_len=len(identity.prefix),
        offset=offset,
        path=path,
        index_time=index_time,
    )
