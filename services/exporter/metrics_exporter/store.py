"""Aggregated statsd series: one value per name and label set, summed over every sender (all gunicorn workers).

Every gunicorn worker sends to the same UDP port, so a counter here is the sum
over workers, including workers that already died — the reason this lives in a
sidecar and not in client_python's multiprocess files. Each family caps its
number of series (a label explosion costs a counter, not the exporter's memory),
and series not updated for the family's ``ttl`` are expired. A family left
without series is freed with them, so ``EXPORTER_MAX_METRICS`` counts the names
that hold data now, not every name ever seen: a service whose per-job metric
names come and go never locks new names out.

Threading: the receiver thread updates families while holding :attr:`SeriesStore.lock`
for one batch of packets; a scrape copies the values into prometheus_client Metric
objects under the lock (about 1 ms per 1,000 series) and encodes them outside it.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar, cast

from prometheus_client.metrics_core import Metric
from prometheus_client.utils import floatToGoString

from metrics_exporter.mapping import MappedMetric, MetricType
from metrics_exporter.statsd.parser import Reason, StatsdParseError, Tags

# How client libraries spell a bucket bound in the le label ("1.0", "0.005", "+Inf").
_go_float = cast(Callable[[float], str], floatToGoString)

# A set keeps its members to count distinct ones; beyond this they are dropped and counted.
MAX_SET_MEMBERS = 10_000


class Series:
    """One label set of a counter or gauge."""

    __slots__ = ("labels", "seen", "value")

    def __init__(self, labels: dict[str, str], now: float) -> None:
        self.labels = labels
        self.seen = now
        self.value = 0.0


class HistogramSeries:
    """One label set of a histogram: per-bucket counts (last one is +Inf), sum and count."""

    __slots__ = ("buckets", "count", "labels", "seen", "sum")

    def __init__(self, labels: dict[str, str], now: float, bucket_count: int) -> None:
        self.labels = labels
        self.seen = now
        self.buckets = [0.0] * (bucket_count + 1)
        self.sum = 0.0
        self.count = 0.0


class SetSeries:
    """One label set of a statsd set, exported as a gauge of distinct members seen."""

    __slots__ = ("labels", "members", "seen")

    def __init__(self, labels: dict[str, str], now: float) -> None:
        self.labels = labels
        self.seen = now
        self.members: set[str] = set()


S = TypeVar("S", Series, HistogramSeries, SetSeries)


class Family(Generic[S]):
    """All series of one exposed metric name, with its type, help, ttl and series cap."""

    kind = "family"

    def __init__(self, store: SeriesStore, mapped: MappedMetric) -> None:
        self.store = store
        self.name = mapped.name
        self.metric_type = mapped.metric_type
        self.help = mapped.help
        self.ttl = mapped.ttl
        self.series: dict[Tags, S] = {}

    def _admit(self) -> bool:
        """Whether a new series may be created; count the refusal when the cap is reached."""
        if len(self.series) < self.store.max_series_per_metric:
            return True
        self.store.count_dropped(self.name)
        return False

    def expire(self, oldest: float) -> int:
        stale = [key for key, series in self.series.items() if series.seen < oldest]
        for key in stale:
            del self.series[key]
        return len(stale)

    def snapshot(self) -> Metric:
        """Copy this family into a prometheus_client Metric (call with the store lock held)."""
        raise NotImplementedError


class CounterFamily(Family[Series]):
    kind = "counter"

    def add(self, key: Tags, labels: dict[str, str], amount: float, now: float) -> None:
        series = self.series.get(key)
        if series is None:
            if not self._admit():
                return
            series = self.series[key] = Series(labels, now)
        series.value += amount
        series.seen = now

    def snapshot(self) -> Metric:
        # The family name drops _total; the sample keeps it (what OpenMetrics requires).
        metric = Metric(self.name.removesuffix("_total"), self.help, "counter")
        for series in self.series.values():
            metric.add_sample(self.name, series.labels, series.value)
        return metric


class GaugeFamily(Family[Series]):
    kind = "gauge"

    def _series(self, key: Tags, labels: dict[str, str], now: float) -> Series | None:
        series = self.series.get(key)
        if series is None:
            if not self._admit():
                return None
            series = self.series[key] = Series(labels, now)
        series.seen = now
        return series

    def add(self, key: Tags, labels: dict[str, str], amount: float, now: float) -> None:
        series = self._series(key, labels, now)
        if series is not None:
            series.value += amount

    def set(self, key: Tags, labels: dict[str, str], value: float, now: float) -> None:
        series = self._series(key, labels, now)
        if series is not None:
            series.value = value

    def snapshot(self) -> Metric:
        metric = Metric(self.name, self.help, "gauge")
        for series in self.series.values():
            metric.add_sample(self.name, series.labels, series.value)
        return metric


class HistogramFamily(Family[HistogramSeries]):
    kind = "histogram"

    def __init__(self, store: SeriesStore, mapped: MappedMetric) -> None:
        super().__init__(store, mapped)
        self.bounds = tuple(sorted(set(mapped.buckets)))
        self._le = [_go_float(bound) for bound in self.bounds] + ["+Inf"]

    def observe(self, key: Tags, labels: dict[str, str], value: float, weight: float, now: float) -> None:
        series = self.series.get(key)
        if series is None:
            if not self._admit():
                return
            series = self.series[key] = HistogramSeries(labels, now, len(self.bounds))
        # bisect_left: a value equal to a bound belongs in that bound's bucket (le = "less or equal").
        series.buckets[bisect.bisect_left(self.bounds, value)] += weight
        series.sum += value * weight
        series.count += weight
        series.seen = now

    def snapshot(self) -> Metric:
        metric = Metric(self.name, self.help, "histogram")
        for series in self.series.values():
            cumulative = 0.0
            for le, count in zip(self._le, series.buckets, strict=True):
                cumulative += count
                metric.add_sample(self.name + "_bucket", {**series.labels, "le": le}, cumulative)
            metric.add_sample(self.name + "_count", series.labels, series.count)
            metric.add_sample(self.name + "_sum", series.labels, series.sum)
        return metric


class SetFamily(Family[SetSeries]):
    kind = "set"

    def add_member(self, key: Tags, labels: dict[str, str], member: str, now: float) -> None:
        series = self.series.get(key)
        if series is None:
            if not self._admit():
                return
            series = self.series[key] = SetSeries(labels, now)
        series.seen = now
        if member in series.members:
            return
        if len(series.members) >= MAX_SET_MEMBERS:
            self.store.count_dropped(self.name)
            return
        series.members.add(member)

    def snapshot(self) -> Metric:
        metric = Metric(self.name, self.help, "gauge")
        for series in self.series.values():
            metric.add_sample(self.name, series.labels, float(len(series.members)))
        return metric


AnyFamily = CounterFamily | GaugeFamily | HistogramFamily | SetFamily


@dataclass(frozen=True)
class StoreCounts:
    """The store's own numbers, copied for the exporter's self-metrics."""

    metrics: int
    series: int
    expired: int
    dropped: dict[str, int]


class SeriesStore:
    """Every statsd family by exposed name, with the per-metric series cap and ttl expiry."""

    def __init__(
        self,
        max_series_per_metric: int = 1000,
        max_metrics: int = 1000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_series_per_metric = max_series_per_metric
        self.max_metrics = max_metrics
        self.clock = clock
        self.lock = threading.Lock()
        self.families: dict[str, AnyFamily] = {}
        self.series_dropped: dict[str, int] = {}
        self.expired_total = 0
        # Bumped whenever families are freed or cleared: whoever keeps references to families
        # (the ingestor's route cache) must drop them, or it would update a family nobody exports.
        self.generation = 0

    def count_dropped(self, name: str) -> None:
        self.series_dropped[name] = self.series_dropped.get(name, 0) + 1

    def family(self, mapped: MappedMetric, is_set: bool = False) -> AnyFamily:
        """Return the family for ``mapped``, creating it; the first mapping to a name fixes its type."""
        family = self.families.get(mapped.name)
        wanted = _family_class(mapped.metric_type, is_set)
        if family is not None:
            if type(family) is not wanted:
                raise StatsdParseError(
                    Reason.TYPE_CONFLICT, mapped.name, f"{mapped.name} is a {family.kind}, not a {wanted.kind}"
                )
            return family
        if len(self.families) >= self.max_metrics:
            self.expire()  # names whose series all expired since the last scrape free their place now
        if len(self.families) >= self.max_metrics:
            raise StatsdParseError(Reason.TOO_MANY_METRICS, mapped.name, f"limit {self.max_metrics} reached")
        family = self.families[mapped.name] = wanted(self, mapped)
        return family

    def expire(self, now: float | None = None) -> int:
        """Drop series idle for longer than their family's ttl, then families left empty; return how many series.

        Take the lock first. A family is empty also when its first line was refused
        after the family was made (an invalid value): it holds no data either.
        """
        now = self.clock() if now is None else now
        expired = sum(family.expire(now - family.ttl) for family in self.families.values() if family.ttl > 0)
        self.expired_total += expired
        empty = [name for name, family in self.families.items() if not family.series]
        for name in empty:
            del self.families[name]
        if empty:
            self.generation += 1
        return expired

    def clear(self) -> None:
        """Forget every family (a mapping change makes old names and types meaningless)."""
        self.families.clear()
        self.generation += 1

    def collect(self) -> list[Metric]:
        """Expire stale series and copy every non-empty family, in name order, under the lock."""
        with self.lock:
            self.expire()
            return [self.families[name].snapshot() for name in sorted(self.families) if self.families[name].series]

    def counts(self) -> StoreCounts:
        with self.lock:
            return StoreCounts(
                metrics=len(self.families),
                series=sum(len(family.series) for family in self.families.values()),
                expired=self.expired_total,
                dropped=dict(self.series_dropped),
            )


def _family_class(metric_type: MetricType, is_set: bool) -> type[AnyFamily]:
    if is_set:
        return SetFamily
    if metric_type is MetricType.COUNTER:
        return CounterFamily
    if metric_type is MetricType.GAUGE:
        return GaugeFamily
    return HistogramFamily
