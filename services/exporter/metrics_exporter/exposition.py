"""One scrape: ask every source within the scrape's deadline, add self-metrics, render text or OpenMetrics.

Sources are asked at scrape time (nothing cached, per "Writing exporters"). A
source that fails is reported as ``exporter_source_up{source} 0`` and the rest
of the page still serves. A family whose name was already exported (say an
unmapped statsd name equal to a JSON rule's name) is left out and counted, so
the page never carries a duplicate family Prometheus would reject whole.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence

from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from metrics_exporter.self_metrics import SourceResult
from metrics_exporter.sources import Source, SourceError

logger = logging.getLogger(__name__)

SelfMetrics = Callable[[list[SourceResult], Mapping[str, int]], list[Metric]]
# Without a margin left, still try: half of what Prometheus allows beats giving up.
_MIN_SHARE_OF_SCRAPE_TIMEOUT = 0.5


class MetricList:
    """A collector over families already gathered (what prometheus_client's encoders take)."""

    def __init__(self, metrics: Sequence[Metric]) -> None:
        self.metrics = list(metrics)

    def collect(self) -> Iterable[Metric]:
        return self.metrics


def parse_scrape_timeout(header: str | None) -> float | None:
    """Read ``X-Prometheus-Scrape-Timeout-Seconds``; None when absent or not a positive number."""
    if not header:
        return None
    try:
        value = float(header)
    except ValueError:
        return None
    return value if math.isfinite(value) and value > 0 else None


def fetch_budget(scrape_timeout: float | None, configured: float, margin: float) -> float:
    """Seconds a source may take: the configured timeout, cut to the scrape timeout minus ``margin``."""
    if scrape_timeout is None:
        return configured
    available = scrape_timeout - margin
    if available <= 0:
        available = scrape_timeout * _MIN_SHARE_OF_SCRAPE_TIMEOUT
    return min(configured, available)


class Exposition:
    """Gather a scrape's families from the sources, extra collectors and the self-metrics."""

    def __init__(
        self,
        sources: Sequence[Source],
        self_metrics: SelfMetrics,
        timeout_seconds: float,
        margin_seconds: float,
        extra: Sequence[Collector] = (),
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.sources = list(sources)
        self.self_metrics = self_metrics
        self.timeout_seconds = timeout_seconds
        self.margin_seconds = margin_seconds
        self.extra = list(extra)
        self._clock = clock
        self._lock = threading.Lock()
        self._collisions: dict[str, int] = {}
        self._source_up: dict[str, bool] = {}

    def scrape(self, scrape_timeout: float | None = None) -> list[Metric]:
        budget = fetch_budget(scrape_timeout, self.timeout_seconds, self.margin_seconds)
        results: list[SourceResult] = []
        gathered: list[Metric] = []
        for source in self.sources:
            start = self._clock()
            try:
                families = source.collect(budget)
                result = SourceResult(source.name, True, self._clock() - start)
            except SourceError as exc:
                families = []
                result = SourceResult(source.name, False, self._clock() - start, str(exc))
            except Exception as exc:  # a bug in one source must cost its up, not the whole page
                logger.exception("source failed unexpectedly", extra={"source": source.name})
                families = []
                result = SourceResult(source.name, False, self._clock() - start, f"internal error: {exc!r}")
            self._log_transition(result)
            results.append(result)
            gathered.extend(families)
        page = [metric for collector in self.extra for metric in collector.collect()]
        names = {metric.name for metric in page}
        for family in gathered:
            if family.name in names:
                self._count_collision(family.name)
                continue
            names.add(family.name)
            page.append(family)
        with self._lock:
            collisions = dict(self._collisions)
        return self.self_metrics(results, collisions) + page

    def render(self, accept: str, scrape_timeout: float | None = None) -> tuple[bytes, str]:
        """Encode one scrape as the client asked (text 0.0.4 or OpenMetrics); return body and content type."""
        encoder, content_type = choose_encoder(accept)
        return encoder(MetricList(self.scrape(scrape_timeout))), content_type

    def _count_collision(self, name: str) -> None:
        with self._lock:
            first = name not in self._collisions
            self._collisions[name] = self._collisions.get(name, 0) + 1
        if first:
            logger.warning("metric family left out: its name is already exported", extra={"metric": name})

    def _log_transition(self, result: SourceResult) -> None:
        """Log when a source goes down or comes back, not on every scrape while it stays down."""
        with self._lock:
            previous = self._source_up.get(result.name)
            self._source_up[result.name] = result.up
        if previous is not False and not result.up:
            logger.warning("source down", extra={"source": result.name, "error": result.error})
        elif previous is False and result.up:
            logger.info("source up again", extra={"source": result.name})
