"""The files the gunicorn workers of one app share, in a directory in memory.

A ``POST /-/reload`` reaches one worker, yet every worker must serve the set it
accepted, and ``/stats`` speaks for every worker. Plain files do that: each one is
written whole under a temporary name and renamed into place, so a reader gets the
old content or the new one, never a mix.

    accepted.json       the config set the last successful reload accepted (names and bytes)
    reloads.json        reloads of the whole app: {"ok": n, "refused": n}
    reload.lock         held by the reload in progress, so two reloads never cross
    workers/<pid>.json  one worker's line in /stats

The gunicorn master creates the directory before it forks (gunicorn_config.py),
under gunicorn's worker_tmp_dir (/dev/shm: memory, writable on a read-only root).
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

ACCEPTED = "accepted.json"
RELOADS = "reloads.json"
RELOAD_LOCK = "reload.lock"
WORKERS = "workers"

logger = logging.getLogger(__name__)


class SharedDir:
    """Read and write the shared files; ``started_at`` (time.monotonic, system-wide) is the app's start."""

    def __init__(self, root: Path, started_at: float) -> None:
        self.root = root
        self.started_at = started_at

    @classmethod
    def create(cls, parent: str | Path | None = None) -> SharedDir:
        root = Path(tempfile.mkdtemp(prefix="demo-app-", dir=parent))
        (root / WORKERS).mkdir()
        return cls(root, time.monotonic())

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def accepted_signature(self) -> tuple[int, int] | None:
        """Changes whenever a reload accepts a set (a new file: a new inode); None before the first one."""
        try:
            status = os.stat(f"{self.root}/{ACCEPTED}")
        except FileNotFoundError:
            return None
        return status.st_ino, status.st_mtime_ns

    def read_accepted(self) -> dict[str, bytes]:
        document = json.loads((self.root / ACCEPTED).read_bytes())
        return {name: base64.b64decode(content) for name, content in document.items()}

    def accept(self, files: Mapping[str, bytes]) -> tuple[int, int]:
        """Make ``files`` the set every worker serves (hold the reload lock); return its signature."""
        self._write(ACCEPTED, {name: base64.b64encode(content).decode("ascii") for name, content in files.items()})
        signature = self.accepted_signature()
        assert signature is not None  # just written, and only reloads (excluded by the lock) replace it
        return signature

    @contextlib.contextmanager
    def reload_lock(self) -> Iterator[None]:
        """Exclude every other reload, in any worker and thread, while this one loads and accepts."""
        # flock belongs to this open file: other threads' opens wait too, and the kernel
        # releases it if the holder dies, even by SIGKILL.
        with open(self.root / RELOAD_LOCK, "ab") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def count_reload(self, result: str) -> None:
        """Count an ``ok`` or ``refused`` reload (hold the reload lock)."""
        counts = self.reload_counts()
        counts[result] += 1
        self._write(RELOADS, counts)

    def reload_counts(self) -> dict[str, int]:
        try:
            counts: dict[str, int] = json.loads((self.root / RELOADS).read_bytes())
        except FileNotFoundError:
            return {"ok": 0, "refused": 0}
        return counts

    def write_worker(self, pid: int, status: Mapping[str, Any]) -> None:
        self._write(f"{WORKERS}/{pid}.json", status)

    def forget_worker(self, pid: int) -> None:
        (self.root / WORKERS / f"{pid}.json").unlink(missing_ok=True)

    def workers(self) -> dict[str, Any]:
        """Every live worker's status, by pid."""
        found = {}
        for path in sorted((self.root / WORKERS).glob("*.json")):
            with contextlib.suppress(FileNotFoundError):  # that worker exited just now
                found[path.stem] = json.loads(path.read_bytes())
        return found

    def _write(self, name: str, document: Any) -> None:
        """Write whole under a name of this thread's, then rename: readers see the old file or the new one."""
        path = f"{self.root}/{name}"
        temporary = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
        # os-level calls: this runs twice per request (WorkerStatus), and open()'s file object costs double.
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            remaining = memoryview(json.dumps(document).encode())
            while remaining:  # a short write only when the filesystem fills up; the next one raises
                remaining = remaining[os.write(descriptor, remaining) :]
        finally:
            os.close(descriptor)
        os.replace(temporary, path)


class WorkerStatus:
    """This worker's line in /stats (requests in flight, config version), saved at every change.

    Two small file writes per request (about 20 us each on /dev/shm); if they fail, /stats goes
    stale for this worker, and the request is served all the same.
    """

    def __init__(self, shared: SharedDir, pid: int) -> None:
        self._shared = shared
        self._pid = pid
        self._lock = threading.Lock()  # the worker's threads save in the order they counted
        self._in_flight = 0
        self._version: str | None = None
        self._failing = False  # warn once per failure spell, not per request

    def serving(self, version: str | None) -> None:
        """Save the version this worker serves (at its start, so /stats lists it before its first request)."""
        with self._lock:
            self._version = version
            self._save()

    def request_started(self, version: str | None) -> None:
        with self._lock:
            self._in_flight += 1
            self._version = version
            self._save()

    def request_finished(self) -> None:
        with self._lock:
            self._in_flight -= 1
            self._save()

    def _save(self) -> None:
        try:
            self._shared.write_worker(
                self._pid, {"requests_in_flight": self._in_flight, "config_version": self._version}
            )
        except OSError as exc:
            if not self._failing:
                logger.warning(
                    "cannot save this worker's status for /stats: %s", exc, extra={"event.action": "stats-stale"}
                )
            self._failing = True
        else:
            self._failing = False
