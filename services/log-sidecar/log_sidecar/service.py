"""The log sidecar as one service: state-dir lock, the pipeline's two threads, admin server, drain on SIGTERM."""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from typing import IO

from prometheus_client import CollectorRegistry

from log_sidecar.pipeline import Pipeline
from log_sidecar.settings import Settings
from log_sidecar.sinks import Sink, create_sink
from sidecar_common import AdminServer, Endpoint, StartupError, json_response
from sidecar_common.admin import Request, Response

logger = logging.getLogger(__name__)

LOCK_FILE = ".lock"
# After the drain deadline, how long an aborted shipper gets to notice and end its request
# (close() waits as long for a thread that run() did not drain).
ABORT_GRACE_SECONDS = 2.0


def lock_state_dir(settings: Settings) -> IO[bytes]:
    """Create LOG_STATE_DIR if needed and take its lock: two sidecars sharing a checkpoint would corrupt it."""
    directory = settings.state_dir
    try:
        directory.mkdir(parents=True, exist_ok=True)
        handle = (directory / LOCK_FILE).open("ab")
    except OSError as exc:
        raise StartupError("LOG_STATE_DIR", f"{directory} is not usable: {exc.strerror or exc}") from None
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise StartupError("LOG_STATE_DIR", f"{directory} is locked by another log sidecar") from None
    return handle


class LogSidecar:
    """The whole service: built without side effects; ``start()`` locks, loads and binds; ``run(stop)`` drains."""

    def __init__(self, settings: Settings, sink: Sink | None = None, registry: CollectorRegistry | None = None) -> None:
        self.settings = settings
        self.registry = registry or CollectorRegistry()
        self.pipeline = Pipeline(settings, sink or create_sink(settings), self.registry)
        self.admin = AdminServer(
            Endpoint(settings.admin_host, settings.admin_port),
            self.registry,
            heartbeats=self.pipeline.heartbeats,
            ready=self.ready,
        )
        self.admin.route("GET", "/status", self._status)
        self._lock_handle: IO[bytes] | None = None
        self._threads: list[threading.Thread] = []

    def ready(self) -> bool:
        """Ready once the checkpoint is loaded and LOG_PATHS were scanned once.

        Deliberately not tied to the sink: as a native sidecar its startup gates
        the app, and an Elasticsearch outage must not keep the app from starting
        (the log files buffer meanwhile). Sink health is ``log_sidecar_sink_up``.
        """
        return self.pipeline.reader.scanned.is_set()

    def start(self) -> None:
        """Lock the state dir, load the checkpoint, open the sink, bind the admin port, start both threads."""
        self._lock_handle = lock_state_dir(self.settings)
        try:
            self.pipeline.open()
        except OSError as exc:  # only the file sink touches the disk when opened
            raise StartupError(
                "LOG_FILE_SINK_PATH", f"{self.settings.file_sink_target}: {exc.strerror or exc}"
            ) from None
        self.admin.start()
        for name, target in (("reader", self.pipeline.reader.run), ("shipper", self.pipeline.shipper.run)):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        logger.info(
            "log sidecar started",
            extra={
                "sink": self.pipeline.sink.name,
                "paths": list(self.settings.paths),
                "state_dir": str(self.settings.state_dir),
                "es_url": self.settings.redacted_es_url or None,
                "admin_port": self.admin.port,
            },
        )

    def run(self, stop: threading.Event) -> None:
        """Serve until ``stop``, then drain: stop reading, ship what was read, save the checkpoint."""
        stop.wait()
        pipeline = self.pipeline
        started = time.monotonic()
        deadline = started + self.settings.drain_seconds
        logger.info("draining", extra={"deadline_seconds": self.settings.drain_seconds})
        pipeline.reader.halt()
        self._threads[0].join(max(0.0, deadline - time.monotonic()))
        pipeline.shipper.finished.wait(max(0.0, deadline - time.monotonic()))
        if not pipeline.shipper.finished.is_set():
            pipeline.shipper.abort.set()
            pipeline.shipper.finished.wait(ABORT_GRACE_SECONDS)
        pipeline.shipper.save_checkpoint()  # also when the shipper is stuck in a request
        unacked = pipeline.unacknowledged_bytes()
        if unacked:
            logger.warning(
                "drain deadline reached with %d bytes unacknowledged; they are read again at the next start",
                unacked,
            )
        logger.info("drained", extra={"drain_seconds": round(time.monotonic() - started, 3)})

    def close(self) -> None:
        """Stop the threads if a drain did not, save the checkpoint, release the files, the port and the lock."""
        self.pipeline.reader.halt()
        self.pipeline.shipper.abort.set()
        threads, self._threads = self._threads, []
        for thread in threads:
            thread.join(ABORT_GRACE_SECONDS)
        self.admin.close()
        if self._lock_handle is not None:
            self.pipeline.close()
            self._lock_handle.close()
            self._lock_handle = None
            logger.info("log sidecar stopped")

    def _status(self, request: Request) -> Response:
        pipeline = self.pipeline
        files = []
        for status in pipeline.tailer.statuses():
            committed = None if status.key is None else pipeline.store.offset(status.key)
            files.append(
                {"path": status.path, "size": status.size, "committed": committed, "rotated": not status.matched}
            )
        return json_response(
            {
                "sink": pipeline.sink.name,
                "sink_contacted": pipeline.shipper.contacted.is_set(),
                "watched_directories": pipeline.watcher.watched,
                "buffer_bytes": pipeline.buffer.used_bytes,
                "files": files,
                "checkpoint": str(pipeline.store.path),
                "dead_letters": str(pipeline.dead_letters.path),
                "pid": os.getpid(),
            }
        )
