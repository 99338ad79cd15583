"""The sidecar's own metrics; the names are an interface (README's Metrics; dashboards and alerts use them)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

DOCUMENT_RESULTS = ("delivered", "duplicate", "dead_letter")
PROBE_RESULTS = ("up", "down")
BATCH_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """Every series the log sidecar exports, registered on ``registry``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.lines_read = Counter("log_sidecar_lines_read", "Complete lines read from log files.", registry=registry)
        self.bytes_read = Counter("log_sidecar_bytes_read", "Bytes read from log files.", registry=registry)
        self.documents = Counter(
            "log_sidecar_documents",
            "Documents that reached a final state: delivered, duplicate (already stored: 409) or dead_letter.",
            ["result"],
            registry=registry,
        )
        self.retries = Counter(
            "log_sidecar_retries",
            "Documents scheduled to be sent again after a retryable failure, by reason.",
            ["reason"],
            registry=registry,
        )
        self.dead_letters = Counter(
            "log_sidecar_dead_letters", "Documents written to the dead-letter file.", registry=registry
        )
        self.lag_bytes = Gauge(
            "log_sidecar_lag_bytes",
            "Bytes of a file not yet acknowledged by the sink (file size minus checkpoint).",
            ["file"],
            registry=registry,
        )
        self.rotated_bytes_at_risk = Gauge(
            "log_sidecar_rotated_bytes_at_risk",
            "Unacknowledged bytes in rotated or deleted files that only our open descriptor still reaches.",
            registry=registry,
        )
        self.batch_seconds = Histogram(
            "log_sidecar_batch_seconds",
            "Duration of one request to the sink.",
            buckets=BATCH_BUCKETS,
            registry=registry,
        )
        self.sink_up = Gauge(
            "log_sidecar_sink_up",
            "1 while the sink answers (a 429 included), 0 while it fails whole requests (down, 5xx, 401/403).",
            registry=registry,
        )
        self.probes = Counter(
            "log_sidecar_sink_probes",
            "One-document requests probing a down sink, by result: up (answered: the backlog follows) or down.",
            ["result"],
            registry=registry,
        )
        self.skipped = Counter(
            "log_sidecar_skipped",
            "Input that produced no document, by reason (blank lines, files gone before they were read).",
            ["reason"],
            registry=registry,
        )
        self.malformed = Counter(
            "log_sidecar_malformed_records",
            "Records shipped in a repaired form: invalid_utf8, invalid_json (sent as message), truncated.",
            ["reason"],
            registry=registry,
        )
        self.file_events = Counter(
            "log_sidecar_file_events",
            "Files opened, resumed, rotated, deleted, truncated, replaced (inode reuse), closed or gone.",
            ["event"],
            registry=registry,
        )
        self.open_files = Gauge("log_sidecar_open_files", "Log files held open.", registry=registry)
        self.buffer_bytes = Gauge(
            "log_sidecar_buffer_bytes",
            "Bytes of documents in memory (queued or in flight), capped by LOG_BUFFER_MAX_BYTES.",
            registry=registry,
        )
        self.checkpoint_writes = Counter(
            "log_sidecar_checkpoint_writes", "Checkpoint writes, by result.", ["result"], registry=registry
        )
        self.checkpoint_timestamp = Gauge(
            "log_sidecar_checkpoint_last_write_timestamp_seconds",
            "When the checkpoint was last written (Unix time).",
            registry=registry,
        )
        for result in DOCUMENT_RESULTS:
            self.documents.labels(result)
        for result in PROBE_RESULTS:
            self.probes.labels(result)
        self.sink_up.set(0)
