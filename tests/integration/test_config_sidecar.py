"""The config sidecar as a real process next to the real app under gunicorn (2 workers).

Kubelet is simulated (tests/support/kubelet.py); everything else is the real thing:
``python -m config_sidecar`` publishes into the directory ``python -m demo_app``
reads, and POSTs its ``/-/reload``.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sidecar_common import content_version
from tests.support import ServiceProcess, free_tcp_port, wait_until
from tests.support.kubelet import KeyToPath, KubeletVolume, Source

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "services" / "config-sidecar" / "schemas" / "app.schema.json"
WORKERS = 2


def app_yaml(greeting: str) -> dict[str, str]:
    return {"app.yaml": f"greeting: {greeting}\nchaos:\n  latency_ms: 0\n  error_rate: 0\n"}


def version_of(files: dict[str, str]) -> str:
    return content_version({name: text.encode() for name, text in files.items()})


def get(port: int, path: str) -> tuple[int, dict[str, str], bytes]:
    """One GET on a fresh connection, so the kernel may hand it to any gunicorn worker."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", path, headers={"Connection": "close"})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def get_json(port: int, path: str) -> tuple[int, dict[str, str], Any]:
    code, headers, body = get(port, path)
    return code, headers, json.loads(body or b"null")


@dataclass
class Pod:
    """The app and the config sidecar sharing a config directory, like containers of one pod."""

    volume: KubeletVolume
    config_dir: Path
    app_port: int
    admin_port: int
    start_app: Callable[[], ServiceProcess]
    start_sidecar: Callable[[], ServiceProcess]

    def status(self) -> dict[str, Any]:
        code, _, body = get_json(self.admin_port, "/status")
        assert code == 200
        return body  # type: ignore[no-any-return]

    def wait_applied(self, version: str, timeout: float = 30) -> None:
        wait_until(
            lambda: self.status()["applied"]["version"] == version, timeout, message=f"the app to apply {version}"
        )

    def workers_serving(self, version: str, timeout: float = 30) -> set[str]:
        """Sample /api/config until every worker answered; each answer must already be ``version``."""
        seen: set[str] = set()

        def every_worker_answered() -> bool:
            code, headers, body = get_json(self.app_port, "/api/config")
            assert code == 200, body
            assert body["version"] == version, f"worker {headers.get('x-worker-pid')} still serves {body['version']}"
            assert headers["x-config-version"] == version
            seen.add(headers["x-worker-pid"])
            return len(seen) >= WORKERS

        wait_until(every_worker_answered, timeout, interval=0.01, message=f"{WORKERS} workers serving {version}")
        return seen


@pytest.fixture
def pod(tmp_path: Path) -> Iterator[Pod]:
    volume = KubeletVolume(tmp_path / "config-source")
    config_dir = tmp_path / "config"
    app_port, control_port, admin_port = free_tcp_port(), free_tcp_port(), free_tcp_port()
    processes: list[ServiceProcess] = []

    def start_app() -> ServiceProcess:
        env = {
            "APP_HOST": "127.0.0.1",
            "APP_PORT": str(app_port),
            "CONTROL_PORT": str(control_port),
            "APP_CONFIG_DIR": str(config_dir),
            "APP_LOG_FILE": "",
            "STATSD_HOST": "",
            "APP_WORKERS": str(WORKERS),
            "APP_THREADS": "2",
        }
        process = ServiceProcess.python_module("demo_app", env, tmp_path / "app.log").start()
        processes.append(process)
        return process

    def start_sidecar() -> ServiceProcess:
        env = {
            "CONFIG_SOURCE_DIR": str(volume.directory),
            "CONFIG_TARGET_DIR": str(config_dir),
            "CONFIG_RELOAD_URL": f"http://127.0.0.1:{control_port}/-/reload",  # the app's control port
            "CONFIG_SCHEMA_FILE": str(SCHEMA),
            "CONFIG_RELOAD_BACKOFF_MAX_SECONDS": "1",
            "ADMIN_HOST": "127.0.0.1",
            "ADMIN_PORT": str(admin_port),
        }
        process = ServiceProcess.python_module("config_sidecar", env, tmp_path / "sidecar.log").start()
        processes.append(process)
        return process.wait_for(lambda: get_json(admin_port, "/livez")[0] == 200, "the admin port")

    yield Pod(volume, config_dir, app_port, admin_port, start_app, start_sidecar)
    failures = []
    for process in processes:
        code = process.stop()
        if code not in (0, -15):
            failures.append(process.failure(f"exited {code}"))
    assert not failures, "\n".join(failures)


def test_a_kubelet_swap_reaches_every_gunicorn_worker(pod: Pod) -> None:
    first = app_yaml("hello")
    pod.volume.write(first)
    pod.start_app()
    pod.start_sidecar()
    pod.wait_applied(version_of(first))
    pod.workers_serving(version_of(first))

    second = app_yaml("updated by kubelet")
    pod.volume.write(second)
    pod.wait_applied(version_of(second))

    workers = pod.workers_serving(version_of(second))
    assert len(workers) == WORKERS
    _, _, body = get_json(pod.app_port, "/api/config")
    assert body["config"]["greeting"] == "updated by kubelet"
    status = pod.status()
    assert status["published"]["version"] == status["applied"]["version"] == version_of(second)
    assert status["drift"]["drifting"] is False


def test_an_invalid_update_never_reaches_the_app(pod: Pod) -> None:
    good = app_yaml("good")
    pod.volume.write(good)
    pod.start_app()
    pod.start_sidecar()
    pod.wait_applied(version_of(good))

    pod.volume.write({"app.yaml": "greeting: good\nchaos:\n  error_rate: 4\n"})  # schema: 0..1
    error = wait_until(lambda: pod.status()["last_error"], 30, message="the refusal in /status")
    assert (error["file"], error["line"]) == ("app.yaml", 3)

    pod.workers_serving(version_of(good))
    code, _, body = get(pod.admin_port, "/metrics")
    assert code == 200
    metrics = body.decode()
    assert "config_sidecar_validation_failures_total 1.0" in metrics
    assert f'config_sidecar_applied_version_info{{version="{version_of(good)}"}} 1.0' in metrics


def test_an_app_that_starts_after_the_sidecar_still_gets_the_reload(pod: Pod) -> None:
    """configmap-reload #7: a reload sent while the app was starting must not be lost."""
    files = app_yaml("before the app")
    pod.volume.write(files)
    pod.start_sidecar()
    wait_until(lambda: pod.status()["reload"]["failures"] >= 1, 30, message="a refused reload")
    assert pod.status()["applied"]["version"] is None

    newer = app_yaml("published while the app was down")
    pod.volume.write(newer)
    wait_until(lambda: pod.status()["published"]["version"] == version_of(newer), 30)
    pod.start_app()

    pod.wait_applied(version_of(newer))
    pod.workers_serving(version_of(newer))


def test_nested_configmap_items_reach_the_target_and_every_worker_acknowledges_them(pod: Pod) -> None:
    """The mesh proxy's policy as nested items of the app's ConfigMap: published for Envoy, counted by the app."""
    data = {**app_yaml("with a mesh"), "routes": "routes: [a]\n", "clusters": "clusters: [x]\n"}
    items = [
        KeyToPath("app.yaml", "app.yaml"),
        KeyToPath("routes", "mesh/routes.yaml"),
        KeyToPath("clusters", "mesh/clusters.yaml"),
    ]
    pod.volume.write_sources([Source(data, items)])
    first = {**app_yaml("with a mesh"), "mesh/routes.yaml": "routes: [a]\n", "mesh/clusters.yaml": "clusters: [x]\n"}
    pod.start_app()
    pod.start_sidecar()
    pod.wait_applied(version_of(first))
    pod.workers_serving(version_of(first))
    assert (pod.config_dir / "mesh" / "routes.yaml").read_text() == "routes: [a]\n"
    _, _, body = get_json(pod.app_port, "/api/config")
    assert body["config"]["greeting"] == "with a mesh"
    assert body["unparsed_files"] == ["mesh/clusters.yaml", "mesh/routes.yaml"]

    data_dir = (pod.config_dir / "..data").resolve()
    pod.volume.write_sources([Source({**data, "routes": "routes: [a, b]\n"}, items)])
    second = {**first, "mesh/routes.yaml": "routes: [a, b]\n"}
    pod.wait_applied(version_of(second))
    pod.workers_serving(version_of(second))
    assert (pod.config_dir / "..data").resolve() != data_dir  # Envoy's watched_directory sees the swap
    assert (pod.config_dir / "mesh" / "routes.yaml").read_text() == "routes: [a, b]\n"
    assert pod.status()["published"]["changed"] == ["mesh/routes.yaml"]
