"""Bulk API answers are classified per item: stored, duplicate, retry, or permanent failure."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from log_sidecar.bulk import (
    BulkFraming,
    IndexNamer,
    action_head,
    all_created,
    check_status,
    create_action,
    parse_response,
    retry_reason,
)
from log_sidecar.sinks.base import PayloadRejectedError, SinkUnavailableError


def answer(*statuses: int, errors: bool = True) -> bytes:
    items = []
    for status in statuses:
        item: dict[str, object] = {"status": status}
        if status >= 400:
            kind = {
                409: "version_conflict_engine_exception",
                429: "es_rejected_execution_exception",
                400: "mapper_parsing_exception",
                403: "cluster_block_exception",
            }.get(status, "unavailable_shards_exception")
            item["error"] = {"type": kind, "reason": f"reason {status}"}
        items.append({"create": item})
    return json.dumps({"took": 3, "errors": errors, "items": items}).encode()


def test_every_item_status_is_classified() -> None:
    result = parse_response(answer(201, 200, 409, 429, 503, 400, 403, 404), 8)
    assert (result.delivered, result.duplicates) == (2, 1)
    retryable = {f.status: f.retryable for f in result.failures}
    assert retryable == {429: True, 503: True, 400: False, 403: True, 404: False}
    mapping = next(f for f in result.failures if f.status == 400)
    assert (mapping.index, mapping.error_type, mapping.reason) == (5, "mapper_parsing_exception", "reason 400")


def test_errors_false_means_everything_was_stored() -> None:
    assert parse_response(answer(201, 201, errors=False), 2).delivered == 2


@pytest.mark.parametrize("sent", [1, 2, 2000])
def test_the_compact_all_created_answer_is_read_without_parsing_and_means_the_same(sent: int) -> None:
    compact = json.dumps({"errors": False, "items": [{"create": {"status": 201}}] * sent}, separators=(",", ":"))
    assert compact.encode() == all_created(sent)
    assert parse_response(all_created(sent), sent).delivered == sent
    with pytest.raises(SinkUnavailableError):
        parse_response(all_created(sent), sent + 1)  # one answer short: still refused


@pytest.mark.parametrize("body", [b"not json", b"[]", answer(201), b'{"items": [{}, {}]}'])
def test_an_unreadable_or_mismatched_answer_means_retry_everything(body: bytes) -> None:
    with pytest.raises(SinkUnavailableError) as caught:
        parse_response(body, 2)
    assert caught.value.reason == "invalid_response"


@pytest.mark.parametrize(
    ("status", "reason"),
    [(429, "rate_limited"), (503, "server_error"), (502, "server_error"), (401, "unauthorized"), (404, "http_404")],
)
def test_whole_request_failures_are_retried(status: int, reason: str) -> None:
    with pytest.raises(SinkUnavailableError) as caught:
        check_status(status, b'{"error": {"type": "x", "reason": "y"}, "status": 0}', "7")
    assert caught.value.reason == reason
    assert caught.value.retry_after == 7.0


NGINX_502 = b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center>nginx</center></body></html>"
NGINX_413 = b"<html><head><title>413 Request Entity Too Large</title></head><body>nginx</body></html>"


@pytest.mark.parametrize(
    ("status", "body", "reason", "detail"),
    [
        (502, NGINX_502, "server_error", "HTTP 502: HTML page: 502 Bad Gateway"),
        (401, b'{"error": {"type": "security_exception", "reason": "unable to authenticate"}}', "unauthorized", ""),
        (
            403,
            b'{"error": {"type": "security_exception", "reason": "action [indices:data/write/bulk] is unauthorized"}}',
            "unauthorized",
            "",
        ),
        (
            403,
            b'{"error": {"type": "cluster_block_exception", "reason": "index [x] blocked by: [FORBIDDEN/8/...];"}}',
            "cluster_block",
            "",
        ),
        (
            503,
            b"upstream connect error or disconnect/reset before headers",
            "server_error",
            "HTTP 503: upstream connect",
        ),
    ],
)
def test_an_unavailable_sink_is_told_apart_by_status_and_body(
    status: int, body: bytes, reason: str, detail: str
) -> None:
    with pytest.raises(SinkUnavailableError) as caught:
        check_status(status, body, None)
    assert caught.value.reason == reason
    assert caught.value.detail.startswith(detail)


def test_a_proxy_413_page_is_a_request_to_split() -> None:
    with pytest.raises(PayloadRejectedError) as caught:
        check_status(413, NGINX_413, None)
    assert caught.value.detail == "HTML page: 413 Request Entity Too Large"


@pytest.mark.parametrize("status", [400, 413])
def test_content_rejections_are_split_not_retried_as_is(status: int) -> None:
    with pytest.raises(PayloadRejectedError):
        check_status(status, b"{}", None)
    check_status(200, b"{}", None)


def test_retry_reason_of_items() -> None:
    assert retry_reason(429) == "rate_limited"
    assert retry_reason(500) == "server_error"
    assert retry_reason(403, "cluster_block_exception") == "cluster_block"
    assert retry_reason(403, "security_exception") is None
    assert retry_reason(400, "mapper_parsing_exception") is None


def test_index_names_follow_the_documents_timestamp_in_utc() -> None:
    namer = IndexNamer("logs-app-%Y.%m.%d")
    assert namer("2026-01-02T03:04:05.678Z") == "logs-app-2026.01.02"
    assert namer("2026-01-02T23:30:00-02:00") == "logs-app-2026.01.03"
    assert namer("2026-01-02T03:59:59+00:00") == "logs-app-2026.01.02"
    assert namer("2026-01-02T03:04:05.678Z") == "logs-app-2026.01.02"  # cached
    fixed = IndexNamer("logs-app-%Y", now=lambda: __import__("datetime").datetime(2030, 1, 1))
    assert fixed("garbage") == "logs-app-2030"
    assert IndexNamer("logs-app")("anything") == "logs-app"


def test_an_unparseable_timestamp_does_not_name_the_index_of_its_hour() -> None:
    namer = IndexNamer("logs-app-%Y.%m.%d", now=lambda: __import__("datetime").datetime(2030, 1, 1))
    assert namer("2026-01-02T03:xx:yyZ") == "logs-app-2030.01.01"
    assert namer("2026-01-02T03:04:05Z") == "logs-app-2026.01.02"


TIMESTAMPS = st.builds(
    lambda day, hour, rest, suffix: f"2026-01-{day:02d}T{hour:02d}{rest}{suffix}",
    st.integers(1, 2),
    st.sampled_from([0, 23]),
    st.sampled_from([":04:05", ":59:59.999", ":xx", ""]),
    st.sampled_from(["Z", "+00:00", "+01:00", "-02:00", ""]),
)


@settings(max_examples=200, deadline=None)
@given(
    pattern=st.sampled_from(["logs-%Y.%m.%d", "logs-%Y.%m", "logs-%Y.%m.%d.%H", "logs-%H%M"]),
    stamps=st.lists(TIMESTAMPS),
)
def test_the_framing_names_each_documents_index_as_the_encoder_does(pattern: str, stamps: list[str]) -> None:
    now = __import__("datetime").datetime(2030, 1, 1)
    framing = BulkFraming(IndexNamer(pattern, now=lambda: now), "key")
    namer = IndexNamer(pattern, now=lambda: now)
    for stamp in stamps:
        assert framing.head(stamp) == action_head(namer(stamp)) + b"key.", stamp


def test_the_action_is_create_with_the_id() -> None:
    assert json.loads(create_action("logs", "abc.1")) == {"create": {"_index": "logs", "_id": "abc.1"}}
