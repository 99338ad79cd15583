"""Turn one log record (a line, or joined lines) into a JSON document with ECS enrichment.

JSON-object lines keep their fields; any other line becomes ``{"message": ...}``.
Every document gets ``@timestamp`` (the record's own, else the read time),
``log.file.path``, ``log.offset``, ``host.name`` and, in Kubernetes,
``kubernetes.pod.name`` and ``kubernetes.namespace``.

This is the hot path (tens of thousands of lines a second on one core), so a
JSON line that does not clash with our fields is not re-serialised: its text
is validated by ``json.loads`` and our fields are spliced in before the
closing brace.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from json.encoder import encode_basestring
from typing import Any

RESERVED = ("log", "host", "kubernetes")
TRUNCATED = "truncated"
MULTILINE = "multiline"

_loads = json.loads
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str).encode


def format_timestamp(epoch: float) -> str:
    """Format an epoch as the UTC ISO 8601 form Elasticsearch parses by default, in milliseconds."""
    millis = int(epoch * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(millis // 1000)) + f".{millis % 1000:03d}Z"


def is_iso_timestamp(value: str) -> bool:
    """Tell whether ``value`` is a date-time Elasticsearch's default date format accepts."""
    if len(value) < 10 or (len(value) > 10 and value[10] != "T"):
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


class FileContext:
    """Per-file pieces of every document, computed once per file instead of once per line."""

    __slots__ = ("path", "prefix")

    def __init__(self, path: str) -> None:
        self.path = path
        self.prefix = '"log":{"file":{"path":' + encode_basestring(path) + '},"offset":'


class RecordBuilder:
    """Build document sources; ``build`` returns (timestamp, source JSON, problem or None)."""

    def __init__(
        self,
        host_name: str,
        pod_name: str | None = None,
        namespace: str | None = None,
        timestamp_fields: tuple[str, ...] = ("@timestamp", "time", "timestamp"),
    ) -> None:
        self.host: dict[str, Any] = {"name": host_name}
        kubernetes: dict[str, Any] = {}
        if pod_name:
            kubernetes["pod"] = {"name": pod_name}
        if namespace:
            kubernetes["namespace"] = namespace
        self.kubernetes = kubernetes
        constant = ',"host":' + _dumps(self.host)
        if kubernetes:
            constant += ',"kubernetes":' + _dumps(kubernetes)
        self._constant = constant
        self._timestamp_fields = timestamp_fields

    def build(
        self, text: str, ctx: FileContext, offset: int, read_ts: str, flags: tuple[str, ...] = ()
    ) -> tuple[str, str, str | None]:
        """Return (``@timestamp`` value, document JSON, problem) for the record ``text`` at ``offset``.

        The value returned is ``read_ts`` itself (the same object) when the record has no time of its own.
        """
        problem = None
        if text[:1] == "{" and TRUNCATED not in flags:
            try:
                obj = _loads(text)
            except ValueError:
                obj = None
                problem = "invalid_json"
            if type(obj) is dict:
                return self._from_object(obj, text, ctx, offset, read_ts, flags)
        return read_ts, self.message(text, ctx, offset, read_ts, flags), problem

    def message(self, text: str, ctx: FileContext, offset: int, read_ts: str, flags: tuple[str, ...] = ()) -> str:
        """The document of a record that is not a JSON object: ``{"message": text, ...}``."""
        tail = self._tail(ctx, offset, flags) + ',"@timestamp":"' + read_ts + '"}'
        return '{"message":' + encode_basestring(text) + "," + tail

    def _tail(self, ctx: FileContext, offset: int, flags: tuple[str, ...]) -> str:
        if flags:
            return ctx.prefix + str(offset) + ',"flags":' + _dumps(list(flags)) + "}" + self._constant
        return ctx.prefix + str(offset) + "}" + self._constant

    def _from_object(
        self, obj: dict[str, Any], text: str, ctx: FileContext, offset: int, read_ts: str, flags: tuple[str, ...]
    ) -> tuple[str, str, str | None]:
        ts, add_ts = self._timestamp(obj, read_ts)
        if "log" in obj or "host" in obj or "kubernetes" in obj:
            return ts, self._merged(obj, ctx, offset, ts if add_ts else None, flags), None
        tail = self._tail(ctx, offset, flags)
        if add_ts:
            tail += ',"@timestamp":"' + ts + '"'
        body = text.rstrip()
        # A JSON object's text ends with "}"; splice our fields in before it.
        source = body[:-1] + "," + tail + "}" if obj else "{" + tail + "}"
        return ts, source, None

    def _timestamp(self, obj: dict[str, Any], read_ts: str) -> tuple[str, bool]:
        """Return (timestamp, whether @timestamp must be added to the document)."""
        for name in self._timestamp_fields:
            value = obj.get(name)
            if value is None:
                continue
            if name == "@timestamp":
                # The record's own @timestamp stays as it is; a non-string one (epoch millis) is
                # valid for Elasticsearch but cannot name a dated index, so the read time does that.
                return (value if isinstance(value, str) else read_ts), False
            if isinstance(value, str) and is_iso_timestamp(value):
                return value, True
        return read_ts, True

    def _merged(
        self, obj: dict[str, Any], ctx: FileContext, offset: int, add_ts: str | None, flags: tuple[str, ...]
    ) -> str:
        """Slow path: the record has its own log/host/kubernetes fields; merge ours in (ours win)."""
        log: dict[str, Any] = {"file": {"path": ctx.path}, "offset": offset}
        if flags:
            log["flags"] = list(flags)
        ours: dict[str, dict[str, Any]] = {"log": log, "host": self.host}
        if self.kubernetes:
            ours["kubernetes"] = self.kubernetes
        for key, value in ours.items():
            theirs = obj.get(key)
            if isinstance(theirs, dict):
                obj[key] = merge(theirs, value)
                continue
            if theirs is not None:
                # A scalar would clash with our object mapping; keep it under another name.
                # Docker's json-file format puts the message in "log".
                target = "message" if key == "log" and "message" not in obj else f"{key}_original"
                obj[target] = theirs
            obj[key] = value
        if add_ts is not None:
            obj["@timestamp"] = add_ts
        return str(_dumps(obj))


def merge(theirs: dict[str, Any], ours: dict[str, Any]) -> dict[str, Any]:
    """Merge ``ours`` into a copy of ``theirs``, recursively; on a clash our value wins."""
    merged = dict(theirs)
    for key, value in ours.items():
        current = merged.get(key)
        merged[key] = merge(current, value) if isinstance(current, dict) and isinstance(value, dict) else value
    return merged
