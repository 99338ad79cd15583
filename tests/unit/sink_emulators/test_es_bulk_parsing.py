"""NDJSON parsing, index-name rules and ``filter_path``, checked directly (no HTTP)."""

from __future__ import annotations

import json

import pytest

from sink_emulators.elasticsearch.bulk import BulkOutcome, BulkRequestError, ItemResult, parse_bulk
from sink_emulators.elasticsearch.filter_path import apply_filter_path, parse_filter_path
from sink_emulators.elasticsearch.index_names import index_name_problem, matches_selector, resolve_expression


def test_crlf_line_ends_and_blank_lines_are_tolerated() -> None:
    body = b'{"create":{"_index":"a","_id":"1"}}\r\n{"x":1}\r\n\n{"delete":{"_index":"a","_id":"2"}}\n'

    items = parse_bulk(body, None)

    assert [(item.action, item.doc_id, item.line, item.doc) for item in items] == [
        ("create", "1", 1, {"x": 1}),
        ("delete", "2", 4, None),
    ]


def test_two_values_on_a_source_line_fail_that_item_not_the_request() -> None:
    body = b'{"create":{"_index":"a","_id":"1"}}\n{"x":1},{"y":2}\n{"create":{"_index":"a","_id":"2"}}\n{"x":2}\n'

    first, second = parse_bulk(body, None)

    assert first.doc is None
    assert first.source_problem is not None
    assert second.doc == {"x": 2}


def test_an_action_without_its_source_line_refuses_the_request() -> None:
    with pytest.raises(BulkRequestError) as caught:
        parse_bulk(b'{"create":{"_index":"a","_id":"1"}}\n', None)

    assert caught.value.status == 400
    assert "Malformed action/metadata line [1]" in str(caught.value)


def test_numeric_ids_become_strings_and_overlong_ids_are_refused() -> None:
    assert parse_bulk(b'{"index":{"_index":"a","_id":7}}\n{}\n', None)[0].doc_id == "7"
    with pytest.raises(BulkRequestError, match="is too long, must be no longer than 512 bytes"):
        parse_bulk(b'{"index":{"_index":"a","_id":"' + b"x" * 513 + b'"}}\n{}\n', None)


@pytest.mark.parametrize("name", ["logs", "logs-2026.01.01", ".hidden", "a" * 255, "logs_app", "λογ"])
def test_valid_index_names(name: str) -> None:
    assert index_name_problem(name) is None


@pytest.mark.parametrize("name", ["", "Logs", "_x", "-x", "+x", "a/b", "a*", "a?", "a,b", "a:b", "a#b", ".", "a" * 256])
def test_invalid_index_names(name: str) -> None:
    assert index_name_problem(name) is not None


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        (None, True),
        ("logs", True),
        ("logs-app", True),
        ("web", False),
        ("*-2026.01.01", True),
        ("logs-*-x", False),
        ("web,logs-app-2026", True),
    ],
)
def test_the_emulator_selector_is_a_prefix_or_a_glob(selector: str | None, expected: bool) -> None:
    assert matches_selector("logs-app-2026.01.01", selector) is expected


def test_search_expressions_resolve_like_elasticsearch() -> None:
    existing = ["logs-a", "logs-b", "web"]

    assert resolve_expression("logs-*", existing) == (["logs-a", "logs-b"], [])
    assert resolve_expression("web,missing", existing) == (["web"], ["missing"])
    assert resolve_expression("_all", existing) == (["logs-a", "logs-b", "web"], [])
    assert resolve_expression("logs", existing) == ([], ["logs"])  # no prefix matching in the real API


RESPONSE = {
    "took": 3,
    "errors": True,
    "items": [
        {"create": {"_id": "1", "status": 201, "result": "created"}},
        {"create": {"_id": "2", "status": 409, "error": {"type": "version_conflict_engine_exception", "reason": "r"}}},
    ],
}


@pytest.mark.parametrize(
    ("filter_path", "expected"),
    [
        ("errors", {"errors": True}),
        ("items.*.error", {"items": [{"create": {"error": RESPONSE["items"][1]["create"]["error"]}}]}),  # type: ignore[index]
        ("items.*.error.type", {"items": [{"create": {"error": {"type": "version_conflict_engine_exception"}}}]}),
        ("took,items.*._id", {"took": 3, "items": [{"create": {"_id": "1"}}, {"create": {"_id": "2"}}]}),
        ("**.reason", {"items": [{"create": {"error": {"reason": "r"}}}]}),
        ("nothing", {}),
    ],
)
def test_filter_path(filter_path: str, expected: dict[str, object]) -> None:
    assert apply_filter_path(RESPONSE, parse_filter_path(filter_path)) == expected


@pytest.mark.parametrize(
    "filter_path",
    ["errors,items.*.status,items.*.error", "items.*.error.type", "items.create._id,took", "**.status", "items.*", "x"],
)
def test_the_fast_bulk_filter_agrees_with_the_generic_one(filter_path: str) -> None:
    results = [ItemResult("create", "logs", str(n), 201, "created", 1, n) for n in range(5)]
    results.append(ItemResult("create", "logs", "0", 409, error={"type": "version_conflict_engine_exception"}))
    results.append(ItemResult("update", "logs", "9", 200, "noop", 3, 4))
    outcome = BulkOutcome(results, took=2, item_errors=1)

    paths = parse_filter_path(filter_path)

    assert outcome.filtered(paths) == apply_filter_path(outcome.body(), parse_filter_path(filter_path))


def test_the_fast_renderer_writes_the_same_json_as_the_objects() -> None:
    results = [
        ItemResult("create", "logs", 'id "quoted" ünïcode', 201, "created", 1, 0),
        ItemResult("index", "logs", "2", 200, "updated", 2, 1),
        ItemResult("update", "logs", "3", 200, "noop", 1, 2),
        ItemResult("create", "logs", "4", 429, error={"type": "es_rejected_execution_exception", "reason": "busy"}),
    ]
    outcome = BulkOutcome(results, took=5, item_errors=1)

    assert json.loads(outcome.render()) == outcome.body()
