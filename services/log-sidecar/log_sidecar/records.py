"""Turn one log record (a line, or joined lines) into a JSON document with ECS enrichment.

JSON-object lines keep their fields; any other line becomes ``{"message": ...}``.
Every document gets ``@timestamp`` (the record's own, else the read time),
``log.file.path``, ``log.offset``, ``host.name`` and, in Kubernetes,
``kubernetes.pod.name`` and ``kubernetes.namespace``.

This is the hot path (hundreds of thousands of lines a second on one core), so
it works on the bytes as read, and a JSON line that does not clash with our
fields is not re-serialised: orjson validates it (UTF-8 included) and our
fields are spliced in before its closing brace. orjson is stricter than the
standard library (no NaN, no lone surrogate escapes, at most 1024 levels
deep): a line it refuses is judged again by ``json.loads`` exactly as before,
so which lines count as JSON, and what they become, does not depend on the
fast path. A line that is not valid JSON is shipped as a message, unaltered.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from json.encoder import encode_basestring_ascii
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from log_sidecar.sinks.base import Framing

RESERVED = ("log", "host", "kubernetes")
TRUNCATED = "truncated"
MULTILINE = "multiline"

# A problem found in a record: (reason for the bad-input counter, detail for its log line).
Problem = tuple[str, str]
NO_PROBLEMS: tuple[Problem, ...] = ()

_fast_loads = orjson.loads
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

    __slots__ = ("path", "prefix", "splice")

    def __init__(self, path: str) -> None:
        self.path = path
        # ASCII escapes: a file name that is not UTF-8 (surrogate-escaped by os) still encodes.
        self.prefix = b'"log":{"file":{"path":' + encode_basestring_ascii(path).encode() + b'},"offset":'
        self.splice = b"," + self.prefix  # after the fields of a JSON line


class RecordBuilder:
    """Build document sources; ``build`` returns (timestamp, source JSON bytes, problems)."""

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
        self._constant = constant.encode()
        self._after_offset = b"}" + self._constant
        self._timestamp_fields = timestamp_fields
        # Whether a string "@timestamp" settles the time at once (the usual order of the fields).
        self._own_first = timestamp_fields[:1] == ("@timestamp",)
        self._last_ts = ""
        self._last_ts_field = b""

    def build(
        self, data: bytes, ctx: FileContext, offset: int, read_ts: str, flags: tuple[str, ...] = ()
    ) -> tuple[str, bytes, tuple[Problem, ...]]:
        """Return (``@timestamp`` value, document JSON, problems) for the record ``data`` at ``offset``.

        The value returned is ``read_ts`` itself (the same object) when the record has no time of its own.
        """
        if data[:1] == b"{" and TRUNCATED not in flags:
            try:
                obj = _fast_loads(data)
            except ValueError:
                return self._judged_by_stdlib(data, ctx, offset, read_ts, flags)
            # Valid JSON that starts with "{" is an object. What follows is _from_object for the
            # usual line (fields of its own, none of ours, no flags), inlined: it runs for every line.
            if obj and not flags and not ("log" in obj or "host" in obj or "kubernetes" in obj):
                ts = obj.get("@timestamp") if self._own_first else None
                if ts.__class__ is str:
                    stamp = b""
                else:
                    ts, add_ts = self._timestamp(obj, read_ts)
                    stamp = self._ts_field(ts) if add_ts else b""
                source = b"%s,%s%d}%s%s}" % (data.rstrip()[:-1], ctx.prefix, offset, self._constant, stamp)
                return ts, source, NO_PROBLEMS
            return self._from_object(obj, data, ctx, offset, read_ts, flags)
        return self._judged_by_stdlib(data, ctx, offset, read_ts, flags)

    def frame(
        self, data: bytes, ctx: FileContext, offset: int, read_ts: str, index_ts: str, framing: Framing
    ) -> bytes | None:
        """The sink's item for the usual JSON line in one step, or None: ``build`` it and ``encode`` that.

        The usual line is an object with fields of its own and none of ours. ``index_ts``
        names the index when the record has no time of its own. Equal, byte for byte, to
        ``encode(id, ts, build(...))`` (a property test holds the two together); this is the
        same splice with one format instead of a source and then an item: it runs for every line.
        """
        if not data.startswith(b"{"):
            return None
        try:
            obj = _fast_loads(data)
        except ValueError:
            return None
        if not obj or "log" in obj or "host" in obj or "kubernetes" in obj:
            return None
        ts = obj.get("@timestamp") if self._own_first else None
        if ts.__class__ is str:
            stamp = b""
        else:
            ts, add_ts = self._timestamp(obj, read_ts)
            stamp = self._ts_field(ts) if add_ts else b""
            if ts is read_ts:
                ts = index_ts
        digits = b"%d" % offset
        return b"".join(
            (
                framing.head(ts),
                digits,
                framing.middle,
                data.rstrip()[:-1],
                ctx.splice,
                digits,
                self._after_offset,
                stamp,
                b"}",
                framing.end,
            )
        )

    def _judged_by_stdlib(
        self, data: bytes, ctx: FileContext, offset: int, read_ts: str, flags: tuple[str, ...]
    ) -> tuple[str, bytes, tuple[Problem, ...]]:
        """Everything the fast path does not take: text lines, invalid UTF-8, what orjson refuses."""
        problems = NO_PROBLEMS
        try:
            text = data.decode()
        except UnicodeDecodeError as exc:
            text = data.decode("utf-8", "replace")
            if not flags:  # a cut line ends mid-character by design: not worth a report
                problems = (("invalid_utf8", str(exc)),)
        if text[:1] == "{" and TRUNCATED not in flags:
            try:
                obj = _loads(text)
            except ValueError:
                obj = None
                problems += (("invalid_json", text[:80]),)
            if type(obj) is dict:
                ts, source, _ = self._from_object(obj, text.encode(), ctx, offset, read_ts, flags)
                return ts, source, problems
        return read_ts, self.message(text, ctx, offset, read_ts, flags), problems

    def message(self, text: str, ctx: FileContext, offset: int, read_ts: str, flags: tuple[str, ...] = ()) -> bytes:
        """The document of a record that is not a JSON object: ``{"message": text, ...}``."""
        return b"".join(
            (b'{"message":', orjson.dumps(text), b",", self._tail(ctx, offset, flags), self._ts_field(read_ts), b"}")
        )

    def _ts_field(self, ts: str) -> bytes:
        """``,"@timestamp":"<ts>"``; the read time serves a whole chunk of lines, so the last one is kept."""
        if ts is not self._last_ts:
            self._last_ts = ts
            self._last_ts_field = b',"@timestamp":"' + ts.encode() + b'"'
        return self._last_ts_field

    def _tail(self, ctx: FileContext, offset: int, flags: tuple[str, ...]) -> bytes:
        if flags:
            return b'%s%d,"flags":%s}%s' % (ctx.prefix, offset, _dumps(list(flags)).encode(), self._constant)
        return b"%s%d}%s" % (ctx.prefix, offset, self._constant)

    def _from_object(
        self, obj: dict[str, Any], data: bytes, ctx: FileContext, offset: int, read_ts: str, flags: tuple[str, ...]
    ) -> tuple[str, bytes, tuple[Problem, ...]]:
        ts, add_ts = self._timestamp(obj, read_ts)
        if "log" in obj or "host" in obj or "kubernetes" in obj:
            # Re-serialised, so parsed again by the standard library: orjson reads integers
            # beyond 64 bits as floats, and the document must keep the record's values exactly.
            exact = _loads(data)
            return ts, self._merged(exact, ctx, offset, ts if add_ts else None, flags).encode(), NO_PROBLEMS
        body = data.rstrip()
        # A JSON object's text ends with "}"; splice our fields in before it.
        stamp = self._ts_field(ts) if add_ts else b""
        if obj:
            return ts, b"%s,%s%s}" % (body[:-1], self._tail(ctx, offset, flags), stamp), NO_PROBLEMS
        return ts, b"{%s%s}" % (self._tail(ctx, offset, flags), stamp), NO_PROBLEMS

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
