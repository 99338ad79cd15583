"""Mesh policy the way a pod gets it: kubelet → the real config sidecar → the target's ``..data`` → real Envoy.

Web's mesh proxy reads its policy from the directory the config sidecar publishes
(MESH_POLICY_DIR = CONFIG_TARGET_DIR), as in every run mode. With the mesh
policy's JSON Schema on ``mesh/routes.yaml`` and ``mesh/clusters.yaml``
(CONFIG_SCHEMAS), a bad policy is refused by the config sidecar and Envoy never
sees it; a good one is in force within a second, in the same Envoy process.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.integration.mesh_pod import API, WEB, MeshProxy, StartApp, StartProxy, get, policy
from tests.support import ServiceProcess, free_tcp_port, wait_until
from tests.support.kubelet import KubeletVolume

ROOT = Path(__file__).resolve().parents[2]
MESH_SCHEMA = ROOT / "services" / "mesh-proxy" / "schemas" / "mesh-policy.schema.json"
APP_SCHEMA = ROOT / "services" / "config-sidecar" / "schemas" / "app.schema.json"
APP_YAML = {"app.yaml": "greeting: web\nfeatures:\n  call_upstream: true\n"}

pytestmark = pytest.mark.integration


@dataclass
class WebPod:
    """Web's config source, its config sidecar and its mesh proxy (whose policy is the sidecar's target)."""

    source: KubeletVolume
    sidecar: ServiceProcess
    admin_port: int
    proxy: MeshProxy

    def status(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}/status", timeout=5) as response:
            document: dict[str, Any] = json.loads(response.read())
        return document

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}/metrics", timeout=5) as response:
            return str(response.read().decode())


@pytest.fixture
def web_pod(tmp_path: Path, start_app: StartApp, start_proxy: StartProxy) -> Iterator[WebPod]:
    app = start_app("api")
    api = start_proxy("api", API, app_port=app.port)

    source = KubeletVolume(tmp_path / "web" / "config-source")
    source.write({**APP_YAML, **policy()})
    target = tmp_path / "web" / "config"
    admin_port = free_tcp_port()
    mesh_schema = str(MESH_SCHEMA)
    env = {
        "CONFIG_SOURCE_DIR": str(source.directory),
        "CONFIG_TARGET_DIR": str(target),
        "CONFIG_RELOAD_URL": "",  # no app here: the mesh proxy is the consumer under test
        "CONFIG_SCHEMAS": f"app.yaml={APP_SCHEMA},mesh/routes.yaml={mesh_schema},mesh/clusters.yaml={mesh_schema}",
        "ADMIN_HOST": "127.0.0.1",
        "ADMIN_PORT": str(admin_port),
    }
    sidecar = ServiceProcess.python_module("config_sidecar", env, tmp_path / "web" / "config-sidecar.out").start()
    wait_until(lambda: (target / "mesh" / "routes.yaml").exists(), 30, message=f"first publish\n{sidecar.output()}")

    proxy = start_proxy("web-proxy", WEB, upstream_ports=(api.inbound_port,), MESH_POLICY_DIR=str(target))
    yield WebPod(source, sidecar, admin_port, proxy)
    assert sidecar.stop() == 0, sidecar.output()


def test_a_bad_policy_is_refused_before_envoy_and_a_good_one_is_in_force_within_a_second(web_pod: WebPod) -> None:
    proxy = web_pod.proxy
    pid = proxy.pid
    assert get(proxy.outbound_port, "/api/greeting")[0] == 200
    routes_updates = proxy.stat("http.outbound.rds.outbound.update_success")
    cluster_updates = proxy.stat("cluster_manager.cds.update_success")
    published = web_pod.status()["published"]["version"]

    # 150 % aborts: valid YAML, but not a percentage. The config sidecar refuses the whole set.
    bad = policy(abort_percent=150)
    web_pod.source.write({**APP_YAML, **bad})
    status = wait_until(lambda: (s := web_pod.status())["last_error"] and s, 10, message="the refusal in /status")
    assert status["last_error"]["file"] == "mesh/routes.yaml"
    assert "numerator: violates maximum 100" in status["last_error"]["reason"]
    assert status["published"]["version"] == published
    assert 'config_sidecar_refused_files{file="mesh/routes.yaml"} 1.0' in web_pod.metrics()
    assert "refusing version" in web_pod.sidecar.output()
    # Envoy never saw it: no update, no rejection, the last good policy still serves.
    assert proxy.stat("http.outbound.rds.outbound.update_success") == routes_updates
    assert proxy.stat("http.outbound.rds.outbound.update_failure") == 0
    assert proxy.stat("http.outbound.rds.outbound.update_rejected") == 0
    assert proxy.stat("cluster_manager.cds.update_success") == cluster_updates
    assert proxy.stat("cluster_manager.cds.update_rejected") == 0
    assert [get(proxy.outbound_port, "/api/greeting")[0] for _ in range(5)] == [200] * 5

    # The fixed edit (100 % aborts, no retries) goes kubelet → config sidecar → Envoy within a second.
    web_pod.source.write({**APP_YAML, **policy(abort_percent=100, retries=0)})
    swapped = web_pod.source.last_swap_at
    assert swapped is not None
    wait_until(
        lambda: get(proxy.outbound_port, "/api/greeting")[0] == 503,
        timeout=5,
        interval=0.01,
        message="the abort fault in force",
    )
    took = time.monotonic() - swapped
    assert took < 1.0, f"kubelet swap -> config sidecar -> Envoy took {took:.3f} s"
    assert proxy.pid == pid
    assert proxy.process is not None
    assert proxy.process.running()
    assert proxy.stat("http.outbound.rds.outbound.update_success") == routes_updates + 1
    assert "config_sidecar_refused_files{" not in web_pod.metrics()
