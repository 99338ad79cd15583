"""Elasticsearch sets itself up again whenever it comes back empty: the setup lives in its pod, not in a Job.

Elasticsearch keeps its data (the security index too) on an emptyDir: every new pod starts
with no users. The setup script runs as a sidecar container of that pod; these tests run the
very script against a stand-in for Elasticsearch's security API and Kibana's data views.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.manifests.rendering import K8S, Rendering
from tests.manifests.security_stub import ELASTIC_PASSWORD, SecurityStub
from tests.support import wait_until
from tests.support.tools import require_tool

SCRIPT = K8S / "components" / "observability" / "setup" / "elasticsearch-setup.sh"
SHIPPER = ("shipper", "shipper-secret")
KIBANA_SYSTEM_PASSWORD = "kibana-secret"
SETTLE_SECONDS = 20.0
# A day the log sidecar's strftime index names are checked against.
SAMPLE_DAY = time.struct_time((2026, 11, 26, 9, 53, 2, 3, 330, 0))


@pytest.fixture
def stub() -> Iterator[SecurityStub]:
    security = SecurityStub()
    yield security
    security.stop()


@pytest.fixture
def setup_sidecar(stub: SecurityStub, tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """The setup script as the sidecar runs it, rounds 0.2 s apart, aimed at the stub."""
    bash = require_tool("bash", "the setup sidecar is a bash script")
    require_tool("curl", "the setup sidecar calls Elasticsearch and Kibana with curl")
    env = {
        "PATH": os.environ["PATH"],
        "ES_URL": stub.es_url,
        "KIBANA_URL": stub.kibana_url,
        "ELASTIC_PASSWORD": ELASTIC_PASSWORD,
        "KIBANA_SYSTEM_PASSWORD": KIBANA_SYSTEM_PASSWORD,
        "ES_USERNAME": SHIPPER[0],
        "ES_PASSWORD": SHIPPER[1],
        "SETUP_INTERVAL_SECONDS": "0.2",
        "SETUP_RETRY_SECONDS": "0.2",
        "SETUP_HEARTBEAT_FILE": str(tmp_path / "heartbeat"),
    }
    process = subprocess.Popen(
        [bash, str(SCRIPT)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    yield process
    if process.poll() is None:
        process.kill()
    process.wait(timeout=10)
    assert process.stdout is not None
    process.stdout.close()


def fully_set_up(stub: SecurityStub) -> bool:
    return (
        stub.authenticates(*SHIPPER)
        and stub.authenticates("kibana_system", KIBANA_SYSTEM_PASSWORD)
        and "logs-app" in stub.data_views
    )


def test_sets_up_a_new_node_once_it_answers_and_again_after_it_comes_back_empty(
    stub: SecurityStub, setup_sidecar: subprocess.Popen[str], tmp_path: Path
) -> None:
    stub.es_up = False  # the node is still starting
    wait_until(lambda: stub.calls["GET /_cluster/health?wait_for_status=yellow&timeout=5s"] >= 1, timeout=10)
    stub.es_up = True

    wait_until(lambda: fully_set_up(stub), timeout=SETTLE_SECONDS, message="users, role and data view set up")
    assert stub.users[SHIPPER[0]][1] == ["sidecar-lab-shipper"]
    assert (tmp_path / "heartbeat").is_file()

    # Nothing missing: later rounds only check, they change nothing.
    writes = sum(count for call, count in stub.calls.items() if not call.startswith("GET "))
    checks = stub.calls["GET /_security/_authenticate"]
    wait_until(lambda: stub.calls["GET /_security/_authenticate"] >= checks + 6, timeout=SETTLE_SECONDS)
    assert sum(count for call, count in stub.calls.items() if not call.startswith("GET ")) == writes

    # The pod was replaced: a new, empty node behind the same address.
    stub.wipe()
    assert not stub.authenticates(*SHIPPER)
    wait_until(lambda: fully_set_up(stub), timeout=SETTLE_SECONDS, message="set up again after the wipe")

    setup_sidecar.send_signal(signal.SIGTERM)
    assert setup_sidecar.wait(timeout=10) == 0
    assert setup_sidecar.stdout is not None
    output = setup_sidecar.stdout.read()
    assert "the lab's users are gone (the node lost its data): setting up again" in output
    assert "stopping" in output


def test_a_failed_setup_round_is_retried(stub: SecurityStub, setup_sidecar: subprocess.Popen[str]) -> None:
    stub.users["elastic"] = ("not-the-bootstrap-password", ["superuser"])  # every setup call gets 401
    wait_until(lambda: stub.calls["GET /_cluster/health?wait_for_status=yellow&timeout=5s"] >= 3, timeout=10)
    assert not stub.authenticates(*SHIPPER)
    assert setup_sidecar.poll() is None, "the sidecar must keep trying, not exit"

    stub.users["elastic"] = (ELASTIC_PASSWORD, ["superuser"])
    wait_until(lambda: fully_set_up(stub), timeout=SETTLE_SECONDS, message="set up once the password works")


def elasticsearch_pod(rendering: Rendering) -> dict[str, Any]:
    (deployment,) = [doc for doc in rendering.of_kind("Deployment") if doc["metadata"]["name"] == "elasticsearch"]
    spec: dict[str, Any] = deployment["spec"]["template"]["spec"]
    return spec


def with_observability(renderings: list[Rendering]) -> list[Rendering]:
    found = [r for r in renderings if any(d["metadata"]["name"] == "elasticsearch" for d in r.of_kind("Deployment"))]
    assert found, "no rendering has the observability component"
    return found


def test_the_setup_runs_in_the_elasticsearch_pod_for_as_long_as_it_runs(renderings: list[Rendering]) -> None:
    for rendering in with_observability(renderings):
        pod = elasticsearch_pod(rendering)
        # A container of the pod itself: it lives and dies with the node's data.
        (setup,) = [c for c in pod["containers"] if c["name"] == "setup"]
        assert setup["command"] == ["bash", "/opt/setup/elasticsearch-setup.sh"]
        # Ready only when the log shipper's credentials really authenticate.
        assert "_security/_authenticate" in " ".join(setup["readinessProbe"]["exec"]["command"])
        script_volume = next(v for v in pod["volumes"] if v["name"] == "setup-script")
        config_map = next(
            doc
            for doc in rendering.of_kind("ConfigMap")
            if doc["metadata"]["name"] == script_volume["configMap"]["name"]
        )
        assert config_map["data"]["elasticsearch-setup.sh"] == SCRIPT.read_text()
        # A one-shot Job would set up one node and never the next.
        jobs = [doc["metadata"]["name"] for doc in rendering.of_kind("Job")]
        assert "observability-setup" not in jobs, rendering.name


def shipper_role() -> dict[str, Any]:
    match = re.search(r"_security/role/sidecar-lab-shipper\" -d '(\{.*?\})'", SCRIPT.read_text(), re.DOTALL)
    assert match, "the script defines no sidecar-lab-shipper role"
    role: dict[str, Any] = json.loads(match.group(1))
    return role


def test_the_shipper_role_lets_every_log_sidecar_create_its_data_streams(renderings: list[Rendering]) -> None:
    """ES_INDEX names match the built-in logs-*-* template: data streams, written with `create` only."""
    role = shipper_role()
    (grant,) = role["indices"]
    assert set(grant["privileges"]) & {"create_doc", "create", "index", "write"}, "cannot add documents"
    assert set(grant["privileges"]) & {"auto_configure", "create_index", "manage"}, "cannot create a day's stream"
    checked = set()
    for rendering in with_observability(renderings):
        for doc in rendering.of_kind("Deployment", "Job"):
            spec = doc["spec"]["template"]["spec"]
            for container in spec.get("initContainers", []) + spec["containers"]:
                env = {e["name"]: e.get("value") for e in container.get("env", [])}
                if env.get("LOG_SINK") != "elasticsearch":
                    continue
                name = time.strftime(env["ES_INDEX"], SAMPLE_DAY)
                assert any(fnmatch.fnmatchcase(name, pattern) for pattern in grant["names"]), (
                    f"{rendering.name}: {doc['metadata']['name']} ships to {name}, outside the role's {grant['names']}"
                )
                checked.add(name)
    assert checked == {"logs-app-2026.11.26"}
