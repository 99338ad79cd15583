"""Injected failures: per-item statuses, poison documents, whole-request statuses, delays, outages."""

from __future__ import annotations

import pytest
import requests

from sink_emulators.elasticsearch import BulkEmulator, Faults, FaultsError
from tests.support import wait_until
from tests.unit.sink_emulators.es_client import EsClient, create, ndjson


def _many(count: int, prefix: str = "d") -> bytes:
    return ndjson(*(line for n in range(count) for line in create(f"{prefix}{n}", {"n": n})))


def _failed_ids(body: dict[str, object], status: int) -> set[str]:
    items = body["items"]
    assert isinstance(items, list)
    return {item["create"]["_id"] for item in items if item["create"]["status"] == status}


def test_per_item_429s_are_rejected_execution_errors_and_not_stored(client: EsClient, es: BulkEmulator) -> None:
    es.set_faults(Faults(item_status_rate={429: 0.2}, seed=7))

    body = client.bulk(_many(200)).json()

    rejected = _failed_ids(body, 429)
    assert 10 < len(rejected) < 80  # about 20% of 200
    assert body["errors"] is True
    sample = next(item["create"] for item in body["items"] if item["create"]["status"] == 429)
    assert sample["error"]["type"] == "es_rejected_execution_exception"
    assert "rejected execution" in sample["error"]["reason"]
    assert set(es.documents("logs")) == {f"d{n}" for n in range(200)} - rejected
    assert es.stats().item_statuses == {201: 200 - len(rejected), 429: len(rejected)}


def test_per_item_failures_repeat_exactly_for_the_same_seed() -> None:
    def run(seed: int) -> set[str]:
        with BulkEmulator() as fresh:
            fresh.set_faults(Faults(item_status_rate={429: 0.1, 503: 0.1}, seed=seed))
            session = EsClient(fresh)
            body = session.bulk(_many(100)).json()
            session.session.close()
            return _failed_ids(body, 429) | {f"503:{i}" for i in _failed_ids(body, 503)}

    assert run(seed=3) == run(seed=3)
    assert run(seed=3) != run(seed=4)


def test_retrying_rejected_items_eventually_stores_every_document(client: EsClient, es: BulkEmulator) -> None:
    es.set_faults(Faults(item_status_rate={429: 0.3}, seed=1))
    pending = {f"d{n}" for n in range(100)}

    for _ in range(30):
        body = client.bulk(ndjson(*(line for doc_id in sorted(pending) for line in create(doc_id, {"id": doc_id}))))
        pending = _failed_ids(body.json(), 429)
        if not pending:
            break

    assert not pending
    assert es.count("logs") == 100


def test_a_503_item_is_an_unavailable_shards_error(client: EsClient, es: BulkEmulator) -> None:
    es.set_faults(Faults(item_status_rate={503: 1.0}))

    item = client.bulk(ndjson(*create("1", {"a": 1}))).json()["items"][0]["create"]

    assert item["status"] == 503
    assert item["error"]["type"] == "unavailable_shards_exception"
    assert es.count() == 0


def test_a_poison_document_gets_a_mapping_error_and_the_rest_is_stored(client: EsClient, es: BulkEmulator) -> None:
    es.set_faults(Faults(poison_field="trap.inner"))
    body = ndjson(*create("ok", {"a": 1}), *create("bad", {"trap": {"inner": 1}}), *create("ok2", {"trap": 1}))

    for _ in range(2):  # a poison document fails on every attempt
        items = client.bulk(body).json()["items"]
        assert items[1]["create"]["status"] == 400
        assert items[1]["create"]["error"]["type"] == "mapper_parsing_exception"
        assert items[1]["create"]["error"]["caused_by"]["type"] == "illegal_argument_exception"

    assert set(es.documents()) == {"ok", "ok2"}


@pytest.mark.parametrize(
    ("status", "error_type"), [(429, "es_rejected_execution_exception"), (503, "cluster_block_exception")]
)
def test_request_status_fails_the_next_n_requests_then_recovers(
    client: EsClient, es: BulkEmulator, status: int, error_type: str
) -> None:
    es.set_faults(Faults(request_status=status, request_status_count=2))
    body = _many(3)

    refused = [client.bulk(body) for _ in range(2)]
    accepted = client.bulk(body)

    for response in refused:
        assert response.status_code == status
        assert response.json()["status"] == status
        assert response.json()["error"]["type"] == error_type
        assert response.json()["error"]["root_cause"][0]["type"] == error_type
    assert accepted.status_code == 200
    assert es.count() == 3
    assert es.bulk_requests == 3
    assert es.stats().rejected_requests == 2


def test_request_status_without_a_count_lasts_until_cleared(client: EsClient, es: BulkEmulator) -> None:
    es.set_faults(Faults(request_status=503))

    assert [client.bulk(_many(1)).status_code for _ in range(4)] == [503] * 4
    es.clear_faults()
    assert client.bulk(_many(1)).status_code == 200


def test_a_proxy_answers_request_status_with_an_html_page(client: EsClient, es: BulkEmulator) -> None:
    es.set_faults(Faults(request_status=502, request_status_html=True, request_status_count=1))

    refused = client.bulk(_many(2))
    accepted = client.bulk(_many(2))

    assert refused.status_code == 502
    assert refused.headers["content-type"].startswith("text/html")
    assert "<title>502 Bad Gateway</title>" in refused.text
    assert "X-elastic-product" not in refused.headers, "a proxy's page, not Elasticsearch's answer"
    assert accepted.headers["X-elastic-product"] == "Elasticsearch"
    assert es.count() == 2


def test_retry_after_goes_with_the_request_status_answers(client: EsClient, es: BulkEmulator) -> None:
    es.set_faults(Faults(request_status=429, retry_after_seconds=7, request_status_count=1))

    refused = client.bulk(_many(1))

    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "7"
    assert "Retry-After" not in client.bulk(_many(1)).headers


def test_a_dropped_response_stores_the_documents_and_hangs_up(client: EsClient, es: BulkEmulator) -> None:
    es.set_faults(Faults(drop_response=True, drop_response_count=1))

    with pytest.raises(requests.exceptions.ConnectionError):
        client.bulk(_many(3))
    assert es.count() == 3, "stored before the answer was lost"
    again = client.bulk(_many(3)).json()

    assert [item["create"]["status"] for item in again["items"]] == [409] * 3
    assert es.stats().dropped_responses == 1


def test_a_proxy_refuses_bodies_over_max_body_bytes_with_an_html_413(client: EsClient, es: BulkEmulator) -> None:
    small = _many(1)
    es.set_faults(Faults(max_body_bytes=len(small)))

    refused = client.bulk(_many(5))
    accepted = client.bulk(small)

    assert refused.status_code == 413
    assert "<title>413 Request Entity Too Large</title>" in refused.text
    assert accepted.status_code == 200
    assert es.count() == 1
    assert es.bulk_requests == 1, "Elasticsearch never saw the refused request"


def test_a_delayed_response_still_stores_the_documents(client: EsClient, es: BulkEmulator) -> None:
    es.set_faults(Faults(delay_seconds=5))

    with pytest.raises(requests.exceptions.Timeout):
        client.bulk(_many(2), timeout=0.5)

    wait_until(lambda: es.count() == 2, timeout=10, message="the timed-out request's documents")
    es.clear_faults()
    assert client.bulk(_many(2)).json()["items"][0]["create"]["status"] == 409


def test_down_hangs_up_on_every_request_until_cleared(client: EsClient, es: BulkEmulator) -> None:
    assert client.get("/").status_code == 200  # a keep-alive connection is open
    es.set_faults(Faults(down=True))

    for _ in range(2):
        with pytest.raises(requests.exceptions.ConnectionError):
            client.bulk(_many(1))
    with pytest.raises(requests.exceptions.ConnectionError):
        client.get("/")
    assert client.get("/_emulator/faults").json()["faults"]["down"] is True  # control stays reachable

    es.clear_faults()
    assert client.bulk(_many(1)).status_code == 200
    assert es.count() == 1


def test_stop_refuses_connections_and_start_comes_back_on_the_same_port_with_the_data(
    client: EsClient, es: BulkEmulator
) -> None:
    client.bulk(_many(2))
    port = es.port

    es.stop()
    with pytest.raises(requests.exceptions.ConnectionError):
        client.bulk(_many(1, prefix="late"))
    es.start()

    assert es.port == port
    assert client.bulk(_many(1, prefix="late")).status_code == 200
    assert es.count() == 3


def test_stop_does_not_wait_for_an_injected_delay(es: BulkEmulator, client: EsClient) -> None:
    es.set_faults(Faults(delay_seconds=600))
    with pytest.raises(requests.exceptions.Timeout):
        client.bulk(_many(1), timeout=0.5)

    es.stop()  # returns promptly: the delay waits on the emulator's stop event

    assert not es.running


@pytest.mark.parametrize(
    ("faults", "field"),
    [
        ({"item_status_rate": {"429": 1.5}}, "item_status_rate['429']"),
        ({"item_status_rate": {"200": 0.1}}, "item_status_rate['200']"),
        ({"item_status_rate": {"429": 0.6, "503": 0.6}}, "item_status_rate"),
        ({"request_status": 302}, "request_status"),
        ({"request_status": 503, "request_status_count": 0}, "request_status_count"),
        ({"delay_seconds": -1}, "delay_seconds"),
        ({"drop_response": 1}, "drop_response"),
        ({"drop_response_count": 0}, "drop_response_count"),
        ({"max_body_bytes": -5}, "max_body_bytes"),
        ({"retry_after_seconds": 1.5}, "retry_after_seconds"),
        ({"request_status_html": "yes"}, "request_status_html"),
        ({"down": "yes"}, "down"),
        ({"poison_field": ""}, "poison_field"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_invalid_faults_are_refused_naming_the_field(faults: dict[str, object], field: str) -> None:
    with pytest.raises(FaultsError) as caught:
        Faults.from_json(faults)

    assert caught.value.field == field


def test_faults_round_trip_through_json() -> None:
    faults = Faults(
        item_status_rate={429: 0.1},
        poison_field="x",
        request_status=503,
        request_status_count=2,
        request_status_html=True,
        retry_after_seconds=3,
        drop_response=True,
        drop_response_count=2,
        max_body_bytes=1000,
        seed=9,
    )

    assert Faults.from_json(faults.to_json()) == faults
