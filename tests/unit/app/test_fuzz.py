"""No client input produces a 5xx, except the ones a client explicitly asks /api/work for."""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.test import TestResponse

from demo_app import Settings, SharedDir, create_app
from tests.unit.app.doubles import APP_YAML, FakeSleep, RecordingStatsd, control_client, publish

KNOWN_PATHS = [
    "/api/greeting",
    "/api/orders",
    "/api/work",
    "/api/config",
    "/stats",
    "/livez",
    "/readyz",
    "/-/reload",
    "/api/",
    "/",
]
METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE", "BREW", "get"]
CONTENT_TYPES = [None, "application/json", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]

paths = st.one_of(
    st.sampled_from(KNOWN_PATHS),
    st.builds(lambda base, tail: base + tail, st.sampled_from(KNOWN_PATHS), st.text(max_size=30)),
    st.text(max_size=60).map(lambda text: "/" + text),
)
query_values = st.one_of(
    st.integers(min_value=-(10**20), max_value=10**20).map(str),
    st.integers(min_value=0, max_value=700).map(str),
    st.from_regex(r"[-+ 0-9]{1,8}", fullmatch=True),
    st.text(max_size=20),
)
# What a sloppy client sends for a number: stray signs and blanks around digits ("--5", "+7", "5-").
almost_integers = st.builds(
    lambda prefix, digits, suffix: prefix + digits + suffix,
    st.sampled_from(["", "-", "--", "+", " -", "-+", "- "]),
    st.from_regex(r"[0-9]{1,5}", fullmatch=True),
    st.sampled_from(["", "-", " ", "+", ".0"]),
)
queries = st.dictionaries(st.sampled_from(["ms", "status", "x", "", "ms[]"]), query_values, max_size=3)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
orders = st.fixed_dictionaries(
    {},
    optional={
        "item": st.one_of(st.text(max_size=120), json_values),
        "quantity": st.one_of(st.integers(min_value=-5, max_value=2000), json_values),
        "note": json_values,
    },
)
bodies = st.one_of(
    st.binary(max_size=300),
    json_values.map(lambda value: json.dumps(value).encode()),
    orders.map(lambda value: json.dumps(value).encode()),
    st.sampled_from([b"{" * 5000, b"[" * 100_000, b'{"item": "x", "quantity": 1e999}', b"\xef\xbb\xbf{}"]),
)


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    directory = tmp_path_factory.mktemp("fuzz-config")
    publish(directory, {"app.yaml": APP_YAML})
    shared = SharedDir.create(tmp_path_factory.mktemp("fuzz-shared"))
    app = create_app(
        Settings(config_dir=directory, log_file=None, statsd_host=""),
        shared,
        statsd=RecordingStatsd(),
        sleep=FakeSleep(),
    )
    yield app
    shared.remove()


def send(
    app: Flask, method: str, path: str, query: dict[str, str], body: bytes, content_type: str | None
) -> TestResponse:
    separator = "&" if "?" in path else "?"
    url = path + (separator + urlencode(query) if query else "")
    headers = {"Content-Type": content_type} if content_type else {}
    # Through the control port, where every path is served, /-/reload too.
    return control_client(app).open(url, method=method, data=body, headers=headers)


def check(response: TestResponse, method: str, path: str, query: dict[str, str]) -> None:
    """5xx only when /api/work was asked for exactly that status; every error is the JSON error shape."""
    if response.status_code >= 500:
        status = query.get("status", "").strip()
        asked = path == "/api/work" and status.isdigit() and int(status) == response.status_code
        assert asked, (response.status_code, response.data[:300])
    if response.status_code >= 400 and method.upper() != "HEAD":
        assert response.is_json, response.data[:300]
        payload = response.get_json()
        assert isinstance(payload, dict)
        assert {"error", "detail"} <= set(payload)


FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(
    method=st.sampled_from(METHODS),
    path=paths,
    query=queries,
    body=bodies,
    content_type=st.sampled_from(CONTENT_TYPES),
)
def test_any_request_gets_no_unrequested_server_error(
    fuzz_app: Flask, method: str, path: str, query: dict[str, str], body: bytes, content_type: str | None
) -> None:
    check(send(fuzz_app, method, path, query, body, content_type), method, path, query)


@FUZZ
@given(path=st.sampled_from(KNOWN_PATHS), query=queries)
def test_query_strings_on_get_endpoints_get_no_unrequested_server_error(
    fuzz_app: Flask, path: str, query: dict[str, str]
) -> None:
    check(send(fuzz_app, "GET", path, query, b"", None), "GET", path, query)


@FUZZ
@given(path=st.sampled_from(["/api/orders", "/-/reload"]), body=bodies, content_type=st.sampled_from(CONTENT_TYPES))
def test_bodies_on_post_endpoints_get_no_unrequested_server_error(
    fuzz_app: Flask, path: str, body: bytes, content_type: str | None
) -> None:
    check(send(fuzz_app, "POST", path, {}, body, content_type), "POST", path, {})


@FUZZ
@given(ms=almost_integers, status=almost_integers)
def test_almost_integer_parameters_of_work_get_no_unrequested_server_error(
    fuzz_app: Flask, ms: str, status: str
) -> None:
    query = {"ms": ms, "status": status}
    check(send(fuzz_app, "GET", "/api/work", query, b"", None), "GET", "/api/work", query)
