"""Elasticsearch 8's built-in `logs-*-*` template: `logs-app-<day>` is a data stream, as on a real cluster.

The log sidecar's default ES_INDEX, `logs-app-%Y.%m.%d`, matches the built-in template, so
each day is a data stream with one hidden backing index `.ds-logs-app-<day>-<created>-000001`:
writes are `create` only, `@timestamp` is required, searches use the stream's name, and the
delete index API refuses the name (DELETE /_data_stream/<name> deletes it).
"""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from sink_emulators.elasticsearch import BulkEmulator
from tests.unit.sink_emulators.es_client import EsClient, ndjson

STREAM = "logs-app-2026.11.26"
DOC = {"@timestamp": "2026-11-26T09:53:02.106Z", "message": "hello"}
BACKING = re.compile(r"^\.ds-logs-app-2026\.11\.26-\d{4}\.\d{2}\.\d{2}-000001$")


def ship(
    client: EsClient, action: str, doc_id: str, index: str = STREAM, source: dict[str, Any] = DOC
) -> dict[str, Any]:
    body = client.bulk(ndjson({action: {"_index": index, "_id": doc_id}}, source)).json()
    item: dict[str, Any] = body["items"][0][action]
    return item


def test_a_logs_dash_dash_name_becomes_a_data_stream_with_a_dated_backing_index(client: EsClient) -> None:
    item = ship(client, "create", "a")

    assert item["status"] == 201
    assert BACKING.match(item["_index"]), item["_index"]
    # The backing index carries the day the stream was created (not the document's).
    assert item["_index"].split("-")[-2] == time.strftime("%Y.%m.%d", time.gmtime())
    streams = client.get(f"/_data_stream/{STREAM}").json()["data_streams"]
    assert [(s["name"], s["template"], s["generation"]) for s in streams] == [(STREAM, "logs", 1)]
    assert streams[0]["indices"][0]["index_name"] == item["_index"]
    assert streams[0]["timestamp_field"] == {"name": "@timestamp"}


def test_the_index_op_is_refused_as_elasticsearch_does_for_data_streams(client: EsClient, es: BulkEmulator) -> None:
    ship(client, "create", "a")
    item = ship(client, "index", "b")

    assert item["status"] == 400
    assert item["error"]["type"] == "illegal_argument_exception"
    assert "only write ops with an op_type of create are allowed in data streams" in item["error"]["reason"]
    assert set(es.documents(STREAM)) == {"a"}


def test_a_document_without_timestamp_is_refused(client: EsClient) -> None:
    item = ship(client, "create", "a", source={"message": "no time"})
    assert item["status"] == 400
    assert "[@timestamp] is missing" in item["error"]["reason"]


def test_a_resent_create_is_a_409_in_the_stream_too(client: EsClient) -> None:
    first = ship(client, "create", "a")
    again = ship(client, "create", "a")
    assert again["status"] == 409
    assert again["error"]["type"] == "version_conflict_engine_exception"
    assert again["_index"] == first["_index"]


def test_documents_are_searchable_under_the_stream_name_and_the_backing_index(client: EsClient) -> None:
    backing = ship(client, "create", "a")["_index"]
    ship(client, "create", "b")

    for target in (STREAM, "logs-app*", backing):
        hits = client.get(f"/{target}/_search").json()["hits"]
        assert hits["total"]["value"] == 2, target
        assert {hit["_index"] for hit in hits["hits"]} == {backing}, target
    assert client.get(f"/{STREAM}/_count").json()["count"] == 2


def test_the_delete_index_api_refuses_the_stream_and_delete_data_stream_removes_it(
    client: EsClient, es: BulkEmulator
) -> None:
    ship(client, "create", "a")

    refused = client.request("DELETE", f"/{STREAM}")
    assert refused.status_code == 400
    assert "matches a data stream, specify the corresponding concrete indices instead" in refused.text
    # A wildcard delete of indices does not reach data streams.
    assert client.request("DELETE", "/logs-app-*").status_code == 200
    assert set(es.documents(STREAM)) == {"a"}

    assert client.request("DELETE", f"/_data_stream/{STREAM}").json() == {"acknowledged": True}
    assert es.documents(STREAM) == {}
    assert client.get(f"/_data_stream/{STREAM}").status_code == 404
    assert client.request("DELETE", f"/_data_stream/{STREAM}").status_code == 404


@pytest.mark.parametrize(
    ("name", "is_stream"),
    [
        ("logs-app-2026.11.26", True),
        ("logs-app-default", True),
        ("metrics-app-default", True),
        ("synthetics-app-default", True),
        ("logs-app", False),  # one dash: not logs-*-*
        ("app-logs-2026.11.26", False),
        ("sidecar-bench", False),
    ],
)
def test_which_names_the_built_in_templates_turn_into_data_streams(
    client: EsClient, name: str, is_stream: bool
) -> None:
    item = ship(client, "index", "a", index=name)
    assert (item["status"] == 400) is is_stream, item


def test_built_in_templates_are_there_like_on_a_fresh_cluster_and_come_back_after_reset(
    client: EsClient, es: BulkEmulator
) -> None:
    template = client.get("/_index_template/logs").json()["index_templates"][0]["index_template"]
    assert template["index_patterns"] == ["logs-*-*"]
    assert template["priority"] == 100
    assert template["data_stream"] == {"hidden": False, "allow_custom_routing": False}

    client.request("POST", "/_emulator/reset")
    assert client.get("/_index_template/logs").status_code == 200


def test_a_higher_priority_plain_template_makes_the_name_an_index_again(client: EsClient) -> None:
    plain = {"index_patterns": ["logs-app-*"], "priority": 501}
    assert client.request("PUT", "/_index_template/logs-app", json=plain).status_code == 200

    item = ship(client, "index", "a")

    assert item["status"] == 201
    assert item["_index"] == STREAM
    assert client.get("/_data_stream").json() == {"data_streams": []}


def test_put_data_stream_needs_a_data_stream_template(client: EsClient) -> None:
    assert client.request("PUT", "/_data_stream/logs-app-default").json() == {"acknowledged": True}
    assert client.request("PUT", "/_data_stream/logs-app-default").status_code == 400
    refused = client.request("PUT", "/_data_stream/plain-name")
    assert refused.status_code == 400
    assert "no matching index template found for data stream [plain-name]" in refused.text
