"""The emulator's HTTP side: request-level errors, bodies, keep-alive, auth and the other endpoints."""

from __future__ import annotations

import base64
import gzip
import http.client
import json
import socket
from collections.abc import Iterator

import pytest
import requests

from sink_emulators.elasticsearch import BulkEmulator
from tests.unit.sink_emulators.es_client import NDJSON, EsClient, create, ndjson


def _reason(response: requests.Response) -> str:
    body = response.json()
    assert body["status"] == response.status_code
    assert body["error"]["root_cause"][0]["reason"] == body["error"]["reason"]
    return str(body["error"]["reason"])


# Whole-request refusals: nothing in the request is applied.


def test_a_body_without_a_final_newline_is_refused(client: EsClient, es: BulkEmulator) -> None:
    response = client.bulk(ndjson(*create("1", {"a": 1})).rstrip(b"\n"))

    assert response.status_code == 400
    assert response.json()["error"]["type"] == "illegal_argument_exception"
    assert _reason(response) == "The bulk request must be terminated by a newline [\\n]"
    assert es.count() == 0


@pytest.mark.parametrize(
    ("action_line", "error_type", "reason"),
    [
        ("{not json", "x_content_parse_exception", "[3:"),
        ('"create"', "illegal_argument_exception", "Malformed action/metadata line [3], expected START_OBJECT"),
        ('{"upsert": {"_id": "1"}}', "illegal_argument_exception", "expected field [create], [delete], [index] or"),
        (
            '{"create": {"_id": "1", "_type": "doc"}}',
            "illegal_argument_exception",
            "contains an unknown parameter [_type]",
        ),
        ('{"create": {}, "index": {}}', "illegal_argument_exception", "expected END_OBJECT but found [FIELD_NAME]"),
    ],
)
def test_a_malformed_action_line_refuses_the_whole_request(
    client: EsClient, es: BulkEmulator, action_line: str, error_type: str, reason: str
) -> None:
    response = client.bulk(ndjson(*create("1", {"a": 1}), action_line, {"b": 2}))

    assert response.status_code == 400
    assert response.json()["error"]["type"] == error_type
    assert reason in _reason(response)
    assert es.count() == 0


def test_an_action_without_an_index_anywhere_is_a_validation_error(client: EsClient) -> None:
    response = client.bulk(ndjson(*create("1", {"a": 1}, index=None), *create("2", {"a": 2}, index=None)))

    assert response.status_code == 400
    assert response.json()["error"]["type"] == "action_request_validation_exception"
    assert _reason(response) == "Validation Failed: 1: index is missing;2: index is missing;"


@pytest.mark.parametrize("body", [b"", b"\n\n"])
def test_an_empty_bulk_is_refused(client: EsClient, body: bytes) -> None:
    assert client.bulk(body).status_code == 400


def test_a_body_not_declared_as_json_is_refused_with_406(client: EsClient) -> None:
    response = client.bulk(ndjson(*create("1", {"a": 1})), headers={"Content-Type": "text/plain"})

    assert response.status_code == 406
    assert response.json() == {"error": "Content-Type header [text/plain] is not supported", "status": 406}


def test_a_body_over_the_limit_gets_413() -> None:
    with BulkEmulator(max_content_length=1000) as small:
        response = requests.post(small.url + "/_bulk", data=b"x" * 2000, headers=NDJSON, timeout=10)

    assert response.status_code == 413


@pytest.mark.parametrize(
    "head",
    [
        b"Content-Length: many\r\n",
        b"Transfer-Encoding: chunked\r\n\r\nzz\r\n",
    ],
)
def test_an_unreadable_body_framing_gets_400_and_the_connection_closed(es: BulkEmulator, head: bytes) -> None:
    with socket.create_connection(("127.0.0.1", es.port), timeout=10) as sock:
        sock.sendall(b"POST /_bulk HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\n" + head + b"\r\n")
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk

    assert reply.startswith(b"HTTP/1.1 400 ")
    assert b"connection: close" in reply.lower()


def test_a_wrong_method_gets_405_and_an_unknown_path_400(client: EsClient) -> None:
    assert client.get("/_bulk").status_code == 405
    assert client.get("/_bulk").json()["error"].startswith("Incorrect HTTP method for uri [/_bulk] and method [GET]")
    assert client.get("/logs/_doc/1/extra").status_code == 400


# Bodies and connections.


def test_a_gzip_request_body_is_decoded_and_counted_as_sent(client: EsClient, es: BulkEmulator) -> None:
    plain = ndjson(*(line for n in range(50) for line in create(str(n), {"message": "x" * 100})))
    compressed = gzip.compress(plain)

    response = client.bulk(compressed, headers={"Content-Encoding": "gzip"})

    assert response.status_code == 200
    assert es.count() == 50
    assert es.stats().bytes == len(compressed)
    assert es.stats().decoded_bytes == len(plain)


def test_a_corrupt_gzip_body_is_a_400(client: EsClient) -> None:
    response = client.bulk(b"not gzip at all", headers={"Content-Encoding": "gzip"})

    assert response.status_code == 400
    assert "failed to decompress" in _reason(response)


def test_responses_are_gzipped_when_the_client_accepts_it(es: BulkEmulator) -> None:
    body = ndjson(*(line for n in range(50) for line in create(str(n), {"a": n})))
    request = http.client.HTTPConnection("127.0.0.1", es.port, timeout=10)
    request.request("POST", "/_bulk", body, {**NDJSON, "Accept-Encoding": "gzip"})
    response = request.getresponse()

    assert response.getheader("Content-Encoding") == "gzip"
    assert response.getheader("X-elastic-product") == "Elasticsearch"
    assert len(json.loads(gzip.decompress(response.read()))["items"]) == 50
    request.close()


def test_a_chunked_request_body_is_read(client: EsClient, es: BulkEmulator) -> None:
    def chunks() -> Iterator[bytes]:
        for n in range(20):
            yield ndjson(*create(str(n), {"n": n}))

    response = client.bulk(chunks())  # type: ignore[arg-type]  # requests streams a generator chunked

    assert response.status_code == 200
    assert es.count() == 20


def test_several_requests_share_one_keep_alive_connection(es: BulkEmulator) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", es.port, timeout=10)
    sockets: list[socket.socket | None] = []
    for n in range(5):
        connection.request("POST", "/_bulk", ndjson(*create(str(n), {"n": n})), NDJSON)
        response = connection.getresponse()
        assert response.status == 200
        response.read()
        assert not response.will_close
        sockets.append(connection.sock)
    connection.close()

    assert len({id(sock) for sock in sockets}) == 1
    assert es.count() == 5


def test_connection_close_is_honoured(es: BulkEmulator) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", es.port, timeout=10)
    connection.request("GET", "/", headers={"Connection": "close"})
    response = connection.getresponse()

    assert response.will_close
    assert response.status == 200
    connection.close()


# Authentication.


@pytest.fixture
def secured() -> Iterator[BulkEmulator]:
    with BulkEmulator(username="elastic", password="s3cret", api_key="a2V5aWQ6c2VjcmV0") as emulator:
        yield emulator


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "missing authentication credentials for REST request [/_bulk]"),
        (
            {"Authorization": "Basic " + base64.b64encode(b"elastic:wrong").decode()},
            "unable to authenticate user [elastic]",
        ),
        ({"Authorization": "ApiKey nope"}, "unable to authenticate with provided credentials"),
        ({"Authorization": "Bearer abc"}, "unable to authenticate with the [Bearer] scheme"),
    ],
)
def test_wrong_or_missing_credentials_get_401_security_exception(
    secured: BulkEmulator, headers: dict[str, str], reason: str
) -> None:
    response = requests.post(
        secured.url + "/_bulk", data=ndjson(*create("1", {"a": 1})), headers={**NDJSON, **headers}, timeout=10
    )

    assert response.status_code == 401
    assert response.json()["error"]["type"] == "security_exception"
    assert reason in _reason(response)
    assert 'Basic realm="security"' in response.headers["WWW-Authenticate"]
    assert secured.count() == 0


@pytest.mark.parametrize(
    "authorization",
    [
        "Basic " + base64.b64encode(b"elastic:s3cret").decode(),
        "ApiKey a2V5aWQ6c2VjcmV0",  # the encoded key, as configured
        "ApiKey " + base64.b64encode(b"a2V5aWQ6c2VjcmV0").decode(),  # base64 of the configured id:key form
    ],
)
def test_right_credentials_are_accepted(secured: BulkEmulator, authorization: str) -> None:
    response = requests.post(
        secured.url + "/_bulk",
        data=ndjson(*create("1", {"a": 1})),
        headers={**NDJSON, "Authorization": authorization},
        timeout=10,
    )

    assert response.status_code == 200
    assert secured.count() == 1


def test_control_endpoints_need_no_credentials(secured: BulkEmulator) -> None:
    assert requests.get(secured.url + "/_emulator/stats", timeout=10).status_code == 200


# The other Elasticsearch endpoints.


def test_root_reports_an_elasticsearch_8_node(client: EsClient) -> None:
    response = client.get("/")

    assert response.json()["version"]["number"].startswith("8.")
    assert response.json()["tagline"] == "You Know, for Search"
    assert response.headers["X-elastic-product"] == "Elasticsearch"
    assert client.request("HEAD", "/").status_code == 200


def test_health_endpoints_report_green(client: EsClient) -> None:
    assert client.get("/_cluster/health").json()["status"] == "green"
    assert " green " in client.get("/_cat/health").text
    assert client.get("/_cat/health?format=json").json()[0]["status"] == "green"


def test_count_and_search_see_stored_documents(client: EsClient) -> None:
    client.bulk(ndjson(*(line for n in range(15) for line in create(str(n), {"n": n}, "logs-2026.01.01"))))

    assert client.get("/logs-*/_count").json()["count"] == 15
    assert client.request("POST", "/logs-2026.01.01/_count", json={"query": {"match_all": {}}}).json()["count"] == 15
    hits = client.request("POST", "/logs-*/_search", json={"query": {"match_all": {}}, "size": 20}).json()["hits"]
    assert hits["total"] == {"value": 15, "relation": "eq"}
    assert sorted(hit["_source"]["n"] for hit in hits["hits"]) == list(range(15))
    assert len(client.get("/logs-*/_search").json()["hits"]["hits"]) == 10  # the default size
    assert client.get("/missing/_count").status_code == 404
    assert client.get("/missing/_count").json()["error"]["type"] == "index_not_found_exception"
    assert client.get("/nothing-*/_count").json()["count"] == 0


def test_search_refuses_queries_it_cannot_run(client: EsClient) -> None:
    client.bulk(ndjson(*create("1", {"n": 1})))

    response = client.request("POST", "/logs/_search", json={"query": {"term": {"n": 1}}})

    assert response.status_code == 400


def test_put_and_head_index(client: EsClient) -> None:
    assert client.request("HEAD", "/app-logs").status_code == 404
    created = client.request("PUT", "/app-logs")
    again = client.request("PUT", "/app-logs")

    assert created.json() == {"acknowledged": True, "shards_acknowledged": True, "index": "app-logs"}
    assert again.status_code == 400
    assert again.json()["error"]["type"] == "resource_already_exists_exception"
    assert client.request("HEAD", "/app-logs").status_code == 200
    assert client.request("PUT", "/App-Logs").json()["error"]["type"] == "invalid_index_name_exception"


def test_index_templates_are_stored(client: EsClient) -> None:
    template = {"index_patterns": ["app-*"], "template": {"settings": {"number_of_shards": 1}}}

    assert client.request("PUT", "/_index_template/app", json=template).json() == {"acknowledged": True}
    assert client.get("/_index_template/app").json()["index_templates"][0]["index_template"] == template
    assert client.request("PUT", "/_index_template/bad", json={}).status_code == 400


# Control endpoints (what a container-based test uses instead of the Python API).


def test_control_docs_filters_by_prefix_or_glob(client: EsClient) -> None:
    client.bulk(ndjson(*create("a", {"v": 1}, "app-2026.01.01"), *create("b", {"v": 2}, "web-2026.01.01")))

    assert client.get("/_emulator/docs").json() == {"count": 2, "docs": {"a": {"v": 1}, "b": {"v": 2}}}
    assert client.get("/_emulator/docs?index=app").json() == {"count": 1, "docs": {"a": {"v": 1}}}
    assert client.get("/_emulator/docs?index=*-2026.01.01").json()["count"] == 2


def test_control_faults_set_read_and_clear(client: EsClient, es: BulkEmulator) -> None:
    set_response = client.request("POST", "/_emulator/faults", json={"request_status": 429, "request_status_count": 1})

    assert set_response.json()["faults"]["request_status"] == 429
    assert es.faults.request_status == 429
    assert client.bulk(ndjson(*create("1", {"a": 1}))).status_code == 429
    assert client.bulk(ndjson(*create("1", {"a": 1}))).status_code == 200
    assert client.request("DELETE", "/_emulator/faults").json()["faults"]["request_status"] is None
    assert client.get("/_emulator/faults").json()["faults"]["item_status_rate"] == {}


def test_control_faults_refuse_bad_input_naming_the_field(client: EsClient, es: BulkEmulator) -> None:
    response = client.request("POST", "/_emulator/faults", json={"item_status_rate": {"429": 2}})

    assert response.status_code == 400
    assert response.json()["field"] == "item_status_rate['429']"
    assert es.faults.item_status_rate == {}


def test_control_stats_and_reset(client: EsClient, es: BulkEmulator) -> None:
    body = ndjson(*create("1", {"a": 1}), *create("1", {"a": 1}))
    client.bulk(body)

    stats = client.get("/_emulator/stats").json()
    assert stats["bulk_requests"] == 1
    assert stats["items"] == 2
    assert stats["item_errors"] == 1
    assert stats["bytes"] == len(body)
    assert stats["item_statuses"] == {"201": 1, "409": 1}
    assert stats["documents"] == 1
    assert len(es.requests()) == 1
    assert es.requests()[0].items == 2

    assert client.request("POST", "/_emulator/reset").json() == {"reset": True}
    assert es.count() == 0
    assert es.bulk_requests == 0
    assert es.index_names() == []
