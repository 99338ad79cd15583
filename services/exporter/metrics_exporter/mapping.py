"""Statsd mapping rules: which Prometheus name, type, labels, buckets, scale and ttl a statsd metric gets.

Rules are tried in order and the first match wins. A glob's ``*`` matches one
dot-separated component and ``**`` matches the rest of the name (dots included);
each is a capture (``$1``, ``$2`` ...). A regex rule uses numbered or named groups.
Unmatched metrics get a sanitized name (or are dropped, by policy).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from metrics_exporter.names import RESERVED_SUFFIXES, is_valid_metric_name, unmapped_metric_name
from metrics_exporter.settings import UnmappedPolicy
from metrics_exporter.statsd.parser import MetricKind, Reason, StatsdParseError, Tags
from metrics_exporter.templates import Template

# client_golang's and client_python's default buckets, in seconds.
DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# statsd timers are milliseconds; Prometheus wants base units.
MILLISECONDS_TO_SECONDS = 0.001


class MetricType(StrEnum):
    COUNTER = "counter"
    GAUGE = "gauge"
    HISTOGRAM = "histogram"


class MatchType(StrEnum):
    GLOB = "glob"
    REGEX = "regex"


class MatchMetricType(StrEnum):
    """Which statsd types a rule applies to (``timer`` covers ``ms``, ``h`` and ``d``)."""

    COUNTER = "counter"
    GAUGE = "gauge"
    TIMER = "timer"
    SET = "set"


class Action(StrEnum):
    MAP = "map"
    DROP = "drop"


_KIND_CLASS = {
    MetricKind.COUNTER: MatchMetricType.COUNTER,
    MetricKind.GAUGE: MatchMetricType.GAUGE,
    MetricKind.TIMER: MatchMetricType.TIMER,
    MetricKind.HISTOGRAM: MatchMetricType.TIMER,
    MetricKind.DISTRIBUTION: MatchMetricType.TIMER,
    MetricKind.SET: MatchMetricType.SET,
}
# The Prometheus type a statsd type becomes when the rule does not say, and the types it may become.
DEFAULT_TYPE = {
    MatchMetricType.COUNTER: MetricType.COUNTER,
    MatchMetricType.GAUGE: MetricType.GAUGE,
    MatchMetricType.TIMER: MetricType.HISTOGRAM,
    MatchMetricType.SET: MetricType.GAUGE,
}
ALLOWED_TYPES = {
    MatchMetricType.COUNTER: frozenset({MetricType.COUNTER, MetricType.GAUGE}),
    MatchMetricType.GAUGE: frozenset({MetricType.GAUGE}),
    MatchMetricType.TIMER: frozenset({MetricType.HISTOGRAM}),
    MatchMetricType.SET: frozenset({MetricType.GAUGE}),
}


def glob_to_regex(glob: str) -> re.Pattern[str]:
    """Compile a glob: ``**`` captures the rest (dots included), ``*`` one non-empty component part."""
    parts = re.split(r"(\*\*|\*)", glob)
    pattern = "".join("(.+)" if p == "**" else "([^.]+)" if p == "*" else re.escape(p) for p in parts)
    return re.compile(pattern)


def default_scale(kind: MetricKind) -> float:
    return MILLISECONDS_TO_SECONDS if kind.observes else 1.0


def name_problem(name: str, metric_type: MetricType) -> str | None:
    """Why ``name`` cannot be a Prometheus metric of ``metric_type`` (promtool's rules), or None."""
    if not is_valid_metric_name(name):
        return f"{name!r} is not a valid metric name ([a-zA-Z_][a-zA-Z0-9_]*)"
    if name.startswith("exporter_"):
        return f"{name!r}: the exporter_ prefix is reserved for the exporter's own metrics"
    if metric_type is MetricType.COUNTER:
        if not name.endswith("_total"):
            return f"counter {name!r} must end with _total"
    elif name.endswith(RESERVED_SUFFIXES):
        return f"{metric_type.value} {name!r} must not end with {', '.join(RESERVED_SUFFIXES)}"
    return None


@dataclass(frozen=True)
class Defaults:
    """Values rules fall back to (the ``defaults:`` section of the mapping file)."""

    # None: the file does not say, so EXPORTER_DEFAULT_TTL_SECONDS applies.
    ttl: float | None = None
    buckets: tuple[float, ...] = DEFAULT_BUCKETS
    match_type: MatchType = MatchType.GLOB


@dataclass(frozen=True)
class MappingRule:
    match: str
    pattern: re.Pattern[str]
    match_type: MatchType = MatchType.GLOB
    match_metric_type: MatchMetricType | None = None
    action: Action = Action.MAP
    name: Template | None = None
    metric_type: MetricType | None = None
    labels: tuple[tuple[str, Template], ...] = ()
    help: str = ""
    buckets: tuple[float, ...] | None = None
    scale: float | None = None
    ttl: float | None = None

    def applies_to(self, kind: MetricKind) -> bool:
        return self.match_metric_type is None or self.match_metric_type is _KIND_CLASS[kind]


@dataclass(frozen=True, slots=True)
class MappedMetric:
    """Where one statsd metric goes: the exposed name (counters end in ``_total``) and how to store it."""

    name: str
    metric_type: MetricType
    help: str
    labels: Tags = ()
    buckets: tuple[float, ...] = DEFAULT_BUCKETS
    scale: float = 1.0
    ttl: float = 0.0
    mapped: bool = True


@dataclass(frozen=True, slots=True)
class Dropped:
    """The metric is deliberately not exported: ``rule`` (a drop action) or ``unmapped`` (policy)."""

    reason: str


class Mapper:
    """Resolve a statsd name and type to a :class:`MappedMetric` or :class:`Dropped`."""

    def __init__(
        self,
        rules: tuple[MappingRule, ...] = (),
        defaults: Defaults | None = None,
        unmapped: UnmappedPolicy = UnmappedPolicy.EXPORT,
        default_ttl: float = 0.0,
    ) -> None:
        self.rules = rules
        self.defaults = defaults or Defaults()
        self.unmapped = unmapped
        self.ttl = default_ttl if self.defaults.ttl is None else self.defaults.ttl

    def map(self, name: str, kind: MetricKind) -> MappedMetric | Dropped:
        """Apply the first matching rule; raise StatsdParseError when the result cannot be exported."""
        for rule in self.rules:
            if not rule.applies_to(kind):
                continue
            match = rule.pattern.fullmatch(name)
            if match is None:
                continue
            if rule.action is Action.DROP:
                return Dropped("rule")
            return self._apply(rule, match, name, kind)
        return self._unmapped(name, kind)

    def _apply(self, rule: MappingRule, match: re.Match[str], name: str, kind: MetricKind) -> MappedMetric:
        kind_class = _KIND_CLASS[kind]
        metric_type = rule.metric_type or DEFAULT_TYPE[kind_class]
        if metric_type not in ALLOWED_TYPES[kind_class]:
            raise StatsdParseError(Reason.TYPE_CONFLICT, name, f"{kind_class.value} cannot become {metric_type.value}")
        groups = match.groups(default="")
        named = match.groupdict(default="")
        assert rule.name is not None  # config validation guarantees a name for map rules
        metric_name = rule.name.expand(groups, named)
        problem = name_problem(metric_name, metric_type)
        if problem is not None:
            raise StatsdParseError(Reason.INVALID_NAME, name, problem)
        labels = tuple((label, template.expand(groups, named)) for label, template in rule.labels)
        return MappedMetric(
            name=metric_name,
            metric_type=metric_type,
            help=rule.help or f"statsd metric {rule.match} ({kind_class.value})",
            labels=labels,
            buckets=rule.buckets or self.defaults.buckets,
            scale=default_scale(kind) if rule.scale is None else rule.scale,
            ttl=self.ttl if rule.ttl is None else rule.ttl,
        )

    def _unmapped(self, name: str, kind: MetricKind) -> MappedMetric | Dropped:
        if self.unmapped is UnmappedPolicy.DROP:
            return Dropped("unmapped")
        kind_class = _KIND_CLASS[kind]
        metric_type = DEFAULT_TYPE[kind_class]
        metric_name = unmapped_metric_name(name, metric_type.value)
        if metric_name is None or name_problem(metric_name, metric_type) is not None:
            raise StatsdParseError(Reason.INVALID_NAME, name, f"no usable Prometheus name in {name!r}")
        return MappedMetric(
            name=metric_name,
            metric_type=metric_type,
            help=f"statsd metric {name} ({kind_class.value}, unmapped)",
            buckets=self.defaults.buckets,
            scale=default_scale(kind),
            ttl=self.ttl,
            mapped=False,
        )
