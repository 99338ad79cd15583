"""Restarting the log sidecar container, gracefully or with SIGKILL, loses and duplicates no log line.

The checkpoint lives in the log-state volume and advances only after Elasticsearch
acknowledged; ids are deterministic, so what is re-sent after a kill lands on the same _id.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter

from tests.e2e.stack import Stack, field
from tests.support import wait_until

REQUESTS_PER_PHASE = 30
SHIPPING_TIMEOUT_SECONDS = 90.0
HEALTHY_TIMEOUT_SECONDS = 90.0
APP_LOG = "/var/log/app/app.log"


def send_requests(stack: Stack, prefix: str, count: int) -> None:
    """Requests whose X-Request-Id (logged as http.request.id) starts with ``prefix``."""
    for number in range(count):
        answer = stack.app_get("/api/greeting", headers={"X-Request-Id": f"{prefix}-{number}"})
        assert answer.status == 200


def written_request_ids(stack: Stack, run: str) -> Counter[str]:
    """Request ids of this run in the app's log file, as the app wrote them (one per line)."""
    found: Counter[str] = Counter()
    for line in stack.exec_in("app", "cat", APP_LOG).splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        request_id = field(record, "http.request.id") if isinstance(record, dict) else None
        if isinstance(request_id, str) and request_id.startswith(run):
            found[request_id] += 1
    return found


def shipped_request_ids(stack: Stack, run: str) -> Counter[str]:
    """Request ids of this run among the documents in Elasticsearch (one per unique _id)."""
    found: Counter[str] = Counter()
    for doc in stack.emulator_docs("logs-app-*").values():
        request_id = field(doc, "http.request.id")
        if isinstance(request_id, str) and request_id.startswith(run):
            found[request_id] += 1
    return found


def wait_healthy(stack: Stack, service: str) -> None:
    wait_until(
        lambda: stack.inspect(service)["State"].get("Health", {}).get("Status") == "healthy",
        timeout=HEALTHY_TIMEOUT_SECONDS,
        interval=1.0,
        message=f"{service} healthy again",
    )


def test_log_sidecar_restart_and_kill_lose_and_duplicate_nothing(stack: Stack) -> None:
    run = f"e2e-restart-{uuid.uuid4().hex[:12]}"

    send_requests(stack, f"{run}-before", REQUESTS_PER_PHASE)
    stack.compose("restart", "log-sidecar")  # SIGTERM: drain, checkpoint, exit
    send_requests(stack, f"{run}-after-restart", REQUESTS_PER_PHASE)
    wait_healthy(stack, "log-sidecar")

    send_requests(stack, f"{run}-before-kill", REQUESTS_PER_PHASE)
    stack.compose("kill", "-s", "KILL", "log-sidecar")  # no chance to drain or checkpoint
    send_requests(stack, f"{run}-while-dead", REQUESTS_PER_PHASE)
    stack.compose("start", "log-sidecar")
    wait_healthy(stack, "log-sidecar")
    send_requests(stack, f"{run}-after-kill", REQUESTS_PER_PHASE)

    written = written_request_ids(stack, run)
    assert sum(written.values()) == 5 * REQUESTS_PER_PHASE, "the app did not log one line per request"

    # The sidecar ships in file order, so once the last line is in, any re-sent one is too.
    def everything_shipped() -> Counter[str] | None:
        found = shipped_request_ids(stack, run)
        return found if found.keys() >= written.keys() else None

    shipped = wait_until(
        everything_shipped,
        timeout=SHIPPING_TIMEOUT_SECONDS,
        interval=1.0,
        message=f"all {sum(written.values())} lines of run {run} in the emulator",
    )
    assert shipped is not None
    duplicated = {request_id: count for request_id, count in shipped.items() if count > 1}
    assert not duplicated, f"lines stored more than once (under different _ids): {duplicated}"
    assert shipped == written
