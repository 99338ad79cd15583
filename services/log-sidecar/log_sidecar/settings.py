"""The log sidecar's settings, read once from the environment into a frozen dataclass."""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from sidecar_common import (
    SettingsError,
    admin_host_setting,
    admin_port_setting,
    log_level_setting,
    port_setting,
    setting,
)

SINKS = ("elasticsearch", "fluentd", "file", "stdout")
MIB = 1024 * 1024
# Characters Elasticsearch refuses in an index name (besides upper case and a leading -, _, +).
_BAD_INDEX_CHARS = re.compile(r'[\\/*?"<>| ,#:]')


@dataclass(frozen=True, repr=False)
class Settings:
    """Everything the sidecar reads from its environment."""

    paths: tuple[str, ...] = setting(
        "LOG_PATHS", ("/var/log/app/*.log",), "comma-separated globs of log files to tail (rescanned)"
    )
    state_dir: Path = setting(
        "LOG_STATE_DIR", Path("/var/lib/log-sidecar"), "checkpoint and dead-letter directory (a volume)"
    )
    sink: str = setting("LOG_SINK", "file", "where documents go: elasticsearch, fluentd, file or stdout", choices=SINKS)
    es_url: str | None = setting("ES_URL", None, "Elasticsearch base URL, e.g. http://elasticsearch:9200")
    es_index: str = setting(
        "ES_INDEX", "logs-app-%Y.%m.%d", "index name; strftime codes use the document's @timestamp (UTC)"
    )
    es_username: str | None = setting("ES_USERNAME", None, "basic-auth user")
    es_password: str | None = setting("ES_PASSWORD", None, "basic-auth password (secret)", secret=True)
    es_api_key: str | None = setting("ES_API_KEY", None, "API key, base64 id:key (secret)", secret=True)
    es_ca_cert: Path | None = setting("ES_CA_CERT", None, "CA bundle to verify Elasticsearch's TLS certificate")
    fluentd_host: str = setting("FLUENTD_HOST", "localhost", "Fluentd forward-protocol host")
    fluentd_port: int = port_setting("FLUENTD_PORT", 24224, "Fluentd forward-protocol port")
    fluentd_tag: str = setting("FLUENTD_TAG", "app.log", "Fluentd tag of every event")
    file_sink_path: Path | None = setting(
        "LOG_FILE_SINK_PATH", None, "file sink output (JSON lines); unset = LOG_STATE_DIR/shipped.ndjson"
    )
    pod_name: str | None = setting("POD_NAME", None, "kubernetes.pod.name (Downward API)")
    pod_namespace: str | None = setting("POD_NAMESPACE", None, "kubernetes.namespace (Downward API)")
    node_name: str | None = setting("NODE_NAME", None, "host.name (Downward API); unset = this host's name")
    scan_interval_seconds: float = setting(
        "LOG_SCAN_INTERVAL_SECONDS",
        10.0,
        "how often LOG_PATHS are re-globbed: the safety net under inotify, which sees new files at once",
        exclusive_minimum=0,
    )
    poll_interval_seconds: float = setting(
        "LOG_POLL_INTERVAL_SECONDS", 0.1, "how often open files are checked for new data when idle", exclusive_minimum=0
    )
    rotate_wait_seconds: float = setting(
        "LOG_ROTATE_WAIT_SECONDS", 5.0, "keep a rotated or deleted file open this long after its last write", minimum=0
    )
    partial_flush_seconds: float = setting(
        "LOG_PARTIAL_FLUSH_SECONDS",
        5.0,
        "ship a line without newline (or a multiline record) after this idle time",
        exclusive_minimum=0,
    )
    max_line_bytes: int = setting(
        "LOG_MAX_LINE_BYTES", 262144, "longer lines are cut to this and flagged log.flags: [truncated]", minimum=1
    )
    multiline_pattern: str | None = setting(
        "LOG_MULTILINE_PATTERN", None, "regex matching the first line of a record; other lines join it; unset = off"
    )
    multiline_max_lines: int = setting("LOG_MULTILINE_MAX_LINES", 500, "most lines joined into one record", minimum=1)
    fingerprint_bytes: int = setting(
        "LOG_FINGERPRINT_BYTES", 1024, "leading bytes hashed to tell a reused inode from the file it had", minimum=1
    )
    timestamp_fields: tuple[str, ...] = setting(
        "LOG_TIMESTAMP_FIELDS", ("@timestamp", "time", "timestamp"), "JSON fields tried, in order, for @timestamp"
    )
    batch_max_docs: int = setting("LOG_BATCH_MAX_DOCS", 2000, "most documents in one request", minimum=1)
    batch_max_bytes: int = setting("LOG_BATCH_MAX_BYTES", 4 * MIB, "most bytes in one request", minimum=1)
    flush_interval_seconds: float = setting(
        "LOG_FLUSH_INTERVAL_SECONDS", 1.0, "longest a document waits in a batch that is not full", exclusive_minimum=0
    )
    buffer_max_bytes: int = setting(
        "LOG_BUFFER_MAX_BYTES", 8 * MIB, "cap on documents held in memory; reading pauses at the cap", minimum=1
    )
    retry_max: int = setting(
        "LOG_RETRY_MAX", 0, "attempts per document before it is dead-lettered; 0 = forever", minimum=0
    )
    retry_initial_seconds: float = setting(
        "LOG_RETRY_INITIAL_SECONDS", 0.2, "first retry delay (then doubles)", exclusive_minimum=0
    )
    retry_max_seconds: float = setting(
        "LOG_RETRY_MAX_SECONDS", 30.0, "longest retry delay (exponential, jittered)", exclusive_minimum=0
    )
    sink_probe_interval_seconds: float = setting(
        "LOG_SINK_PROBE_INTERVAL_SECONDS",
        1.0,
        "while the sink fails whole requests: longest time between two one-document probes (jittered)",
        exclusive_minimum=0,
    )
    sink_timeout_seconds: float = setting(
        "LOG_SINK_TIMEOUT_SECONDS", 30.0, "timeout of one request to the sink", exclusive_minimum=0
    )
    drain_seconds: float = setting(
        "LOG_DRAIN_SECONDS",
        10.0,
        "on SIGTERM: time to ship what was read and write the checkpoint",
        exclusive_minimum=0,
    )
    checkpoint_interval_seconds: float = setting(
        "LOG_CHECKPOINT_INTERVAL_SECONDS",
        1.0,
        "most time between checkpoint writes while documents are acked; 0 = after every acknowledged batch",
        minimum=0,
    )
    dead_letter_max_bytes: int = setting(
        "LOG_DEAD_LETTER_MAX_BYTES", 100 * MIB, "dead-letter file size that rolls it over to .1 (one kept)", minimum=1
    )
    log_level: str = log_level_setting()
    admin_host: str = admin_host_setting()
    admin_port: int = admin_port_setting(8082, "/livez, /readyz, /status and /metrics")

    def __repr__(self) -> str:
        """Show every field but the secrets, so settings can be logged safely."""
        shown = []
        for field in fields(self):
            value = getattr(self, field.name)
            if field.metadata.get("secret") and value is not None:
                value = "***"
            shown.append(f"{field.name}={value!r}")
        return f"Settings({', '.join(shown)})"

    def validate(self) -> None:
        """Reject combinations that parse but cannot work, naming the variable (ranges are declared above)."""
        if not self.paths:
            raise SettingsError("LOG_PATHS", "needs at least one glob")
        if self.retry_max_seconds < self.retry_initial_seconds:
            raise SettingsError("LOG_RETRY_MAX_SECONDS", "must be >= LOG_RETRY_INITIAL_SECONDS")
        if self.buffer_max_bytes < self.batch_max_bytes:
            raise SettingsError("LOG_BUFFER_MAX_BYTES", "must be >= LOG_BATCH_MAX_BYTES")
        if self.multiline_pattern:
            try:
                re.compile(self.multiline_pattern)
            except re.error as exc:
                raise SettingsError("LOG_MULTILINE_PATTERN", f"not a regular expression: {exc}") from None
        if self.sink == "elasticsearch":
            self._validate_elasticsearch()

    def _validate_elasticsearch(self) -> None:
        if not self.es_url:
            raise SettingsError("ES_URL", "is required when LOG_SINK=elasticsearch")
        parts = urlsplit(self.es_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SettingsError("ES_URL", "must be an http:// or https:// URL")
        if self.es_username and self.es_password is None:
            raise SettingsError("ES_PASSWORD", "is required when ES_USERNAME is set")
        if self.es_password is not None and not self.es_username:
            raise SettingsError("ES_USERNAME", "is required when ES_PASSWORD is set")
        if self.es_api_key and self.es_username:
            raise SettingsError("ES_API_KEY", "set either ES_API_KEY or ES_USERNAME/ES_PASSWORD, not both")
        if self.es_ca_cert is not None and not self.es_ca_cert.is_file():
            raise SettingsError("ES_CA_CERT", f"no such file: {self.es_ca_cert}")
        sample = datetime(2024, 12, 31, 23, tzinfo=UTC).strftime(self.es_index)
        if not sample or sample != sample.lower() or sample[0] in "-_+." or _BAD_INDEX_CHARS.search(sample):
            raise SettingsError(
                "ES_INDEX", f'{self.es_index!r} gives {sample!r}: index names are lower case, without \\/*?"<>| ,#:'
            )

    @property
    def pin_index_time(self) -> bool:
        """Name dated indices of records without a time of their own by the file's pinned read time.

        For sinks whose duplicate check depends on the index (Elasticsearch's ``_id`` is
        unique per index): see tailer.py.
        """
        return self.sink == "elasticsearch"

    @property
    def file_sink_target(self) -> Path:
        """Where the file sink writes: LOG_FILE_SINK_PATH or a file in the state dir."""
        return self.file_sink_path or self.state_dir / "shipped.ndjson"

    @property
    def redacted_es_url(self) -> str:
        """ES_URL without any user:password@ part, for logs."""
        if not self.es_url:
            return ""
        parts = urlsplit(self.es_url)
        if parts.username is None and parts.password is None:
            return self.es_url
        host = parts.hostname or ""
        netloc = f"{host}:{parts.port}" if parts.port else host
        return parts._replace(netloc=netloc).geturl()
