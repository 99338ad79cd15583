"""Parse statsd and DogStatsD lines; bad input raises :class:`StatsdParseError` carrying a countable reason.

A line is ``<name>:<value>[:<value>...]|<type>[|@<rate>][|#<k>:<v>,...]``. Types: ``c`` counter,
``g`` gauge (``+n``/``-n`` adjust it), ``ms`` timer, ``h`` histogram, ``d`` distribution, ``s`` set.
Several lines may share a packet, one per ``\\n``. DogStatsD's container (``|c:...``) and
timestamp (``|T...``) fields are accepted and ignored: Prometheus owns the time axis.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from math import isfinite

from metrics_exporter.names import sanitize_label_name

# UDP over IPv4 cannot carry more than 65,507 bytes; anything larger came from elsewhere and is refused whole.
MAX_PACKET_BYTES = 65536

Tags = tuple[tuple[str, str], ...]


class MetricKind(StrEnum):
    COUNTER = "c"
    GAUGE = "g"
    TIMER = "ms"
    HISTOGRAM = "h"
    DISTRIBUTION = "d"
    SET = "s"

    @property
    def observes(self) -> bool:
        """Timers, histograms and distributions are all observations of a duration in milliseconds."""
        return self in _OBSERVATIONS


_OBSERVATIONS = frozenset({MetricKind.TIMER, MetricKind.HISTOGRAM, MetricKind.DISTRIBUTION})
_KINDS = {kind.value: kind for kind in MetricKind}


class Reason(StrEnum):
    """Why a packet, line or tag was rejected; the label of ``exporter_statsd_parse_errors_total``."""

    PACKET_TOO_LARGE = "packet_too_large"
    INVALID_UTF8 = "invalid_utf8"
    MISSING_VALUE = "missing_value"
    EMPTY_NAME = "empty_name"
    MISSING_TYPE = "missing_type"
    UNKNOWN_TYPE = "unknown_type"
    INVALID_VALUE = "invalid_value"
    NEGATIVE_COUNTER = "negative_counter"
    INVALID_SAMPLE_RATE = "invalid_sample_rate"
    INVALID_FIELD = "invalid_field"
    INVALID_TAG = "invalid_tag"
    UNSUPPORTED_EVENT = "unsupported_event"
    # Raised after parsing, when the line cannot be stored under its mapped name.
    INVALID_NAME = "invalid_name"
    TYPE_CONFLICT = "type_conflict"
    TOO_MANY_METRICS = "too_many_metrics"


class StatsdParseError(ValueError):
    """A line (or packet) that cannot be used, with the reason it is counted under."""

    def __init__(self, reason: Reason, line: str, detail: str = "") -> None:
        super().__init__(f"{reason.value}: {detail or line[:200]!r}")
        self.reason = reason
        self.line = line
        self.detail = detail


@dataclass(frozen=True, slots=True)
class LineMeta:
    """Everything after the value: the part that repeats, line after line, for one metric."""

    kind: MetricKind
    sample_rate: float = 1.0
    tags: Tags = ()
    # Tags dropped because they were unusable; the line itself is kept.
    invalid_tags: int = 0


@dataclass(frozen=True, slots=True)
class StatsdSample:
    """One parsed line. ``values`` holds several numbers for DogStatsD's packed ``a:1:2:3|ms``."""

    name: str
    kind: MetricKind
    values: tuple[float, ...] = ()
    # Per value, for gauges only: True when it is a ``+n``/``-n`` adjustment rather than a new value.
    relative: tuple[bool, ...] = ()
    # Sets carry an opaque member instead of numbers.
    member: str = ""
    sample_rate: float = 1.0
    tags: Tags = ()
    invalid_tags: int = 0


def split_packet(packet: bytes) -> tuple[list[str], int]:
    """Decode a packet into its non-empty lines; return them and how many lines were not UTF-8.

    A single bad byte must not cost the other lines of the packet, so on a decode
    error each line is decoded on its own.
    """
    if len(packet) > MAX_PACKET_BYTES:
        raise StatsdParseError(Reason.PACKET_TOO_LARGE, "", f"{len(packet)} bytes")
    try:
        text = packet.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        if "\n" not in text:  # gunicorn's case: one line per packet
            return ([text] if text else []), 0
        return [line for line in text.split("\n") if line], 0
    lines: list[str] = []
    invalid = 0
    for raw in packet.split(b"\n"):
        if not raw:
            continue
        try:
            lines.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            invalid += 1
    return lines, invalid


def split_line(line: str) -> tuple[str, str, str]:
    """Split a line into name, value text and the metadata text after the first ``|``."""
    name, colon, rest = line.partition(":")
    if line.startswith(("_e{", "_sc|")):
        raise StatsdParseError(Reason.UNSUPPORTED_EVENT, line)
    if not colon:
        raise StatsdParseError(Reason.MISSING_VALUE, line)
    if not name.strip():
        raise StatsdParseError(Reason.EMPTY_NAME, line)
    bar = rest.find("|")
    if bar < 0:
        raise StatsdParseError(Reason.MISSING_TYPE, line)
    return name, rest[:bar], rest[bar + 1 :]


def parse_meta(meta: str, line: str = "") -> LineMeta:
    """Parse ``<type>[|@rate][|#tags]...`` (the text after the value's ``|``)."""
    fields = meta.split("|")
    kind = _KINDS.get(fields[0])
    if kind is None:
        reason = Reason.MISSING_TYPE if not fields[0] else Reason.UNKNOWN_TYPE
        raise StatsdParseError(reason, line or meta)
    sample_rate = 1.0
    tags: dict[str, str] = {}
    invalid_tags = 0
    for field in fields[1:]:
        if field.startswith("@"):
            sample_rate = _parse_sample_rate(field[1:], line or meta)
        elif field.startswith("#"):
            invalid_tags += _parse_tags(field[1:], tags)
        elif field.startswith(("c:", "T")):
            continue  # DogStatsD container id / client timestamp: no Prometheus meaning
        else:
            raise StatsdParseError(Reason.INVALID_FIELD, line or meta, field[:50])
    if kind is MetricKind.GAUGE or kind is MetricKind.SET:
        sample_rate = 1.0  # DogStatsD applies sample rates to counts and observations only
    return LineMeta(kind, sample_rate, tuple(sorted(tags.items())), invalid_tags)


def _parse_sample_rate(text: str, line: str) -> float:
    try:
        rate = float(text)
    except ValueError:
        raise StatsdParseError(Reason.INVALID_SAMPLE_RATE, line) from None
    if not (0.0 < rate <= 1.0):
        raise StatsdParseError(Reason.INVALID_SAMPLE_RATE, line)
    return rate


def _parse_tags(text: str, into: dict[str, str]) -> int:
    """Add ``k:v`` tags to ``into`` (a later duplicate wins); return how many were unusable."""
    invalid = 0
    for tag in text.split(","):
        key, colon, value = tag.partition(":")
        if not tag:
            continue
        name = sanitize_label_name(key) if colon else None
        if name is None:  # a bare DogStatsD tag ("env") has no value to put in a label
            invalid += 1
            continue
        into[name] = value
    return invalid


def parse_number(text: str, line: str) -> float:
    """Parse one finite number; NaN and infinities would poison sums and rates."""
    try:
        value = float(text)
    except ValueError:
        raise StatsdParseError(Reason.INVALID_VALUE, line) from None
    if not isfinite(value):
        raise StatsdParseError(Reason.INVALID_VALUE, line)
    return value


def parse_values(text: str, kind: MetricKind, line: str = "") -> tuple[tuple[float, ...], tuple[bool, ...]]:
    """Parse the value part (possibly packed ``1:2:3``) for a numeric kind; return values and gauge flags."""
    parts = text.split(":")
    values = tuple(parse_number(part, line or text) for part in parts)
    if kind is MetricKind.GAUGE:
        return values, tuple(part.lstrip()[:1] in ("+", "-") for part in parts)
    if kind is MetricKind.COUNTER and any(value < 0 for value in values):
        raise StatsdParseError(Reason.NEGATIVE_COUNTER, line or text)
    return values, (False,) * len(values)


def parse_line(line: str) -> StatsdSample:
    """Parse one line completely (the receiver uses the same pieces with a cache in front)."""
    name, value_text, meta_text = split_line(line)
    meta = parse_meta(meta_text, line)
    if meta.kind is MetricKind.SET:
        if not value_text:
            raise StatsdParseError(Reason.INVALID_VALUE, line)
        return StatsdSample(name, meta.kind, member=value_text, tags=meta.tags, invalid_tags=meta.invalid_tags)
    values, relative = parse_values(value_text, meta.kind, line)
    return StatsdSample(name, meta.kind, values, relative, "", meta.sample_rate, meta.tags, meta.invalid_tags)


def format_line(sample: StatsdSample) -> str:
    """Render a sample as a statsd line (used by tests, the bench and the round-trip fuzz)."""
    if sample.kind is MetricKind.SET:
        value = sample.member
    else:
        parts = []
        for value_, relative in zip(sample.values, sample.relative or (False,) * len(sample.values), strict=True):
            text = repr(value_)
            parts.append("+" + text if relative and value_ >= 0 else text)
        value = ":".join(parts)
    line = f"{sample.name}:{value}|{sample.kind.value}"
    if sample.sample_rate != 1.0:
        line += f"|@{sample.sample_rate!r}"
    if sample.tags:
        line += "|#" + ",".join(f"{k}:{v}" for k, v in sample.tags)
    return line
