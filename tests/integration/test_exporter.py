"""The exporter as a real process: next to the real app under gunicorn, and scraped by a real Prometheus.

(a) gunicorn with 2 workers sends its built-in statsd to the exporter: after N
requests, ``http_requests_total`` summed over status is exactly N — the
aggregation across workers that client_python's multiprocess mode struggles with.
(b) Debian's ``prometheus`` scrapes the exporter every second: its HTTP API shows
the target up and the values the test sent; ``promtool check metrics`` is clean.
(c) ``POST /-/reload`` is answered only on the loopback control port, never on a public socket.
"""

from __future__ import annotations

import http.client
import json
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support import ServiceProcess, free_tcp_port, free_udp_port, wait_until
from tests.support.http_stub import HttpStub, json_reply
from tests.support.netns import PrivateNetwork, listening_sockets
from tests.support.prometheus import StartPrometheus
from tests.support.tools import require_tool

WORKERS = 2
REQUESTS = 40
MAX_REQUESTS = 400

MAPPING = """
mappings:
  - match: test.events.*
    name: test_events_total
    labels: {kind: "$1"}
    help: Events the integration test sent.
  - match: test.latency
    name: test_latency_seconds
    buckets: [0.01, 0.1, 1]
json:
  - name: app_worker_requests_in_flight
    path: $.workers.*.requests_in_flight
    labels: {worker: "$1"}
  - name: app_config_info
    path: $.config.version
    type: info
    labels: {version: $value}
"""


def get(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """One GET on a fresh connection, so the kernel may hand it to any gunicorn worker."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        connection.request("GET", path, headers={"Connection": "close", **(headers or {})})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def metric_values(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def summed(text: str, name: str) -> float:
    return sum(v for (sample, _), v in metric_values(text).items() if sample == name)


@dataclass
class ExporterProcess:
    process: ServiceProcess
    http_port: int
    statsd_port: int
    mapping: Path

    def metrics(self) -> str:
        status, body = get(self.http_port, "/metrics")
        assert status == 200, self.process.output()
        return body.decode()

    def send(self, *lines: str) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for line in lines:
                sock.sendto(line.encode(), ("127.0.0.1", self.statsd_port))


StartExporter = Callable[..., ExporterProcess]


@pytest.fixture
def start_exporter(tmp_path: Path) -> Iterator[StartExporter]:
    started: list[ServiceProcess] = []

    def start(json_url: str = "", mapping: str | None = MAPPING) -> ExporterProcess:
        """Run the exporter with ``mapping`` as its EXPORTER_CONFIG (None: the built-in mapping)."""
        path = tmp_path / "mapping.yaml"
        http_port, statsd_port = free_tcp_port(), free_udp_port()
        env = {
            "ADMIN_HOST": "127.0.0.1",
            "ADMIN_PORT": str(http_port),
            "CONTROL_PORT": str(free_tcp_port()),
            "STATSD_HOST": "127.0.0.1",
            "STATSD_PORT": str(statsd_port),
            "EXPORTER_CONFIG": "",
            "EXPORTER_JSON_URL": json_url,
        }
        if mapping is not None:
            path.write_text(mapping)
            env["EXPORTER_CONFIG"] = str(path)
        process = ServiceProcess.python_module("metrics_exporter", env, tmp_path / "exporter.log").start()
        started.append(process)
        process.wait_for(lambda: get(http_port, "/readyz")[0] == 200, "/readyz to answer 200", timeout=20)
        return ExporterProcess(process, http_port, statsd_port, path)

    yield start
    for process in started:
        process.stop()


# --- (a) the real app under gunicorn -------------------------------------------------


@pytest.fixture
def app_config(tmp_path: Path) -> Path:
    directory = tmp_path / "config"
    directory.mkdir()
    (directory / "app.yaml").write_text("greeting: hello\nchaos:\n  latency_ms: 0\n  error_rate: 0\n")
    return directory


def accepts_connections(port: int) -> bool:
    """Readiness without an HTTP request: a request would itself be counted by gunicorn."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def test_gunicorn_requests_are_counted_exactly_across_workers(
    start_exporter: StartExporter, app_config: Path, tmp_path: Path
) -> None:
    # The JSON source stays off: its own GET /stats would be one more request per scrape.
    exporter = start_exporter(json_url="", mapping=None)  # the built-in mapping knows gunicorn's names
    app_port = free_tcp_port()
    app = ServiceProcess.python_module(
        "demo_app",
        {
            "APP_HOST": "127.0.0.1",
            "APP_PORT": str(app_port),
            "CONTROL_PORT": str(free_tcp_port()),  # not the default 8079: tests take free ports
            "APP_CONFIG_DIR": str(app_config),
            "APP_LOG_FILE": "",
            "APP_WORKERS": str(WORKERS),
            "APP_THREADS": "2",
            "STATSD_HOST": "127.0.0.1",
            "STATSD_PORT": str(exporter.statsd_port),
        },
        tmp_path / "app.log",
    ).start()
    try:
        app.wait_for(lambda: accepts_connections(app_port), "the app listening")
        # The arbiter reports its workers over statsd once they are up.
        app.wait_for(
            lambda: summed(exporter.metrics(), "gunicorn_workers") == WORKERS, f"gunicorn_workers == {WORKERS}"
        )

        def one_request(index: int) -> int:
            """One request (every 4th asks for a 503); return the pid of the worker that served a 200."""
            status, body = get(app_port, f"/api/work?ms=20&status={200 if index % 4 else 503}")
            assert status in (200, 503), body
            return int(json.loads(body)["worker"]) if status == 200 else 0

        # Batches until both workers have served (the kernel picks the worker), so the count
        # below is an aggregate over workers; the bound keeps a real imbalance visible.
        sent = 0
        workers: set[int] = set()
        with ThreadPoolExecutor(max_workers=8) as pool:
            while sent < MAX_REQUESTS and (sent < REQUESTS or len(workers) < WORKERS):
                workers |= set(pool.map(one_request, range(sent, sent + REQUESTS))) - {0}
                sent += REQUESTS

        def counted() -> float:
            return summed(exporter.metrics(), "http_requests_total")

        wait_until(lambda: counted() >= sent, timeout=20, message="every request counted")
        text = exporter.metrics()
        values = metric_values(text)
        assert summed(text, "http_requests_total") == sent
        assert values[("http_requests_total", frozenset({("status", "503")}))] == sent // 4
        assert values[("http_request_duration_seconds_count", frozenset())] == sent
        assert values[("gunicorn_requests_total", frozenset())] == sent
        assert len(workers) == WORKERS, f"{sent} requests were all served by {workers}"
    finally:
        app.stop()


# --- (b) a real Prometheus scraping the exporter ----------------------------------------

STATS = {
    "service": "demo-app",
    "uptime_seconds": 42.0,
    "config": {"version": "abc123", "loaded_at": None, "reloads_total": {"ok": 1, "refused": 0}},
    "requests_in_flight": 1,
    "workers": {"7001": {"requests_in_flight": 1}, "7002": {"requests_in_flight": 0}},
}


@pytest.fixture
def stats_server(http_stub: HttpStub) -> HttpStub:
    """A stand-in for the app's GET /stats that records the requests it was asked."""
    http_stub.answer(json_reply(STATS))
    return http_stub


def test_prometheus_scrapes_the_exporter(
    start_exporter: StartExporter,
    prometheus: StartPrometheus,
    stats_server: HttpStub,
) -> None:
    exporter = start_exporter(json_url=stats_server.url + "/stats")
    server = prometheus([exporter.http_port])

    def target_up() -> bool:
        targets = server.api("targets")["activeTargets"]
        return len(targets) == 1 and targets[0]["health"] == "up"

    server.process.wait_for(target_up, "the exporter target up")

    exporter.send(*["test.events.signup:1|c"] * 25, *["test.events.login:1|c|@0.5"] * 4, "test.latency:50|ms")
    wait_until(lambda: server.value('test_events_total{kind="signup"}') == 25, timeout=30, message="counter scraped")
    assert server.value('test_events_total{kind="login"}') == 8  # 4 lines sampled at 0.5
    assert server.value('test_latency_seconds_bucket{le="0.1"}') == 1
    assert server.value('exporter_source_up{source="json"}') == 1
    assert server.value('app_worker_requests_in_flight{worker="7001"}') == 1
    assert server.value('app_config_info{version="abc123"}') == 1
    assert server.value("up") == 1
    assert stats_server.requests, "the JSON source fetched /stats at scrape time"


def test_the_exposition_passes_promtool(start_exporter: StartExporter, stats_server: HttpStub) -> None:
    promtool = require_tool("promtool", "it checks the exposition format")
    exporter = start_exporter(json_url=stats_server.url + "/stats")
    exporter.send(
        "test.events.a:1|c",
        "test.latency:5|ms|#route:/x",
        "gunicorn.workers:2|g",
        "someService.queueDepth:3|g",
        "jobs.done:1|c|#queueName:mail",
        "render.time.ms:12|ms",
        "visitors:alice|s",
        "broken line",
    )
    wait_until(lambda: summed(exporter.metrics(), "exporter_statsd_lines_total") == 8, message="lines received")
    text = exporter.metrics()
    result = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr + text
    assert result.stdout.strip() == ""


def test_sighup_reloads_and_sigterm_stops_cleanly(start_exporter: StartExporter) -> None:
    exporter = start_exporter()
    exporter.mapping.write_text(MAPPING.replace("test_events_total", "renamed_events_total"))
    exporter.process.signal(signal.SIGHUP)
    wait_until(
        lambda: (
            metric_values(exporter.metrics()).get(("exporter_config_reloads_total", frozenset({("result", "success")})))
            == 1
        ),
        message="reload on SIGHUP",
    )
    exporter.send("test.events.x:1|c")
    wait_until(lambda: summed(exporter.metrics(), "renamed_events_total") == 1, message="new mapping in use")

    exporter.mapping.write_text("mappings: {not: a list}")
    exporter.process.signal(signal.SIGHUP)
    wait_until(
        lambda: summed(exporter.metrics(), "exporter_config_last_reload_successful") == 0, message="bad reload seen"
    )
    assert exporter.process.running()

    assert exporter.process.stop() == 0
    assert '"exporter stopped"' in exporter.process.output()


def test_an_invalid_mapping_stops_the_start_with_exit_2(tmp_path: Path) -> None:
    mapping = tmp_path / "bad.yaml"
    mapping.write_text("mappings: [{match: a, name: hits, type: counter}]\n")
    env = {
        "EXPORTER_CONFIG": str(mapping),
        "ADMIN_HOST": "127.0.0.1",
        "ADMIN_PORT": str(free_tcp_port()),
        "CONTROL_PORT": str(free_tcp_port()),
        "STATSD_HOST": "127.0.0.1",
        "STATSD_PORT": str(free_udp_port()),
    }
    process = ServiceProcess.python_module("metrics_exporter", env, tmp_path / "exporter.log").start()
    assert process.wait(30) == 2
    errors = [line for line in process.output().splitlines() if line.startswith("metrics-exporter: ")]
    assert len(errors) == 1, process.output()
    assert errors[0].startswith(f"metrics-exporter: configuration error: EXPORTER_CONFIG: {mapping}: ")
    assert "must end with _total" in errors[0]


# --- (c) the reload endpoint never reachable from outside the pod ----------------------------


def test_no_public_socket_accepts_a_reload(tmp_path: Path) -> None:
    """With every default (ADMIN_HOST=0.0.0.0, as in a pod), only the loopback control socket reloads.

    The exporter runs in a network namespace of its own, so its 0.0.0.0 sockets are exactly as
    reachable as in a pod and nothing outside this test can reach them; its default ports are free there.
    """
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(MAPPING)
    network = PrivateNetwork()
    process = ServiceProcess(
        network.command([sys.executable, "-m", "metrics_exporter"]),
        {"EXPORTER_CONFIG": str(mapping), "EXPORTER_JSON_URL": ""},
        tmp_path / "exporter.log",
    ).start()
    try:
        process.wait_for(lambda: network.request("GET", "http://127.0.0.1:9102/readyz")[0] == 200, "/readyz")
        sockets = listening_sockets(process.pid)
        assert [s for s in sockets if not s.loopback_only], f"the admin port binds every interface: {sockets}"
        answers = {
            (s.address, s.port): network.request("POST", f"http://{s.reachable_address}:{s.port}/-/reload")
            for s in sockets
        }
        for s in sockets:
            status, body = answers[(s.address, s.port)]
            if s.loopback_only:
                assert status == 200, (s, body)
                assert json.loads(body)["status"] == "reloaded"
            else:
                assert status == 404, (s, body)
                assert json.loads(body) == {"error": "not found", "detail": "/-/reload"}
        assert ("127.0.0.1", 9101) in answers, f"the control port listens on loopback: {sockets}"
    finally:
        process.stop()
        network.close()
