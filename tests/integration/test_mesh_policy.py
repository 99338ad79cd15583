"""The outbound policy in a real Envoy: web's app → web's proxy → mTLS → the api's proxy → the api's app.

Timeouts, retries (counted in Envoy's stats), fault injection (abort and delay),
outlier ejection, a policy change by kubelet ``..data`` swap in force within a
second with the same Envoy process, and what Envoy does when an invalid policy
is swapped in anyway: it keeps the last good one (the second safety net behind
``check-policy``).
"""

from __future__ import annotations

import http.client
import json
import math
import statistics
import time
from collections.abc import Callable

import pytest
import yaml

from tests.integration.mesh_pod import API, WEB, MeshProxy, StartApp, StartProxy, get, policy
from tests.support import wait_until
from tests.support.http_stub import HttpStub

Mesh = Callable[..., tuple[MeshProxy, list[HttpStub]]]


@pytest.fixture
def mesh(start_app: StartApp, start_proxy: StartProxy) -> Mesh:
    """Start api pods (one per app; ``failing`` ones answer 500) and web's proxy in front of them."""

    def start(
        policy_files: dict[str, str] | None = None, failing: tuple[bool, ...] = (False,)
    ) -> tuple[MeshProxy, list[HttpStub]]:
        api_apps, api_ports = [], []
        for index, fails in enumerate(failing):
            app = start_app(f"api-{index}", fail_everything=fails)
            api_apps.append(app)
            api_ports.append(start_proxy(f"api-{index}", API, app_port=app.port).inbound_port)
        web = start_proxy("web", WEB, upstream_ports=tuple(api_ports), policy_files=policy_files)
        return web, api_apps

    return start


class Client:
    """The web app's side: plain HTTP to web's outbound port on one keep-alive connection."""

    def __init__(self, port: int) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=15)

    def get(self, path: str) -> tuple[int, float, bytes]:
        started = time.monotonic()
        self.connection.request("GET", path)
        response = self.connection.getresponse()
        body = response.read()
        if response.getheader("connection", "").lower() == "close":
            self.connection.close()
        return response.status, time.monotonic() - started, body

    def close(self) -> None:
        self.connection.close()


def test_the_call_goes_through_both_proxies_with_mtls(mesh: Mesh) -> None:
    web, (app,) = mesh()
    status, body = get(web.outbound_port, "/api/greeting")
    assert status == 200, body
    assert json.loads(body)["server"] == "api-0"
    assert "URI=spiffe://sidecar-lab.local/ns/sidecar-lab/sa/web" in app.requests[-1].headers["x-forwarded-client-cert"]
    assert web.stat("cluster.upstream.ssl.handshake") >= 1


def test_a_slow_upstream_is_cut_at_the_route_timeout(mesh: Mesh) -> None:
    web, _ = mesh(policy(timeout="0.5s", retries=0, per_try_timeout="0.5s"))
    started = time.monotonic()
    status, body = get(web.outbound_port, "/api/slow?seconds=5")
    took = time.monotonic() - started
    assert status == 504, body
    assert 0.45 <= took < 4, f"cut after {took:.2f} s, not at the 0.5 s route timeout"  # timers may fire early
    assert web.stat("cluster.upstream.upstream_rq_timeout") == 1


def test_a_flaky_upstream_succeeds_through_retries_counted_in_stats(mesh: Mesh) -> None:
    web, (app,) = mesh(policy(retries=2))
    client = Client(web.outbound_port)
    calls = 10
    statuses = [client.get("/api/flaky")[0] for _ in range(calls)]
    client.close()
    assert statuses == [200] * calls
    flaky_calls = sum(request.route == "/api/flaky" for request in app.requests)
    assert flaky_calls == 3 * calls  # two failures and a success behind every 200
    assert web.stat("cluster.upstream.upstream_rq_retry") == 2 * calls
    assert web.stat("cluster.upstream.upstream_rq_retry_success") == calls


def test_fault_abort_at_50_percent_lands_within_a_binomial_bound(mesh: Mesh) -> None:
    web, (app,) = mesh(policy(abort_percent=50, retries=0))
    client = Client(web.outbound_port)
    requests = 400
    aborted = sum(client.get("/api/greeting")[0] == 503 for _ in range(requests))
    client.close()
    mean, sigma = requests * 0.5, math.sqrt(requests * 0.5 * 0.5)
    assert abs(aborted - mean) <= 4.5 * sigma, f"{aborted} of {requests} aborted"
    assert len(app.requests) == requests - aborted  # an aborted call never leaves web's pod
    assert web.stat("http.outbound.fault.aborts_injected") == aborted


def test_a_delay_fault_shows_in_latency(mesh: Mesh) -> None:
    web, _ = mesh(policy())
    client = Client(web.outbound_port)
    baseline = [client.get("/api/greeting")[1] for _ in range(8)]
    web.policy.write(policy(delay_percent=100, delay="0.3s"))
    wait_until(lambda: client.get("/api/greeting")[1] >= 0.25, timeout=5, message="the delay fault in force")
    delayed = [client.get("/api/greeting")[1] for _ in range(8)]
    client.close()
    # Envoy's timers may fire a millisecond or two early.
    assert min(delayed) >= 0.29, delayed
    assert statistics.median(delayed) - statistics.median(baseline) >= 0.25, (baseline, delayed)
    assert web.stat("http.outbound.fault.delays_injected") >= 8


def test_the_failing_endpoint_is_ejected(mesh: Mesh) -> None:
    web, (healthy, failing) = mesh(policy(retries=0, consecutive_5xx=3), failing=(False, True))
    client = Client(web.outbound_port)

    def ejected() -> bool:
        client.get("/api/greeting")
        return web.stat("cluster.upstream.outlier_detection.ejections_active") == 1

    wait_until(ejected, timeout=20, interval=0, message="the failing endpoint ejected")
    failed_before = len(failing.requests)
    assert failed_before == 3  # ejected right after its third consecutive 5xx
    statuses = [client.get("/api/greeting")[0] for _ in range(20)]
    client.close()
    assert statuses == [200] * 20
    assert len(failing.requests) == failed_before, "no request reaches an ejected endpoint"
    assert web.stat("cluster.upstream.outlier_detection.ejections_enforced_consecutive_5xx") == 1
    assert len(healthy.requests) >= 20


def test_a_policy_swap_is_in_force_within_a_second_in_the_same_process(mesh: Mesh) -> None:
    web, _ = mesh()
    pid = web.pid
    assert get(web.outbound_port, "/api/greeting")[0] == 200
    web.policy.write(policy(abort_percent=100, retries=0))
    swapped = web.policy.last_swap_at
    assert swapped is not None

    def aborted() -> bool:
        return get(web.outbound_port, "/api/greeting")[0] == 503

    wait_until(aborted, timeout=5, interval=0.01, message="the abort fault in force")
    took = time.monotonic() - swapped
    assert took < 1.0, f"the new policy took {took:.3f} s"
    assert web.pid == pid
    assert web.process.running()
    assert web.stat("http.outbound.rds.outbound.update_success") == 2


def config_dump_cluster(web: MeshProxy) -> dict[str, object]:
    dump = json.loads(web.admin("/config_dump?resource=dynamic_active_clusters"))
    clusters = [entry["cluster"] for entry in dump["configs"] if entry["cluster"]["name"] == "upstream"]
    assert len(clusters) == 1
    cluster: dict[str, object] = clusters[0]
    return cluster


def test_envoy_keeps_the_last_good_policy_when_an_invalid_one_is_swapped_in(mesh: Mesh) -> None:
    web, _ = mesh()
    good = policy()
    # Semantically invalid (Envoy's own validation rejects it): max_ejection_percent above 100.
    clusters = yaml.safe_load(good["mesh/clusters.yaml"])
    clusters["resources"][0]["outlier_detection"]["max_ejection_percent"] = 150
    # Not even parseable as the resource: a timeout that is no duration.
    routes = yaml.safe_load(good["mesh/routes.yaml"])
    routes["resources"][0]["virtual_hosts"][0]["routes"][0]["route"]["timeout"] = "banana"
    web.policy.write({"mesh/clusters.yaml": yaml.safe_dump(clusters), "mesh/routes.yaml": yaml.safe_dump(routes)})

    wait_until(lambda: web.stat("cluster_manager.cds.update_rejected") == 1, timeout=5, message="CDS rejected")
    wait_until(lambda: web.stat("http.outbound.rds.outbound.update_failure") == 1, timeout=5, message="RDS failed")
    outlier = config_dump_cluster(web)["outlier_detection"]
    assert isinstance(outlier, dict)
    assert outlier["max_ejection_percent"] == 50
    assert get(web.outbound_port, "/api/greeting")[0] == 200  # and so are the last good routes

    web.policy.write(policy(abort_percent=100, retries=0))  # a fixed policy is taken again
    wait_until(lambda: get(web.outbound_port, "/api/greeting")[0] == 503, timeout=5, message="fixed policy taken")
