"""The statsd source as the scrape sees it: the store's families, as long as the receiver is alive."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client.metrics_core import Metric

from metrics_exporter.sources import SourceError
from metrics_exporter.store import SeriesStore


class StatsdSource:
    """Serve the aggregated statsd series; a dead receiver makes the source down rather than silently flat."""

    name = "statsd"

    def __init__(self, store: SeriesStore, healthy: Callable[[], bool] = lambda: True) -> None:
        self.store = store
        self.healthy = healthy

    def collect(self, timeout: float) -> list[Metric]:
        if not self.healthy():
            raise SourceError("receiver_down", "the statsd receiver thread stopped beating")
        return self.store.collect()
