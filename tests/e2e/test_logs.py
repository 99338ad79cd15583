"""A request to the app becomes a log line the log sidecar ships to Elasticsearch with pod metadata."""

from __future__ import annotations

import uuid
from typing import Any

from tests.e2e.stack import Stack, field
from tests.support import wait_until

SHIPPING_TIMEOUT_SECONDS = 60.0
INDEX_PATTERN = "logs-app-*"


def docs_with_request_id(stack: Stack, request_id: str) -> list[dict[str, Any]]:
    """Documents in the emulator logged for the request with this X-Request-Id."""
    return [doc for doc in stack.emulator_docs(INDEX_PATTERN).values() if field(doc, "http.request.id") == request_id]


def test_request_log_line_reaches_elasticsearch_with_pod_metadata(stack: Stack) -> None:
    request_id = f"e2e-logs-{uuid.uuid4()}"
    answer = stack.app_get("/api/greeting", headers={"X-Request-Id": request_id})
    assert answer.status == 200

    docs = wait_until(
        lambda: docs_with_request_id(stack, request_id),
        timeout=SHIPPING_TIMEOUT_SECONDS,
        interval=0.5,
        message=f"the log line of request {request_id} in the emulator",
    )

    assert len(docs) == 1
    doc = docs[0]
    assert field(doc, "url.path") == "/api/greeting"
    assert field(doc, "http.response.status_code") == 200
    assert field(doc, "@timestamp")
    # Enrichment by the log sidecar, from the pod identity compose sets (the Downward API in k8s).
    assert field(doc, "kubernetes.pod.name") == "demo-app-0"
    assert field(doc, "kubernetes.namespace") == "sidecar-lab"
    assert field(doc, "host.name") == "docker-compose"
