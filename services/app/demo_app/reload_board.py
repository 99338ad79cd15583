"""A small shared-memory board through which one worker's reload reaches every gunicorn worker.

Why: a ``POST /-/reload`` reaches exactly one gunicorn worker, yet every worker must
serve the new snapshot within a second. Signals to the master, a control socket or a
file to poll each add moving parts and latency; shared memory needs none. The master
creates the board before it forks (gunicorn's ``on_starting`` hook), so every worker
inherits the same mapping. The worker that handled the reload publishes the file set
it validated (names and bytes) with its version, and bumps a generation counter;
every worker reads that counter at the start of each request (a few microseconds) and,
when it moved, builds its snapshot from the published bytes, so the first request a
worker serves after the reload already uses the new snapshot.

Followers take the published bytes rather than re-reading the directory on purpose:
by then the directory may hold something newer, or something invalid, and a worker
that read it would serve another version than its siblings (or none). With the bytes
on the board every worker serves exactly the version the reload answered with.

The board also holds one slot per worker pid (requests in flight, config version) and
the pod-wide reload counters, which is what ``GET /stats`` reports across workers.

Locking: a POSIX record lock (``lockf``) on the board's file descriptor excludes the
other processes, and the kernel releases it if a holder dies, even by SIGKILL, so a
killed worker can never wedge the others. Record locks do not exclude threads of one
process, hence a ``threading.Lock`` next to each. Reloads take a second lock (another
byte) so that two reloads never publish out of order, without making requests wait
on a reload's disk reads.
"""

from __future__ import annotations

import contextlib
import fcntl
import mmap
import os
import struct
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

MAGIC = b"DEMOAPP1"
# magic, generation, reloads ok, reloads refused, started at (time.monotonic, shared by all processes of the host),
# published version, length of the published file set
_HEADER = struct.Struct("<8sQQQd32sQ")
# pid (0 = free), requests in flight, config version served
_SLOT = struct.Struct("<qq32s")
VERSION_BYTES = 32
# Room for the published file set. A ConfigMap holds at most 1 MiB; the memory is only
# committed as far as a set actually fills it (a sparse memfd).
PAYLOAD_CAPACITY = 4 * 1024 * 1024
_ENTRY = struct.Struct("<II")  # name length, content length; then the name and the content
DEFAULT_CAPACITY = 128  # twice the most workers allowed: old and new workers overlap during a restart
_DATA_LOCK_BYTE = 0
_RELOAD_LOCK_BYTE = 1


@dataclass(frozen=True)
class WorkerStatus:
    pid: int
    requests_in_flight: int
    config_version: str | None


@dataclass(frozen=True)
class Published:
    generation: int
    version: str | None


@dataclass(frozen=True)
class PublishedSet:
    """The file set a reload validated and published, as every worker must serve it."""

    generation: int
    version: str | None
    files: dict[str, bytes]


class PayloadTooLargeError(ValueError):
    """The config set does not fit on the board."""

    def __init__(self, size: int) -> None:
        super().__init__(f"the config set is {size} bytes, more than the {PAYLOAD_CAPACITY} the app can share")
        self.size = size


@dataclass
class _Header:
    generation: int
    reloads_ok: int
    reloads_refused: int
    started_at: float
    version: str | None
    payload_length: int


class ReloadBoard:
    """Generation counter, published version, reload counters and per-worker slots in shared memory."""

    def __init__(self, fd: int, memory: mmap.mmap, capacity: int) -> None:
        self._fd = fd
        self._memory = memory
        self.capacity = capacity
        self._data_thread_lock = threading.Lock()
        self._reload_thread_lock = threading.Lock()
        # This process's slot, cached: found again by pid if the process is a fork of the creator.
        self._slot_pid = 0
        self._slot_index: int | None = None

    @classmethod
    def create(cls, capacity: int = DEFAULT_CAPACITY) -> ReloadBoard:
        """Allocate a zeroed board; create it in the gunicorn master, before the workers fork."""
        size = _HEADER.size + capacity * _SLOT.size + PAYLOAD_CAPACITY
        fd = _anonymous_file()
        try:
            os.ftruncate(fd, size)
            memory = mmap.mmap(fd, size, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ | mmap.PROT_WRITE)
        except OSError:
            os.close(fd)
            raise
        board = cls(fd, memory, capacity)
        _HEADER.pack_into(memory, 0, MAGIC, 0, 0, 0, time.monotonic(), b"", 0)
        return board

    def close(self) -> None:
        self._memory.close()
        os.close(self._fd)

    # Locks ------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self, byte: int, thread_lock: threading.Lock) -> Iterator[None]:
        with thread_lock:
            fcntl.lockf(self._fd, fcntl.LOCK_EX, 1, byte, os.SEEK_SET)
            try:
                yield
            finally:
                fcntl.lockf(self._fd, fcntl.LOCK_UN, 1, byte, os.SEEK_SET)

    def _data(self) -> contextlib.AbstractContextManager[None]:
        return self._locked(_DATA_LOCK_BYTE, self._data_thread_lock)

    def serialize_reloads(self) -> contextlib.AbstractContextManager[None]:
        """Hold while loading and publishing, so concurrent reloads publish in the order they loaded."""
        return self._locked(_RELOAD_LOCK_BYTE, self._reload_thread_lock)

    # Header -----------------------------------------------------------------
    def _read_header(self) -> _Header:
        magic, generation, ok, refused, started, version, payload_length = _HEADER.unpack_from(self._memory, 0)
        if magic != MAGIC:
            raise RuntimeError("reload board memory is corrupt (bad magic)")
        return _Header(generation, ok, refused, started, _decode(version), payload_length)

    def _write_header(self, header: _Header) -> None:
        _HEADER.pack_into(
            self._memory,
            0,
            MAGIC,
            header.generation,
            header.reloads_ok,
            header.reloads_refused,
            header.started_at,
            _encode(header.version),
            header.payload_length,
        )

    def published(self) -> Published:
        with self._data():
            header = self._read_header()
        return Published(header.generation, header.version)

    def publish(self, version: str, files: Mapping[str, bytes]) -> int:
        """Make this file set the one every worker must serve; return the generation that announces it."""
        payload = _encode_files(files)
        if len(payload) > PAYLOAD_CAPACITY:
            raise PayloadTooLargeError(len(payload))
        with self._data():
            header = self._read_header()
            if header.version != version:
                start = self._payload_offset()
                self._memory[start : start + len(payload)] = payload
                header.generation += 1
                header.version = version
                header.payload_length = len(payload)
                self._write_header(header)
            return header.generation

    def published_set(self) -> PublishedSet:
        """The last published file set (empty with version None before the first reload)."""
        with self._data():
            header = self._read_header()
            start = self._payload_offset()
            payload = self._memory[start : start + header.payload_length]
        return PublishedSet(header.generation, header.version, _decode_files(payload))

    def count_reload(self, ok: bool) -> None:
        with self._data():
            header = self._read_header()
            if ok:
                header.reloads_ok += 1
            else:
                header.reloads_refused += 1
            self._write_header(header)

    def reload_counts(self) -> dict[str, int]:
        with self._data():
            header = self._read_header()
        return {"ok": header.reloads_ok, "refused": header.reloads_refused}

    def uptime_seconds(self) -> float:
        with self._data():
            started = self._read_header().started_at
        return max(0.0, time.monotonic() - started)

    # Worker slots -------------------------------------------------------------
    def _slot_offset(self, index: int) -> int:
        return _HEADER.size + index * _SLOT.size

    def _payload_offset(self) -> int:
        return _HEADER.size + self.capacity * _SLOT.size

    def _read_slot(self, index: int) -> tuple[int, int, str | None]:
        pid, in_flight, version = _SLOT.unpack_from(self._memory, self._slot_offset(index))
        return pid, in_flight, _decode(version)

    def _write_slot(self, index: int, pid: int, in_flight: int, version: str | None) -> None:
        _SLOT.pack_into(self._memory, self._slot_offset(index), pid, in_flight, _encode(version))

    def _claim(self, pid: int) -> int | None:
        """Find or take this pid's slot; call with the data lock held."""
        if self._slot_pid == pid and self._slot_index is not None and self._read_slot(self._slot_index)[0] == pid:
            return self._slot_index
        free: int | None = None
        for index in range(self.capacity):
            owner = self._read_slot(index)[0]
            if owner == pid:
                free = index
                break
            if free is None and (owner == 0 or not _alive(owner)):
                free = index
        if free is None:
            return None
        if self._read_slot(free)[0] != pid:
            self._write_slot(free, pid, 0, None)
        self._slot_pid, self._slot_index = pid, free
        return free

    def request_started(self, pid: int) -> int:
        """Count a request in flight for ``pid`` and return the current generation, under one lock."""
        with self._data():
            index = self._claim(pid)
            if index is not None:
                owner, in_flight, version = self._read_slot(index)
                self._write_slot(index, owner, in_flight + 1, version)
            return self._read_header().generation

    def request_finished(self, pid: int) -> None:
        with self._data():
            index = self._claim(pid)
            if index is not None:
                owner, in_flight, version = self._read_slot(index)
                self._write_slot(index, owner, max(0, in_flight - 1), version)

    def set_worker_version(self, pid: int, version: str) -> None:
        with self._data():
            index = self._claim(pid)
            if index is not None:
                owner, in_flight, _ = self._read_slot(index)
                self._write_slot(index, owner, in_flight, version)

    def register_worker(self, pid: int) -> bool:
        """Take a slot for ``pid`` now, so /stats lists the worker before its first request."""
        with self._data():
            return self._claim(pid) is not None

    def release(self, pid: int) -> None:
        """Free the slot of a worker that exited (gunicorn's child_exit / worker_exit hooks)."""
        with self._data():
            for index in range(self.capacity):
                if self._read_slot(index)[0] == pid:
                    self._write_slot(index, 0, 0, None)

    def workers(self) -> dict[int, WorkerStatus]:
        with self._data():
            slots = [self._read_slot(index) for index in range(self.capacity)]
        return {pid: WorkerStatus(pid, in_flight, version) for pid, in_flight, version in slots if pid and _alive(pid)}


def _anonymous_file() -> int:
    """A file descriptor for memory only: memfd (no filesystem, fine on a read-only root) or a deleted temp file."""
    memfd_create = getattr(os, "memfd_create", None)
    if memfd_create is not None:
        return int(memfd_create("demo-app-reload-board"))
    with tempfile.TemporaryFile() as temporary:  # platforms without memfd (macOS)
        return os.dup(temporary.fileno())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _encode_files(files: Mapping[str, bytes]) -> bytes:
    parts: list[bytes] = []
    for name in sorted(files):
        encoded = name.encode("utf-8", errors="surrogateescape")
        parts += [_ENTRY.pack(len(encoded), len(files[name])), encoded, files[name]]
    return b"".join(parts)


def _decode_files(payload: bytes) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    offset = 0
    while offset < len(payload):
        name_length, content_length = _ENTRY.unpack_from(payload, offset)
        offset += _ENTRY.size
        name = payload[offset : offset + name_length].decode("utf-8", errors="surrogateescape")
        offset += name_length
        files[name] = payload[offset : offset + content_length]
        offset += content_length
    return files


def _encode(version: str | None) -> bytes:
    return (version or "").encode("ascii", errors="replace")[:VERSION_BYTES]


def _decode(raw: bytes) -> str | None:
    text = raw.rstrip(b"\0").decode("ascii", errors="replace")
    return text or None
