"""The Bulk API's documented per-item contract, driven over real HTTP."""

from __future__ import annotations

import pytest

from sink_emulators.elasticsearch import BulkEmulator
from tests.unit.sink_emulators.es_client import EsClient, create, ndjson


def test_create_stores_documents_and_answers_201_created(client: EsClient, es: BulkEmulator) -> None:
    response = client.bulk(ndjson(*create("a", {"n": 1}), *create("b", {"n": 2})))

    assert response.status_code == 200
    body = response.json()
    assert body["errors"] is False
    assert isinstance(body["took"], int)
    first = body["items"][0]["create"]
    assert first["_index"] == "logs"
    assert first["_id"] == "a"
    assert first["status"] == 201
    assert first["result"] == "created"
    assert first["_version"] == 1
    assert first["_shards"]["failed"] == 0
    assert [item["create"]["_seq_no"] for item in body["items"]] == [0, 1]
    assert es.documents("logs") == {"a": {"n": 1}, "b": {"n": 2}}


def test_create_of_a_known_id_is_a_409_version_conflict_and_keeps_the_first(client: EsClient, es: BulkEmulator) -> None:
    client.bulk(ndjson(*create("dup", {"v": "first"})))

    body = client.bulk(ndjson(*create("dup", {"v": "second"}), *create("new", {"v": 1}))).json()

    assert body["errors"] is True
    conflict = body["items"][0]["create"]
    assert conflict["status"] == 409
    assert conflict["_id"] == "dup"
    assert conflict["error"]["type"] == "version_conflict_engine_exception"
    assert conflict["error"]["reason"] == "[dup]: version conflict, document already exists (current version [1])"
    assert conflict["error"]["index"] == "logs"
    assert "result" not in conflict
    assert body["items"][1]["create"]["status"] == 201
    assert es.documents("logs")["dup"] == {"v": "first"}


def test_the_same_id_in_another_index_is_not_a_conflict(client: EsClient, es: BulkEmulator) -> None:
    body = client.bulk(ndjson(*create("x", {"i": 1}, "logs-a"), *create("x", {"i": 2}, "logs-b"))).json()

    assert body["errors"] is False
    assert es.count("logs-a") == 1
    assert es.count("logs-b") == 1


def test_index_replaces_and_bumps_the_version(client: EsClient, es: BulkEmulator) -> None:
    first = client.bulk(ndjson({"index": {"_index": "logs", "_id": "1"}}, {"v": 1})).json()["items"][0]["index"]
    second = client.bulk(ndjson({"index": {"_index": "logs", "_id": "1"}}, {"v": 2})).json()["items"][0]["index"]

    assert (first["status"], first["result"], first["_version"]) == (201, "created", 1)
    assert (second["status"], second["result"], second["_version"]) == (200, "updated", 2)
    assert es.documents() == {"1": {"v": 2}}


def test_index_without_id_gets_a_generated_id(client: EsClient, es: BulkEmulator) -> None:
    body = client.bulk(ndjson({"index": {"_index": "logs"}}, {"m": 1}, {"index": {"_index": "logs"}}, {"m": 2})).json()

    ids = [item["index"]["_id"] for item in body["items"]]
    assert len(set(ids)) == 2
    assert all(len(doc_id) == 20 for doc_id in ids)
    assert set(es.documents("logs")) == set(ids)


def test_index_from_the_url_applies_when_the_action_names_none(client: EsClient, es: BulkEmulator) -> None:
    body = client.bulk(ndjson(*create("u", {"a": 1}, index=None), *create("w", {"a": 2}, "other")), "/fromurl/_bulk")

    assert [item["create"]["_index"] for item in body.json()["items"]] == ["fromurl", "other"]
    assert es.index_names() == ["fromurl", "other"]


@pytest.mark.parametrize(
    ("index", "reason"),
    [
        ("Logs", "must be lowercase"),
        ("_logs", "must not start with '_', '-', or '+'"),
        ("-logs", "must not start with '_', '-', or '+'"),
        ("+logs", "must not start with '_', '-', or '+'"),
        ("lo gs", "must not contain the following characters"),
        ("logs#1", "must not contain '#'"),
        ("..", "must not be '.' or '..'"),
    ],
)
def test_an_invalid_index_name_fails_that_item_only(
    client: EsClient, es: BulkEmulator, index: str, reason: str
) -> None:
    body = client.bulk(ndjson(*create("bad", {"a": 1}, index), *create("good", {"a": 2}))).json()

    assert body["errors"] is True
    failed = body["items"][0]["create"]
    assert failed["status"] == 400
    assert failed["error"]["type"] == "invalid_index_name_exception"
    assert failed["error"]["reason"].startswith(f"Invalid index name [{index}], {reason}")
    assert body["items"][1]["create"]["status"] == 201
    assert es.index_names() == ["logs"]


def test_a_source_that_is_not_json_fails_that_item_with_a_400(client: EsClient, es: BulkEmulator) -> None:
    body = client.bulk(ndjson({"create": {"_index": "logs", "_id": "1"}}, "{not json", *create("2", {"ok": True})))

    items = body.json()["items"]
    assert items[0]["create"]["status"] == 400
    assert items[0]["create"]["error"]["type"] == "mapper_parsing_exception"
    assert items[0]["create"]["error"]["caused_by"]["type"] == "json_parse_exception"
    assert items[1]["create"]["status"] == 201
    assert set(es.documents()) == {"2"}


def test_a_source_that_is_not_an_object_fails_that_item(client: EsClient, es: BulkEmulator) -> None:
    body = client.bulk(ndjson({"create": {"_index": "logs", "_id": "1"}}, "[1, 2]")).json()

    assert body["items"][0]["create"]["status"] == 400
    assert es.count() == 0


def test_update_merges_partial_documents_and_upserts(client: EsClient, es: BulkEmulator) -> None:
    client.bulk(ndjson(*create("1", {"a": 1, "nested": {"x": 1, "y": 1}})))

    body = client.bulk(
        ndjson(
            {"update": {"_index": "logs", "_id": "1"}},
            {"doc": {"b": 2, "nested": {"y": 2}}},
            {"update": {"_index": "logs", "_id": "1"}},
            {"doc": {"b": 2}},
            {"update": {"_index": "logs", "_id": "2"}},
            {"doc": {"c": 3}, "doc_as_upsert": True},
            {"update": {"_index": "logs", "_id": "3"}},
            {"doc": {"d": 4}},
        )
    ).json()

    results = [(item["update"]["status"], item["update"].get("result")) for item in body["items"]]
    assert results == [(200, "updated"), (200, "noop"), (201, "created"), (404, None)]
    assert body["items"][3]["update"]["error"]["type"] == "document_missing_exception"
    assert es.documents() == {"1": {"a": 1, "b": 2, "nested": {"x": 1, "y": 2}}, "2": {"c": 3}}


def test_delete_removes_and_reports_not_found_without_an_error(client: EsClient, es: BulkEmulator) -> None:
    client.bulk(ndjson(*create("1", {"a": 1})))

    body = client.bulk(
        ndjson({"delete": {"_index": "logs", "_id": "1"}}, {"delete": {"_index": "logs", "_id": "1"}})
    ).json()

    results = [(item["delete"]["status"], item["delete"]["result"]) for item in body["items"]]
    assert results == [(200, "deleted"), (404, "not_found")]
    assert body["errors"] is False
    assert es.count() == 0


def test_delete_in_a_missing_index_is_an_error_and_creates_nothing(client: EsClient, es: BulkEmulator) -> None:
    body = client.bulk(ndjson({"delete": {"_index": "nowhere", "_id": "1"}})).json()

    assert body["errors"] is True
    assert body["items"][0]["delete"]["status"] == 404
    assert body["items"][0]["delete"]["error"]["type"] == "index_not_found_exception"
    assert es.index_names() == []


def test_if_seq_no_guards_a_write(client: EsClient, es: BulkEmulator) -> None:
    seq_no = client.bulk(ndjson(*create("1", {"v": 1}))).json()["items"][0]["create"]["_seq_no"]

    stale = {"index": {"_index": "logs", "_id": "1", "if_seq_no": seq_no + 5, "if_primary_term": 1}}
    fresh = {"index": {"_index": "logs", "_id": "1", "if_seq_no": seq_no, "if_primary_term": 1}}
    body = client.bulk(ndjson(stale, {"v": 2}, fresh, {"v": 3})).json()

    assert [item["index"]["status"] for item in body["items"]] == [409, 200]
    assert es.documents() == {"1": {"v": 3}}


def test_data_streams_take_only_create_and_need_a_timestamp(client: EsClient, es: BulkEmulator) -> None:
    template = {"index_patterns": ["logs-app-*"], "data_stream": {}, "priority": 200}
    assert client.request("PUT", "/_index_template/logs-app", json=template).status_code == 200

    body = client.bulk(
        ndjson(
            {"create": {"_index": "logs-app-default", "_id": "1"}},
            {"@timestamp": "2026-01-01T00:00:00Z", "m": 1},
            {"index": {"_index": "logs-app-default", "_id": "2"}},
            {"@timestamp": "2026-01-01T00:00:00Z", "m": 2},
            {"create": {"_index": "logs-app-default", "_id": "3"}},
            {"m": 3},
        )
    ).json()

    created, indexed, untimed = (next(iter(item.values())) for item in body["items"])
    assert created["status"] == 201
    assert created["_index"].startswith(".ds-logs-app-default-")
    assert indexed["status"] == 400
    assert "only write ops with an op_type of create are allowed in data streams" in indexed["error"]["reason"]
    assert untimed["status"] == 400
    assert "[@timestamp] is missing" in untimed["error"]["reason"]
    assert set(es.documents("logs-app-default")) == {"1"}


def test_filter_path_keeps_only_what_was_asked(client: EsClient) -> None:
    client.bulk(ndjson(*create("1", {"a": 1})))

    body = client.bulk(
        ndjson(*create("1", {"a": 1}), *create("2", {"a": 2})), "/_bulk?filter_path=errors,items.*.status"
    ).json()

    assert body == {"errors": True, "items": [{"create": {"status": 409}}, {"create": {"status": 201}}]}
