"""Turn statsd packets into series updates: parse, map, store — with a route cache on the hot path.

The text after a line's value (``|c|@0.1|#status:200``) and its name repeat
line after line; the first time a (name, metadata) pair is seen it is parsed
and mapped once into a :class:`Route`, and every later line only parses its
number and updates the series. Bad lines are counted by reason and logged
(at most once per reason every few seconds, so a flood cannot drown the logs).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from metrics_exporter.mapping import Dropped, MappedMetric, Mapper, MetricType
from metrics_exporter.names import HISTOGRAM_RESERVED_LABELS
from metrics_exporter.statsd.parser import (
    LineMeta,
    MetricKind,
    Reason,
    StatsdParseError,
    Tags,
    parse_meta,
    parse_number,
    split_line,
    split_packet,
)
from metrics_exporter.store import CounterFamily, GaugeFamily, HistogramFamily, SeriesStore, SetFamily

logger = logging.getLogger(__name__)

# Distinct (name, metadata) pairs remembered; a flood of unique names resets the cache instead of growing it.
MAX_ROUTES = 20_000
# Pairs longer than this are resolved every time rather than cached, so the cache stays small in bytes too.
MAX_ROUTE_KEY_CHARS = 512
LOG_EVERY_SECONDS = 10.0


@dataclass
class IngestStats:
    """Counters of the statsd path, mutated by the receiver thread while it holds the store lock."""

    packets: int = 0
    lines: int = 0
    parse_errors: dict[Reason, int] = field(default_factory=lambda: dict.fromkeys(Reason, 0))
    unmapped: int = 0
    dropped: dict[str, int] = field(default_factory=lambda: {"rule": 0, "unmapped": 0})

    def copy(self) -> IngestStats:
        return IngestStats(self.packets, self.lines, dict(self.parse_errors), self.unmapped, dict(self.dropped))


class Route:
    """Where lines of one (name, metadata) pair go; ``apply`` parses the value text and updates a series."""

    __slots__ = ("invalid_tags", "unmapped")

    def __init__(self, invalid_tags: int = 0, unmapped: bool = False) -> None:
        self.invalid_tags = invalid_tags
        self.unmapped = unmapped

    def apply(self, value_text: str, now: float, line: str) -> None:
        raise NotImplementedError


class RejectRoute(Route):
    """A pair known to be unusable: every line of it is counted under the same reason."""

    __slots__ = ("detail", "reason")

    def __init__(self, error: StatsdParseError) -> None:
        super().__init__()
        # Not the error itself: it holds the whole line, and the cache must not keep big lines alive.
        self.reason = error.reason
        self.detail = error.detail[:200]

    def apply(self, value_text: str, now: float, line: str) -> None:
        raise StatsdParseError(self.reason, line, self.detail)


class DropRoute(Route):
    __slots__ = ("reason", "stats")

    def __init__(self, stats: IngestStats, reason: str, invalid_tags: int, unmapped: bool) -> None:
        super().__init__(invalid_tags, unmapped)
        self.stats = stats
        self.reason = reason

    def apply(self, value_text: str, now: float, line: str) -> None:
        self.stats.dropped[self.reason] += 1


class _SeriesRoute(Route):
    __slots__ = ("factor", "key", "labels", "weight")

    def __init__(self, key: Tags, meta: LineMeta, mapped: MappedMetric) -> None:
        super().__init__(meta.invalid_tags, not mapped.mapped)
        self.key = key
        self.labels = dict(key)
        self.factor = mapped.scale
        self.weight = 1.0 / meta.sample_rate


def _values(value_text: str, line: str) -> list[float]:
    """The number(s) of a line: one, or several for DogStatsD's packed ``1:2:3``."""
    if ":" not in value_text:
        return [parse_number(value_text, line)]
    return [parse_number(part, line) for part in value_text.split(":")]


class CountRoute(_SeriesRoute):
    """A counter line: add value × scale / sample rate (to a counter, or a gauge if the rule says so)."""

    __slots__ = ("family",)

    def __init__(self, family: CounterFamily | GaugeFamily, key: Tags, meta: LineMeta, mapped: MappedMetric) -> None:
        super().__init__(key, meta, mapped)
        self.family = family

    def apply(self, value_text: str, now: float, line: str) -> None:
        values = _values(value_text, line)
        if min(values) < 0:
            raise StatsdParseError(Reason.NEGATIVE_COUNTER, line)
        self.family.add(self.key, self.labels, sum(values) * self.factor * self.weight, now)


class GaugeRoute(_SeriesRoute):
    """A gauge line: set the value, or adjust it when the value is signed (``+3``, ``-2``)."""

    __slots__ = ("family",)

    def __init__(self, family: GaugeFamily, key: Tags, meta: LineMeta, mapped: MappedMetric) -> None:
        super().__init__(key, meta, mapped)
        self.family = family

    def apply(self, value_text: str, now: float, line: str) -> None:
        for part in value_text.split(":"):
            value = parse_number(part, line) * self.factor
            if part.lstrip()[:1] in ("+", "-"):
                self.family.add(self.key, self.labels, value, now)
            else:
                self.family.set(self.key, self.labels, value, now)


class ObserveRoute(_SeriesRoute):
    """A timer/histogram/distribution line: observe value × scale (ms → s by default), weighted by 1/rate."""

    __slots__ = ("family",)

    def __init__(self, family: HistogramFamily, key: Tags, meta: LineMeta, mapped: MappedMetric) -> None:
        super().__init__(key, meta, mapped)
        self.family = family

    def apply(self, value_text: str, now: float, line: str) -> None:
        for value in _values(value_text, line):
            self.family.observe(self.key, self.labels, value * self.factor, self.weight, now)


class SetRoute(_SeriesRoute):
    __slots__ = ("family",)

    def __init__(self, family: SetFamily, key: Tags, meta: LineMeta, mapped: MappedMetric) -> None:
        super().__init__(key, meta, mapped)
        self.family = family

    def apply(self, value_text: str, now: float, line: str) -> None:
        if not value_text:
            raise StatsdParseError(Reason.INVALID_VALUE, line)
        self.family.add_member(self.key, self.labels, value_text, now)


class Ingestor:
    """Parse, map and store statsd packets; the one place the statsd counters are kept."""

    def __init__(self, store: SeriesStore, mapper: Mapper, log_clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.mapper = mapper
        self.stats = IngestStats()
        self._routes: dict[str, Route] = {}
        self._routes_generation = store.generation  # the store's generation the cached routes belong to
        self._log_clock = log_clock
        self._last_logged: dict[Reason, float] = {}
        self._unlogged: dict[Reason, int] = {}

    def set_mapper(self, mapper: Mapper, clear_series: bool) -> None:
        """Swap the mapping; cached routes go, and the series too when the mapping really changed."""
        with self.store.lock:
            self.mapper = mapper
            self._routes.clear()
            if clear_series:
                self.store.clear()
            self._routes_generation = self.store.generation

    def ingest(self, packets: Iterable[bytes]) -> None:
        """Ingest a batch of packets under one hold of the store lock."""
        with self.store.lock:
            now = self.store.clock()
            self._forget_freed_families()  # a scrape or the housekeeping may have freed some since
            for packet in packets:
                self._packet(packet, now)

    def stats_snapshot(self) -> IngestStats:
        with self.store.lock:
            return self.stats.copy()

    def _packet(self, packet: bytes, now: float) -> None:
        stats = self.stats
        stats.packets += 1
        try:
            lines, undecodable = split_packet(packet)
        except StatsdParseError as exc:
            self._reject(exc)
            return
        if undecodable:
            stats.lines += undecodable
            stats.parse_errors[Reason.INVALID_UTF8] += undecodable
            self._reject(StatsdParseError(Reason.INVALID_UTF8, "", f"{undecodable} line(s)"), count=False)
        routes = self._routes
        for line in lines:
            stats.lines += 1
            name, colon, rest = line.partition(":")
            bar = rest.find("|")
            if not colon or bar < 0:
                try:
                    split_line(line)  # raises with the precise reason
                except StatsdParseError as exc:
                    self._reject(exc)
                continue
            # The name holds no ":" (it ends at the first one), so this key cannot confuse the name "a|b"
            # of "a|b:1|c" with the metadata "|b|c" of "a:1|b|c".
            key = name + ":" + rest[bar:]
            route = routes.get(key)
            if route is None:
                route = self._resolve(line)
                self._forget_freed_families()  # making a family at the name cap may have freed others
                if len(key) <= MAX_ROUTE_KEY_CHARS:
                    if len(routes) >= MAX_ROUTES:
                        routes.clear()
                    routes[key] = route
            try:
                route.apply(rest[:bar], now, line)
            except StatsdParseError as exc:
                self._reject(exc)
                continue
            if route.invalid_tags:
                stats.parse_errors[Reason.INVALID_TAG] += route.invalid_tags
            if route.unmapped:
                stats.unmapped += 1

    def _forget_freed_families(self) -> None:
        """Drop every cached route once the store freed families: a route may point at one of them."""
        if self.store.generation != self._routes_generation:
            self._routes.clear()
            self._routes_generation = self.store.generation

    def _resolve(self, line: str) -> Route:
        """Parse and map a (name, metadata) pair once; unusable pairs become a RejectRoute."""
        try:
            name, _, meta_text = split_line(line)
            meta = parse_meta(meta_text, line)
            decision = self.mapper.map(name, meta.kind)
            if isinstance(decision, Dropped):
                return DropRoute(self.stats, decision.reason, meta.invalid_tags, decision.reason == "unmapped")
            return self._series_route(meta, decision)
        except StatsdParseError as exc:
            return RejectRoute(exc)

    def _series_route(self, meta: LineMeta, mapped: MappedMetric) -> Route:
        labels = dict(meta.tags)
        labels.update(mapped.labels)  # the rule's labels win over a tag of the same name
        if mapped.metric_type is MetricType.HISTOGRAM:
            for reserved in HISTOGRAM_RESERVED_LABELS & labels.keys():
                labels["exported_" + reserved] = labels.pop(reserved)
        key = tuple(sorted(labels.items()))
        family = self.store.family(mapped, is_set=meta.kind is MetricKind.SET)
        if isinstance(family, SetFamily):
            return SetRoute(family, key, meta, mapped)
        if isinstance(family, HistogramFamily):
            return ObserveRoute(family, key, meta, mapped)
        if meta.kind is MetricKind.GAUGE and isinstance(family, GaugeFamily):
            return GaugeRoute(family, key, meta, mapped)
        assert isinstance(family, CounterFamily | GaugeFamily)
        return CountRoute(family, key, meta, mapped)

    def _reject(self, exc: StatsdParseError, count: bool = True) -> None:
        if count:
            self.stats.parse_errors[exc.reason] += 1
        now = self._log_clock()
        last = self._last_logged.get(exc.reason)
        if last is not None and now - last < LOG_EVERY_SECONDS:
            self._unlogged[exc.reason] = self._unlogged.get(exc.reason, 0) + 1
            return
        self._last_logged[exc.reason] = now
        suppressed = self._unlogged.pop(exc.reason, 0)
        logger.warning(
            "statsd input rejected: %s",
            exc.reason.value,
            extra={
                "reason": exc.reason.value,
                "detail": exc.detail or exc.line[:200],
                "similar_suppressed": suppressed,
            },
        )
