"""The log pipeline, wired once: tailer → reader → batcher → buffer → shipper → sink, with checkpoint and dead letters.

The service runs the reader and the shipper in two threads (and the directory
watcher's inotify thread, which hands new files to the tailer and wakes the
reader); the unit tests drive the very same object turn by turn with clocks of
their own. Building it has no side effects: ``open()`` loads the checkpoint,
opens the sink and starts watching (the service calls it once it holds the
state directory's lock).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry

from log_sidecar.acks import AckTracker
from log_sidecar.batching import Batcher
from log_sidecar.buffer import BoundedBuffer
from log_sidecar.checkpoint import CheckpointStore
from log_sidecar.deadletter import DeadLetterFile
from log_sidecar.metrics import Metrics
from log_sidecar.reader import Reader
from log_sidecar.records import RecordBuilder
from log_sidecar.settings import Settings
from log_sidecar.shipper import Shipper
from log_sidecar.sinks import Sink
from log_sidecar.tailer import Tailer
from log_sidecar.watcher import DirectoryWatcher
from sidecar_common import Heartbeat


class Pipeline:
    """Every part of the log pipeline for ``settings``, shipping to ``sink``, timed by ``clock`` and ``wall_clock``."""

    def __init__(
        self,
        settings: Settings,
        sink: Sink,
        registry: CollectorRegistry,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.sink = sink
        self.metrics = Metrics(registry)
        self.store = CheckpointStore(settings.state_dir)
        self.tracker = AckTracker()
        self.buffer = BoundedBuffer(settings.buffer_max_bytes)
        self.batcher = Batcher(self.tracker, settings.batch_max_docs, settings.batch_max_bytes, clock=clock)
        self.dead_letters = DeadLetterFile(settings.state_dir, settings.dead_letter_max_bytes)
        self.watcher = DirectoryWatcher(settings.paths, self._file_appeared, self._directories_changed)
        self.tailer = Tailer(
            settings, self.store, self.tracker, self.metrics, clock=clock, wall_clock=wall_clock, watcher=self.watcher
        )
        builder = RecordBuilder(
            host_name=settings.node_name or socket.gethostname(),
            pod_name=settings.pod_name,
            namespace=settings.pod_namespace,
            timestamp_fields=settings.timestamp_fields,
        )
        self.reader = Reader(
            settings,
            self.tailer,
            builder,
            sink,
            self.batcher,
            self.buffer,
            self.store,
            self.metrics,
            clock=clock,
            wall_clock=wall_clock,
        )
        self.shipper = Shipper(
            settings,
            sink,
            self.buffer,
            self.tracker,
            self.store,
            self.dead_letters,
            self.metrics,
            self.reader.done,
            clock=clock,
            wall_clock=wall_clock,
        )

    @property
    def heartbeats(self) -> tuple[Heartbeat, ...]:
        """The workers' own heartbeats: ``/livez`` is red once either misses three of its beats."""
        return (self.reader.heartbeat, self.shipper.heartbeat)

    def open(self) -> None:
        """Load the checkpoint (before anything reads a file), open the sink, watch for new files.

        OSError if the sink cannot be opened. Watching cannot fail: without inotify the re-glob finds files.
        """
        self.store.load()
        self.sink.open()
        self.watcher.start()

    def _file_appeared(self, path: str, fd: int) -> None:
        self.tailer.arrive(path, fd)
        self.reader.wake()

    def _directories_changed(self) -> None:
        self.tailer.request_scan()
        self.reader.wake()

    def unacknowledged_bytes(self) -> int:
        """Bytes read but not yet acknowledged by the sink: read again at the next start."""
        return self.buffer.used_bytes + self.batcher.sealed_bytes()

    def close(self) -> None:
        """Stop watching, write the checkpoint, close the files and the sink; the threads must have ended."""
        self.watcher.stop()
        self.shipper.save_checkpoint()
        self.sink.close()
        self.tailer.close_all()
