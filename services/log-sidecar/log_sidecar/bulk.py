"""The Elasticsearch Bulk API contract: NDJSON create actions, index names, per-item results.

A bulk request can answer 200 while some items failed: the body says
``"errors": true`` and each item carries its own ``status``. Per item, 2xx is
stored, 409 on ``create`` is "already stored" (a duplicate, not a failure,
because our ids are deterministic), 429 and 5xx are worth retrying, and other
4xx (mapping errors and the like) will fail again however often they are sent.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import orjson

from log_sidecar.sinks.base import ItemFailure, PayloadRejectedError, SendResult, SinkUnavailableError

# Ask Elasticsearch for only what we read: a 2000-item answer shrinks about tenfold.
FILTER_PATH = "errors,items.*.status,items.*.error.type,items.*.error.reason"
_FINER_THAN_HOUR = ("%M", "%S", "%f", "%s", "%c", "%X", "%T", "%R", "%r")
UTC_SUFFIXES = ("Z", "+00:00")
_CACHE_LIMIT = 4096
_HTML_TITLE = re.compile(rb"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_HEAD_CACHE_LIMIT = 64  # distinct index names whose action-line start is kept (dated: one a day)


class IndexNamer:
    """Name the index of a document from its @timestamp (UTC) and an strftime pattern."""

    def __init__(self, pattern: str, now: Any = None) -> None:
        self.pattern = pattern
        self.dated = "%" in pattern
        self._hourly_cache = self.dated and not any(code in pattern for code in _FINER_THAN_HOUR)
        self._cache: dict[str, str] = {}
        self._now = now or (lambda: datetime.now(UTC))

    def __call__(self, timestamp: str) -> str:
        if not self.dated:
            return self.pattern
        utc = timestamp.endswith(UTC_SUFFIXES) and len(timestamp) >= 13
        if utc and self._hourly_cache:
            # The common case: a UTC timestamp; its first 13 characters fix the index.
            name = self._cache.get(timestamp[:13])
            if name is not None:
                return name
        try:
            moment = datetime.fromisoformat(timestamp)
        except ValueError:
            # Elasticsearch will reject such a document anyway (dead letter); any index will do, but
            # not in the cache: valid timestamps of the same hour must still get their own index.
            return self._format(self._now())
        name = self._format(moment)
        if utc and self._hourly_cache:
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[timestamp[:13]] = name
        return name

    def hour_of(self, timestamp: str) -> str | None:
        """The first 13 characters of ``timestamp`` if they alone name its index (as cached), else None."""
        if self._hourly_cache and len(timestamp) >= 13 and timestamp.endswith(UTC_SUFFIXES):
            hour = timestamp[:13]
            if hour in self._cache:
                return hour
        return None

    def _format(self, moment: datetime) -> str:
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC).strftime(self.pattern)


ACTION_END = b'"}}\n'


def action_head(index: str) -> bytes:
    """The start of a ``create`` action line for ``index``, up to the ``_id`` value (one per index, cached)."""
    return b'{"create":{"_index":"' + index.encode() + b'","_id":"'


def create_action(index: str, doc_id: str) -> bytes:
    """The action line of a ``create``: refused with 409 if ``doc_id`` is already stored."""
    return action_head(index) + doc_id.encode() + ACTION_END


class BulkFraming:
    """The ``create`` action line and source of each document of one file, as bytes (see sinks.base.Framing)."""

    __slots__ = ("_fixed", "_heads", "_hour", "_hour_head", "_key", "_namer")
    middle = ACTION_END
    end = b"\n"

    def __init__(self, namer: IndexNamer, key: str) -> None:
        self._namer = namer
        self._key = key.encode() + b"."  # ids are "<key>.<offset>" (ids.document_id)
        self._heads: dict[str, bytes] = {}
        # One index for every document (no date in the pattern): the head never changes.
        self._fixed = None if namer.dated else action_head(namer.pattern) + self._key
        self._hour = ""  # the hour (IndexNamer.hour_of) of the last head, kept in _hour_head
        self._hour_head = b""

    def head(self, timestamp: str) -> bytes:
        if self._fixed is not None:
            return self._fixed
        # Records come in time order: most are in the hour of the one before.
        if self._hour and timestamp.startswith(self._hour) and timestamp.endswith(UTC_SUFFIXES):
            return self._hour_head
        index = self._namer(timestamp)
        head = self._heads.get(index)
        if head is None:
            if len(self._heads) >= _HEAD_CACHE_LIMIT:
                self._heads.clear()
            head = self._heads[index] = action_head(index) + self._key
        hour = self._namer.hour_of(timestamp)
        if hour is not None:
            self._hour, self._hour_head = hour, head
        return head


def retry_reason(status: int, error_type: str = "") -> str | None:
    """Why a failed item (or request) should be retried, or None if retrying cannot help."""
    if status == 429:
        return "rate_limited"
    if status >= 500:
        return "server_error"
    if status == 403 and error_type == "cluster_block_exception":
        return "cluster_block"  # e.g. the disk flood-stage block: lifted once space is freed
    return None


def all_created(sent: int) -> bytes:
    """The exact answer, under FILTER_PATH, of Elasticsearch (and the emulator) when all ``sent`` creates succeeded."""
    return b'{"errors":false,"items":[' + b",".join([b'{"create":{"status":201}}'] * sent) + b"]}"


def parse_response(body: bytes, sent: int) -> SendResult:
    """Read a 200 bulk answer into counts and failures; an unreadable answer means "retry everything"."""
    if body == all_created(sent):
        # The usual answer, byte for byte: no need to build thousands of dicts to read it.
        return SendResult(delivered=sent)
    try:
        # orjson first (one answer per batch of thousands of items); what it refuses, the
        # standard library may still read (a byte-order mark from a proxy, say).
        payload = orjson.loads(body)
    except ValueError:
        try:
            payload = json.loads(body)
        except ValueError as exc:
            raise SinkUnavailableError("invalid_response", f"bulk answer is not JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise SinkUnavailableError("invalid_response", "bulk answer is not a JSON object")
    items = payload.get("items")
    if not isinstance(items, list) or len(items) != sent:
        count = len(items) if isinstance(items, list) else "no"
        raise SinkUnavailableError("invalid_response", f"{count} items in the answer for {sent} sent")
    if payload.get("errors") is False:
        return SendResult(delivered=sent)
    result = SendResult()
    for position, item in enumerate(items):
        info = next(iter(item.values()), None) if isinstance(item, dict) and item else None
        if not isinstance(info, dict):
            raise SinkUnavailableError("invalid_response", f"item {position} has no result")
        status = int(info.get("status", 0))
        if 200 <= status < 300:
            result.delivered += 1
        elif status == 409:
            result.duplicates += 1
        else:
            error = info.get("error")
            error_type = str(error.get("type", "")) if isinstance(error, dict) else str(error or "")
            reason = str(error.get("reason", "")) if isinstance(error, dict) else ""
            retryable = retry_reason(status, error_type) is not None
            result.failures.append(ItemFailure(position, status, error_type, reason, retryable))
    return result


def check_status(status: int, body: bytes, retry_after: str | None) -> None:
    """Raise for a whole-request failure; return for 200.

    400 and 413 are about the body (a proxy's 413 too: split, never dead-letter a document for
    its batch's size); everything else is the sink being unavailable, whatever the body says
    (an ingress's HTML 502 page, a 401 while credentials rotate): retried, never dead-lettered.
    """
    if status == 200:
        return
    detail = error_summary(body)
    if status in (400, 413):
        raise PayloadRejectedError(status, detail)
    if status == 403 and detail.startswith("cluster_block_exception"):
        reason = "cluster_block"  # e.g. the disk flood-stage block: lifted once space is freed
    elif status in (401, 403):
        reason = "unauthorized"
    else:
        reason = retry_reason(status) or f"http_{status}"
    raise SinkUnavailableError(reason, f"HTTP {status}: {detail}", parse_retry_after(retry_after))


def error_summary(body: bytes) -> str:
    """The type and reason of an Elasticsearch error body, the title of an HTML error page, or the body's start."""
    try:
        payload = json.loads(body)
    except ValueError:
        title = _HTML_TITLE.search(body[:4096])
        if title is not None:  # an error page from a proxy or ingress in front of Elasticsearch
            return "HTML page: " + " ".join(title.group(1).decode("utf-8", "replace").split())
        return body[:200].decode("utf-8", "replace")
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, dict):
        return f"{error.get('type', '')}: {error.get('reason', '')}"
    return str(error if error is not None else payload)[:200]


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())
