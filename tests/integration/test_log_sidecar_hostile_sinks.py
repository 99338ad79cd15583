"""Hostile sinks: what proxies, ingresses and credential rotation really answer; every line still lands once.

Each test puts the Bulk-API emulator behind one hostile answer (a proxy's HTML 413 or 502
page, 401/403 while credentials rotate, an answer lost after the documents were stored),
lets the app write through it, and checks that every line is stored exactly once and that
nothing was dead-lettered for the sink's trouble.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sink_emulators.elasticsearch import BulkEmulator, Faults
from tests.integration.log_sidecar_process import (
    LineWriter,
    Sidecar,
    assert_exactly_once,
    launch,
    wait_for,
)

SHIPPER = "log_sidecar.shipper"


def dead_letters(sidecar: Sidecar) -> str:
    path = sidecar.state / "dead-letter.ndjson"
    return path.read_text() if path.exists() else ""


def shipper_logs(sidecar: Sidecar, level: str) -> list[dict[str, Any]]:
    return [r for r in sidecar.log_records(SHIPPER) if r.get("level") == level]


def test_a_proxy_413_splits_the_batch_and_dead_letters_nothing(
    tmp_path: Path, es: BulkEmulator, sidecars: list[Sidecar]
) -> None:
    # nginx's client_max_body_size in front: a 500-document batch (~130 KB) is too large, one document is not.
    es.set_faults(Faults(max_body_bytes=16 * 1024))
    sidecar = launch(sidecars, tmp_path, es)
    writer = LineWriter(sidecar.logs / "app.log")
    writer.write(3000)
    writer.close()
    assert_exactly_once(es, writer.written, sidecar)
    assert dead_letters(sidecar) == "", "no document is dead-lettered for its batch's size"
    assert sidecar.metric("log_sidecar_documents_total", result="dead_letter") == 0
    split = [r for r in shipper_logs(sidecar, "warning") if "splitting it" in r["msg"]]
    assert split, "the proxy's 413 was seen and the batch split"
    assert all(r["detail"] == "HTML page: 413 Request Entity Too Large" for r in split)


@pytest.mark.parametrize("status", [401, 403])
def test_credential_rotation_is_retried_logged_once_and_never_dead_lettered(
    tmp_path: Path, es: BulkEmulator, sidecars: list[Sidecar], status: int
) -> None:
    # LOG_RETRY_MAX=1, the strictest: a document the sink answers about with a retryable error is
    # dead-lettered at once; a sink refusing our credentials says nothing about the documents.
    sidecar = launch(sidecars, tmp_path, es, LOG_RETRY_MAX="1")
    writer = LineWriter(sidecar.logs / "app.log")
    writer.write(200)
    wait_for(sidecar, lambda: es.count() == 200, "before the rotation")
    es.set_faults(Faults(request_status=status))  # the old secret is gone, the new one not yet mounted
    writer.write(800)
    wait_for(sidecar, lambda: es.stats().rejected_requests >= 5, f"five {status}s")
    assert sidecar.metric("log_sidecar_sink_up") == 0
    errors = shipper_logs(sidecar, "error")
    assert len(errors) == 1, f"one error per state change, not per request: {errors}"
    assert "refuses our credentials" in errors[0]["msg"]
    assert "ES_USERNAME/ES_PASSWORD or ES_API_KEY" in errors[0]["msg"]
    es.clear_faults()  # the new secret is in place
    writer.write(100)
    writer.close()
    assert_exactly_once(es, writer.written, sidecar)
    assert dead_letters(sidecar) == ""
    wait_for(sidecar, lambda: sidecar.metric("log_sidecar_sink_up") == 1, "sink seen up again")
    assert len(shipper_logs(sidecar, "error")) == 1
    recovered = [r for r in shipper_logs(sidecar, "info") if "takes documents again" in r["msg"]]
    assert len(recovered) == 1
    assert sidecar.metric("log_sidecar_retries_total", reason="unauthorized") >= 1


def test_an_html_502_page_from_an_ingress_is_retried(tmp_path: Path, es: BulkEmulator, sidecars: list[Sidecar]) -> None:
    sidecar = launch(sidecars, tmp_path, es, LOG_RETRY_MAX="1")  # the page says nothing about the documents
    writer = LineWriter(sidecar.logs / "app.log")
    es.set_faults(Faults(request_status=502, request_status_html=True))
    writer.write(1000)
    wait_for(sidecar, lambda: es.stats().rejected_requests >= 4, "502 pages")
    (down,) = shipper_logs(sidecar, "warning")
    assert "HTML page: 502 Bad Gateway" in down["msg"]
    es.clear_faults()
    writer.close()
    assert_exactly_once(es, writer.written, sidecar)
    assert dead_letters(sidecar) == ""
    assert sidecar.metric("log_sidecar_retries_total", reason="server_error") > 0, "counted as a server error"


def test_an_answer_lost_after_the_documents_were_stored_is_resent_and_deduplicated(
    tmp_path: Path, es: BulkEmulator, sidecars: list[Sidecar]
) -> None:
    sidecar = launch(sidecars, tmp_path, es)
    writer = LineWriter(sidecar.logs / "app.log")
    es.set_faults(Faults(drop_response=True, drop_response_count=3))
    writer.write(2000)
    writer.close()
    assert_exactly_once(es, writer.written, sidecar)
    assert es.stats().dropped_responses == 3
    # The resends hit documents already stored: 409 on create, counted as duplicates, stored once.
    wait_for(sidecar, lambda: sidecar.metric("log_sidecar_documents_total", result="duplicate") > 0, "409s")
    delivered = sidecar.metric("log_sidecar_documents_total", result="delivered")
    duplicates = sidecar.metric("log_sidecar_documents_total", result="duplicate")
    assert delivered + duplicates == len(writer.written), "each document reached exactly one final state"
    assert dead_letters(sidecar) == ""
