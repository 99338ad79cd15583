"""Wire the log sidecar together: state, reader and shipper threads, admin server, drain on SIGTERM."""

from __future__ import annotations

import fcntl
import logging
import os
import socket
import threading
import time
from typing import IO

from prometheus_client import CollectorRegistry

from log_sidecar.acks import AckTracker
from log_sidecar.batching import Batcher
from log_sidecar.buffer import BoundedBuffer
from log_sidecar.checkpoint import CheckpointStore
from log_sidecar.deadletter import DeadLetterFile
from log_sidecar.metrics import Metrics
from log_sidecar.problems import BadInputReporter
from log_sidecar.reader import Reader, ReaderOptions
from log_sidecar.records import RecordBuilder
from log_sidecar.settings import Settings
from log_sidecar.shipper import Shipper, ShipperOptions
from log_sidecar.sinks import Sink, create_sink
from log_sidecar.tailer import Tailer, TailerOptions
from sidecar_common import MISSED_BEATS, AdminServer, Endpoint, Heartbeat, StartupError, json_response
from sidecar_common.admin import Request, Response

logger = logging.getLogger(__name__)

LOCK_FILE = ".lock"


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
    """The whole service; ``start()`` then ``run()`` (which returns the exit code after a drain)."""

    def __init__(
        self,
        settings: Settings,
        stop: threading.Event | None = None,
        sink: Sink | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.settings = settings
        self.stop = stop or threading.Event()
        self.abort = threading.Event()
        self._lock_handle = lock_state_dir(settings)
        try:
            self._assemble(settings, sink, registry)
        except BaseException:
            self._lock_handle.close()  # a failed start must not keep the state dir locked
            raise

    def _assemble(self, settings: Settings, sink: Sink | None, registry: CollectorRegistry | None) -> None:
        """Build every part; the checkpoint is loaded before anything reads a file."""
        self.registry = registry or CollectorRegistry()
        self.metrics = Metrics(self.registry)
        self.store = CheckpointStore(settings.state_dir)
        self.store.load()
        self.tracker = AckTracker()
        try:
            self.sink = sink or create_sink(settings)
        except OSError as exc:  # only the file sink touches the disk when created
            raise StartupError("LOG_FILE_SINK_PATH", f"{settings.file_sink_target}: {exc.strerror or exc}") from None
        self.buffer = BoundedBuffer(settings.buffer_max_bytes)
        self.batcher = Batcher(self.tracker, settings.batch_max_docs, settings.batch_max_bytes)
        self.dead_letters = DeadLetterFile(settings.state_dir, settings.dead_letter_max_bytes)
        heartbeat_interval = (settings.sink_timeout_seconds + 30.0) / MISSED_BEATS
        self.reader_heartbeat = Heartbeat("reader", heartbeat_interval)
        self.shipper_heartbeat = Heartbeat("shipper", heartbeat_interval)
        self.tailer = Tailer(
            TailerOptions(
                paths=settings.paths,
                scan_interval=settings.scan_interval_seconds,
                rotate_wait=settings.rotate_wait_seconds,
                partial_flush=settings.partial_flush_seconds,
                max_line_bytes=settings.max_line_bytes,
                fingerprint_bytes=settings.fingerprint_bytes,
                multiline_pattern=settings.multiline_pattern or "",
                multiline_max_lines=settings.multiline_max_lines,
            ),
            self.store,
            self.tracker,
            self.metrics,
        )
        builder = RecordBuilder(
            host_name=settings.node_name or socket.gethostname(),
            pod_name=settings.pod_name,
            namespace=settings.pod_namespace,
            timestamp_fields=settings.timestamp_fields,
        )
        self.reader = Reader(
            ReaderOptions(
                poll_interval=settings.poll_interval_seconds,
                flush_interval=settings.flush_interval_seconds,
                max_line_bytes=settings.max_line_bytes,
                drain_seconds=settings.drain_seconds,
                pin_index_time=settings.sink == "elasticsearch",
            ),
            self.tailer,
            builder,
            self.sink,
            self.batcher,
            self.buffer,
            self.store,
            self.metrics,
            BadInputReporter(lambda reason: self.metrics.malformed.labels(reason).inc()),
            self.stop,
            self.reader_heartbeat,
        )
        self.shipper = Shipper(
            ShipperOptions(
                retry_max=settings.retry_max,
                retry_initial=settings.retry_initial_seconds,
                retry_max_delay=settings.retry_max_seconds,
                checkpoint_interval=settings.checkpoint_interval_seconds,
            ),
            self.sink,
            self.buffer,
            self.tracker,
            self.store,
            self.dead_letters,
            self.metrics,
            self.shipper_heartbeat,
            self.reader.done,
            self.abort,
        )
        self.admin = AdminServer(
            Endpoint(settings.admin_host, settings.admin_port),
            self.registry,
            heartbeats=(self.reader_heartbeat, self.shipper_heartbeat),
            ready=self.ready,
        )
        self.admin.route("GET", "/status", self._status)
        self._threads: list[threading.Thread] = []

    def ready(self) -> bool:
        """Ready once the checkpoint is loaded and LOG_PATHS were scanned once.

        Deliberately not tied to the sink: as a native sidecar its startup gates
        the app, and an Elasticsearch outage must not keep the app from starting
        (the log files buffer meanwhile). Sink health is ``log_sidecar_sink_up``.
        """
        return self.reader.scanned.is_set()

    def start(self) -> None:
        try:
            self.admin.start()
        except StartupError:
            self.sink.close()
            self._lock_handle.close()
            raise
        for name, target in (("reader", self.reader.run), ("shipper", self.shipper.run)):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        logger.info(
            "log sidecar started",
            extra={
                "sink": self.sink.name,
                "paths": list(self.settings.paths),
                "state_dir": str(self.settings.state_dir),
                "es_url": self.settings.redacted_es_url or None,
                "admin_port": self.admin.port,
            },
        )

    def run(self) -> int:
        """Wait for SIGTERM/SIGINT, then drain: stop reading, ship what was read, save the checkpoint."""
        self.stop.wait()
        started = time.monotonic()
        deadline = started + self.settings.drain_seconds
        logger.info("draining", extra={"deadline_seconds": self.settings.drain_seconds})
        reader_thread = self._threads[0]
        reader_thread.join(max(0.0, deadline - time.monotonic()))
        self.shipper.finished.wait(max(0.0, deadline - time.monotonic()))
        if not self.shipper.finished.is_set():
            self.abort.set()
            self.shipper.finished.wait(2.0)
        self.shipper.save_checkpoint()  # also when the shipper is stuck in a request
        unacked = self.buffer.used_bytes + self.batcher.sealed_bytes()
        if unacked:
            logger.warning(
                "drain deadline reached with %d bytes unacknowledged; they are read again at the next start",
                unacked,
            )
        self.sink.close()
        self.tailer.close_all()
        self.admin.close()
        logger.info("stopped", extra={"drain_seconds": round(time.monotonic() - started, 3)})
        self._lock_handle.close()
        return 0

    def _status(self, request: Request) -> Response:
        files = []
        for status in self.tailer.statuses():
            committed = None if status.key is None else self.store.offset(status.key)
            files.append(
                {"path": status.path, "size": status.size, "committed": committed, "rotated": not status.matched}
            )
        return json_response(
            {
                "sink": self.sink.name,
                "sink_contacted": self.shipper.contacted.is_set(),
                "buffer_bytes": self.buffer.used_bytes,
                "files": files,
                "checkpoint": str(self.store.path),
                "dead_letters": str(self.dead_letters.path),
                "pid": os.getpid(),
            }
        )
