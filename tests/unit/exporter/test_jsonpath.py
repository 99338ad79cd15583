"""The JSONPath subset: keys, indexes, quoted keys, and wildcards that capture the map key they matched."""

from __future__ import annotations

import pytest

from metrics_exporter.jsonpath import JsonPath, JsonPathError

DOCUMENT = {
    "uptime_seconds": 12.5,
    "config": {"version": "abc", "reloads_total": {"ok": 2, "refused": 1}},
    "workers": {"101": {"requests_in_flight": 1}, "102": {"requests_in_flight": 0}},
    "list": [{"v": 1}, {"v": 2}],
    "odd key.with dots": 7,
}


@pytest.mark.parametrize(
    ("path", "found"),
    [
        ("$", [((), DOCUMENT)]),
        ("$.uptime_seconds", [((), 12.5)]),
        ("$.config.version", [((), "abc")]),
        ("$.config.reloads_total.*", [(("ok",), 2), (("refused",), 1)]),
        ("$.workers.*.requests_in_flight", [(("101",), 1), (("102",), 0)]),
        ("$.workers[*].requests_in_flight", [(("101",), 1), (("102",), 0)]),
        ("$.list[1].v", [((), 2)]),
        ("$.list[-1].v", [((), 2)]),
        ("$.list.*.v", [(("0",), 1), (("1",), 2)]),
        ("$['odd key.with dots']", [((), 7)]),
        ('$["config"]["version"]', [((), "abc")]),
        ("$.missing", []),
        ("$.list[5]", []),
        ("$.uptime_seconds.*", []),
        ("$.config.version.deeper", []),
    ],
)
def test_find(path: str, found: list[tuple[tuple[str, ...], object]]) -> None:
    assert [(m.captures, m.value) for m in JsonPath.parse(path).find(DOCUMENT)] == found


def test_wildcards_are_counted_for_template_checks() -> None:
    assert JsonPath.parse("$.a.*.b[*]").wildcards == 2


@pytest.mark.parametrize("path", ["", "a.b", "$.", "$..a", "$[", "$['unterminated]", "$.a[x]"])
def test_invalid_paths(path: str) -> None:
    with pytest.raises(JsonPathError):
        JsonPath.parse(path)
