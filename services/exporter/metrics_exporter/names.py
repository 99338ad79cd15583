"""Prometheus naming rules: what a valid metric or label name is, and how to make one from a statsd name."""

from __future__ import annotations

import re

# Colons are legal in the exposition format but reserved for recording rules, so our names never use them.
_METRIC_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
_INVALID_CHARS = re.compile(r"[^a-zA-Z0-9_]+")
_CAMEL_HUMP = re.compile(r"([a-z0-9])([A-Z])")
_REPEATED_UNDERSCORES = re.compile(r"__+")

# Suffixes the exposition format gives a meaning to; a gauge named like this confuses every reader (and promtool).
RESERVED_SUFFIXES = ("_total", "_count", "_sum", "_bucket", "_created", "_info")
# Label names the histogram samples themselves use.
HISTOGRAM_RESERVED_LABELS = frozenset({"le"})
# Abbreviated or non-base units promtool rejects at the end of a name, and the base unit they stand for.
_MILLISECOND_SUFFIXES = ("_milliseconds", "_millis", "_msec", "_ms")


def is_valid_metric_name(name: str) -> bool:
    return bool(_METRIC_NAME.match(name)) and not name.startswith("__")


def is_valid_label_name(name: str) -> bool:
    """Label names starting with ``__`` are reserved for Prometheus itself."""
    return bool(_LABEL_NAME.match(name)) and not name.startswith("__")


def snake_case(raw: str) -> str:
    """Turn any string into lower snake case made of ``[a-z0-9_]`` only (may be empty)."""
    text = _CAMEL_HUMP.sub(r"\1_\2", raw)
    text = _INVALID_CHARS.sub("_", text).lower()
    return _REPEATED_UNDERSCORES.sub("_", text).strip("_")


def sanitize_label_name(raw: str) -> str | None:
    """Make a label name from a DogStatsD tag key, or None when nothing usable is left."""
    name = snake_case(raw)
    if not name:
        return None
    if name[0].isdigit():
        name = "tag_" + name
    return name


def unmapped_metric_name(statsd_name: str, metric_type: str) -> str | None:
    """Derive a conventional Prometheus name for a statsd metric no rule maps.

    Counters get ``_total``; histograms (timers, converted to seconds) get ``_seconds``
    in place of a millisecond suffix; gauges never end in a reserved suffix.
    """
    name = snake_case(statsd_name)
    if not name:
        return None
    if name[0].isdigit():
        name = "statsd_" + name
    if metric_type == "counter":
        return name if name.endswith("_total") else name + "_total"
    if metric_type == "histogram":
        for suffix in _MILLISECOND_SUFFIXES:
            if name.endswith(suffix):
                name = name[: -len(suffix)]
                break
        name = name if name.endswith("_seconds") else name + "_seconds"
    if name.endswith(RESERVED_SUFFIXES):
        name += "_value"
    return name
