"""What a metrics source is: something that yields metric families at scrape time, or fails as a whole."""

from __future__ import annotations

from typing import Protocol

from prometheus_client.metrics_core import Metric


class SourceError(Exception):
    """The source cannot answer this scrape; its ``up`` goes to 0 and the rest of /metrics still serves."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class Source(Protocol):
    """A source of metric families (statsd or JSON), asked once per scrape."""

    @property
    def name(self) -> str:
        """The ``source`` label of ``exporter_source_up`` and ``exporter_source_duration_seconds``."""
        ...

    def collect(self, timeout: float) -> list[Metric]:
        """Return this scrape's families within ``timeout`` seconds, or raise SourceError."""
        ...
