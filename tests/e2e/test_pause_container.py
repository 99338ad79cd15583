"""A crashed or restarted app container comes back into the pod's namespace: its sidecars still reach it.

The pod's network namespace belongs to the pause container, which never restarts. Before it,
the app owned the namespace: after an OOM kill or `docker restart app` the sidecars stayed in
the dead one, still "healthy", while scrapes, reloads, statsd and shipping silently stopped.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

from sidecar_common import content_version, read_config_files
from tests.e2e.config_edits import APP_CONFIG, RELOAD_TIMEOUT_SECONDS, app_config, write_atomically
from tests.e2e.stack import APP_PORT_IN_POD, HTTP_TIMEOUT_SECONDS, Stack, field, inspect_container, run_docker
from tests.support import wait_until

SIDECARS = ("config-sidecar", "log-sidecar", "exporter", "mesh-proxy")
RESTART_TIMEOUT_SECONDS = 90.0
SETTLE_TIMEOUT_SECONDS = 60.0
# A status only this test asks for (test_prometheus counts 418s): the statsd path after the restart.
PROBE_STATUS = "203"
PROBE_REQUESTS = 10


def exporter_samples(stack: Stack, name: str, **labels: str) -> list[float]:
    """Values of the exporter's samples called ``name`` with these labels."""
    text = requests.get(f"{stack.exporter}/metrics", timeout=HTTP_TIMEOUT_SECONDS).text
    return [
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(key) == value for key, value in labels.items())
    ]


def state_of(container_id: str) -> dict[str, Any]:
    state: dict[str, Any] = inspect_container(container_id)["State"]
    return state


def kill_like_the_oom_killer(app: dict[str, Any]) -> None:
    """SIGKILL the app's main process from outside, as the kernel does: docker restarts it (`docker kill` would not)."""
    try:
        os.kill(app["State"]["Pid"], signal.SIGKILL)
    except PermissionError:
        pytest.skip("killing a container's process from outside needs root on the Docker host")


def restart_with_docker(app: dict[str, Any]) -> None:
    run_docker(["docker", "restart", "--time", "10", app["Id"]])


@pytest.mark.parametrize("interrupt", [kill_like_the_oom_killer, restart_with_docker], ids=["killed", "restarted"])
def test_app_comes_back_into_the_pod_namespace_and_its_sidecars_still_reach_it(
    stack: Stack, config_source: Path, interrupt: Any
) -> None:
    pause = stack.inspect("pause")
    app = stack.inspect("app")
    sidecars = {service: stack.inspect(service) for service in SIDECARS}

    interrupted_at = time.monotonic()
    interrupt(app)

    def app_back() -> bool:
        state = state_of(app["Id"])
        return bool(
            state["StartedAt"] != app["State"]["StartedAt"]
            and state["Running"]
            and state.get("Health", {}).get("Status") == "healthy"
        )

    wait_until(app_back, timeout=RESTART_TIMEOUT_SECONDS, interval=1.0, message="the app running and healthy again")

    # The namespace's owner did not move, and no sidecar had to be recreated or restarted.
    assert state_of(pause["Id"])["StartedAt"] == pause["State"]["StartedAt"]
    for service, before in sidecars.items():
        now = stack.inspect(service)
        assert (now["Id"], now["State"]["StartedAt"]) == (before["Id"], before["State"]["StartedAt"]), service
        assert now["HostConfig"]["NetworkMode"] == f"container:{pause['Id']}", service

    # 1. The exporter reads the new app's /stats over localhost: its uptime started after the kill.
    def json_source_reaches_the_new_app() -> bool:
        up = exporter_samples(stack, "exporter_source_up", source="json")
        uptime = exporter_samples(stack, "app_uptime_seconds")
        return up == [1.0] and len(uptime) == 1 and uptime[0] < time.monotonic() - interrupted_at + 1

    wait_until(
        json_source_reaches_the_new_app,
        timeout=SETTLE_TIMEOUT_SECONDS,
        interval=1.0,
        message="the exporter's JSON source up on the restarted app",
    )

    # 2. The new app's statsd packets reach the exporter on localhost:9125/udp.
    probes_before = sum(exporter_samples(stack, "http_requests_total", status=PROBE_STATUS))
    answers = stack.in_pod(APP_PORT_IN_POD, f"/api/work?status={PROBE_STATUS}", count=PROBE_REQUESTS)
    assert [answer.status for answer in answers] == [int(PROBE_STATUS)] * PROBE_REQUESTS
    wait_until(
        lambda: (
            sum(exporter_samples(stack, "http_requests_total", status=PROBE_STATUS)) >= probes_before + PROBE_REQUESTS
        ),
        timeout=SETTLE_TIMEOUT_SECONDS,
        interval=0.5,
        message="the restarted app's statsd counted by the exporter",
    )

    # 3. A config change reaches the new app: the config sidecar's POST /-/reload on localhost.
    document = yaml.safe_load((config_source / APP_CONFIG).read_text())
    document["greeting"] = f"Hello after the restart {uuid.uuid4().hex[:8]}"
    write_atomically(config_source / APP_CONFIG, yaml.safe_dump(document, sort_keys=False))
    expected = content_version(read_config_files(config_source))
    wait_until(
        lambda: app_config(stack)["version"] == expected,
        timeout=RELOAD_TIMEOUT_SECONDS,
        interval=0.5,
        message=f"the restarted app serving version {expected}",
    )

    # 4. Its log lines still flow: the log sidecar (same namespace) ships them to Elasticsearch.
    request_id = f"e2e-pause-{uuid.uuid4()}"
    assert stack.app_get("/api/greeting", headers={"X-Request-Id": request_id}).status == 200
    wait_until(
        lambda: any(field(doc, "http.request.id") == request_id for doc in stack.emulator_docs("logs-app-*").values()),
        timeout=SETTLE_TIMEOUT_SECONDS,
        interval=0.5,
        message=f"the log line of {request_id} in the emulator",
    )
