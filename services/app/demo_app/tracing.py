"""Trace context: which headers to forward upstream (for Istio/Zipkin/W3C) and the ids to log."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping

# What Envoy and the tracers it feeds need a service to copy from its inbound request to
# every outbound one, or each hop starts a new trace (Istio's "trace context propagation").
FORWARDED_HEADERS = (
    "x-request-id",
    "traceparent",
    "tracestate",
    "b3",
    "x-b3-traceid",
    "x-b3-spanid",
    "x-b3-parentspanid",
    "x-b3-sampled",
    "x-b3-flags",
)
MAX_REQUEST_ID_LENGTH = 128
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}")
_HEX_ID = re.compile(r"^(?:[0-9a-f]{16}|[0-9a-f]{32})$")
_PRINTABLE = re.compile(r"^[\x21-\x7e]+$")


def forwarded_headers(headers: Mapping[str, str], request_id: str) -> dict[str, str]:
    """The trace headers of an inbound request, to send on an outbound call (with our request id)."""
    lowered = {key.lower(): value for key, value in headers.items()}
    forwarded = {name: lowered[name] for name in FORWARDED_HEADERS if name in lowered}
    forwarded["x-request-id"] = request_id
    return forwarded


def request_id(headers: Mapping[str, str]) -> str:
    """The inbound x-request-id (Envoy sets one) if it is sane, else a fresh one."""
    given = headers.get("x-request-id", "").strip()
    if given and len(given) <= MAX_REQUEST_ID_LENGTH and _PRINTABLE.match(given):
        return given
    return str(uuid.uuid4())


def trace_id(headers: Mapping[str, str]) -> str | None:
    """The trace id from W3C traceparent, B3 multi-header or B3 single-header, in that order."""
    match = _TRACEPARENT.match(headers.get("traceparent", "").strip().lower())
    if match and match.group(1) != "0" * 32:
        return match.group(1)
    b3_trace = headers.get("x-b3-traceid", "").strip().lower()
    if _HEX_ID.match(b3_trace):
        return b3_trace
    single = headers.get("b3", "").strip().lower().split("-", 1)[0]
    if _HEX_ID.match(single):
        return single
    return None
