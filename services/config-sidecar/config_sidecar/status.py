"""What the sidecar knows right now: source, published and applied versions, and the last error.

One object, updated by the sync loop and the reload notifier, feeds ``/status``,
``/readyz`` and the version/drift metrics, so they can never disagree. It holds
versions and file names only, never file contents.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from config_sidecar.metrics import SidecarMetrics, show_version
from config_sidecar.source import ConfigSet
from config_sidecar.validate import ConfigError

MAX_ERRORS_SHOWN = 20
MAX_REASON = 300


def _iso(timestamp: float | None) -> str | None:
    return None if timestamp is None else datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds")


class SyncState:
    """Thread-safe record of the sync pipeline, rendered by :meth:`snapshot` for ``/status``."""

    def __init__(self, metrics: SidecarMetrics, reload_mode: str, wall_clock: Callable[[], float] = time.time) -> None:
        self.metrics = metrics
        self.reload_mode = reload_mode
        self._now = wall_clock
        self._lock = threading.Lock()
        self._source: dict[str, Any] = {"version": None, "layout": None, "files": [], "skipped": [], "read_at": None}
        self._published: dict[str, Any] = {"version": None, "files": [], "changed": [], "at": None}
        self._applied: dict[str, Any] = {"version": None, "at": None}
        self._reload: dict[str, Any] = {"pending": None, "attempts": 0, "failures": 0, "last_error": None}
        self._last_error: dict[str, Any] | None = None
        self._errors: list[dict[str, Any]] = []
        self._last_success: float | None = None
        self._drift_since: float | None = None
        self._syncs = 0

    # Sync loop -------------------------------------------------------------
    def record_source(self, config: ConfigSet) -> None:
        with self._lock:
            self._source = {
                "version": config.version,
                "layout": config.layout,
                "files": sorted(config.files),
                "skipped": list(config.skipped),
                "read_at": self._now(),
            }

    def record_synced(self, result: str) -> None:
        """Count one sync pass; a "published" or "unchanged" pass clears the last error."""
        self.metrics.syncs.labels(result).inc()
        with self._lock:
            self._syncs += 1
            if result in ("published", "unchanged"):
                self.metrics.refused_files.clear()
                self._last_success = self._now()
                self.metrics.last_success.set(self._last_success)
                self._last_error = None
                self._errors = []

    def record_published(self, config: ConfigSet, changed: Sequence[str], restored: bool = False) -> None:
        """Note what the target dir now holds (``restored``: found there at start, not written now)."""
        with self._lock:
            self._published = {
                "version": config.version,
                "files": sorted(config.files),
                "changed": list(changed),
                "at": self._now(),
                "restored": restored,
            }
            show_version(self.metrics.published_version, config.version)
            self._update_drift()

    def record_invalid(self, config: ConfigSet, errors: Sequence[ConfigError], first_seen: bool) -> None:
        if first_seen:
            self.metrics.validation_failures.inc()
        self.metrics.refused_files.clear()
        for name in sorted({error.file for error in errors}):
            self.metrics.refused_files.labels(name).set(1)
        with self._lock:
            first = errors[0]
            self._last_error = {"stage": "validate", **first.as_dict(), "version": config.version, "at": self._now()}
            self._errors = [e.as_dict() for e in errors[:MAX_ERRORS_SHOWN]]

    def record_error(self, stage: str, reason: str) -> None:
        """Note a failure to read the source or write the target."""
        with self._lock:
            self._last_error = {
                "stage": stage,
                "file": None,
                "line": None,
                "reason": reason[:MAX_REASON],
                "version": None,
                "at": self._now(),
            }
            self._errors = []

    # Reload notifier -----------------------------------------------------------
    def record_reload_pending(self, version: str | None) -> None:
        with self._lock:
            self._reload["pending"] = version

    def record_reload_attempt(self) -> None:
        self.metrics.reload_attempts.inc()
        with self._lock:
            self._reload["attempts"] += 1

    def record_reload_failure(self, version: str, reason: str) -> None:
        self.metrics.reload_failures.inc()
        with self._lock:
            self._reload["failures"] += 1
            self._reload["last_error"] = {"version": version, "reason": reason[:MAX_REASON], "at": self._now()}

    def record_applied(self, version: str, latency_seconds: float | None) -> None:
        if latency_seconds is not None:
            self.metrics.propagation.observe(latency_seconds)
        with self._lock:
            self._applied = {"version": version, "at": self._now()}
            self._reload["last_error"] = None
            show_version(self.metrics.applied_version, version)
            self._update_drift()

    def _update_drift(self) -> None:
        drifting = self.reload_mode != "none" and self._published["version"] not in (None, self._applied["version"])
        if drifting and self._drift_since is None:
            self._drift_since = self._now()
        elif not drifting:
            self._drift_since = None
        self.metrics.drift.set(1 if drifting else 0)

    # Readers ---------------------------------------------------------------------
    def ready(self) -> bool:
        """Ready once the target holds a good set (published now, or found there and confirmed)."""
        with self._lock:
            return self._last_success is not None and self._published["version"] is not None

    def published_version(self) -> str | None:
        with self._lock:
            return self._published["version"]  # type: ignore[no-any-return]

    def applied_version(self) -> str | None:
        with self._lock:
            return self._applied["version"]  # type: ignore[no-any-return]

    def snapshot(self) -> dict[str, Any]:
        """The ``/status`` document: versions, timestamps, errors; never contents."""
        with self._lock:
            now = self._now()
            drift = None
            if self.reload_mode != "none":
                drift = {
                    "drifting": self._drift_since is not None,
                    "since": _iso(self._drift_since),
                    "seconds": None if self._drift_since is None else round(now - self._drift_since, 3),
                }
            return {
                "source": {**self._source, "read_at": _iso(self._source["read_at"])},
                "published": {**self._published, "at": _iso(self._published["at"])},
                "applied": {**self._applied, "at": _iso(self._applied["at"])},
                "drift": drift,
                "reload": {
                    "mode": self.reload_mode,
                    **self._reload,
                    "last_error": _with_iso(self._reload["last_error"]),
                },
                "last_error": _with_iso(self._last_error),
                "errors": list(self._errors),
                "last_success_at": _iso(self._last_success),
                "syncs": self._syncs,
            }


def _with_iso(record: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if record is None else {**record, "at": _iso(record["at"])}
