"""The demo app on real gunicorn (2 workers) on 127.0.0.1: reloads reach every worker, statsd, logs, upstream."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support import ServiceProcess, free_tcp_port, wait_until
from tests.support.http_stub import HttpStub, json_reply

WORKERS = 2
APP_YAML = "greeting: {greeting}\nchaos:\n  latency_ms: 0\n  error_rate: 0\nfeatures:\n  beta: true\n"
TRACE_HEADERS = {
    "x-request-id": "it-trace-1",
    "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    "tracestate": "vendor=value",
    "b3": "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1",
    "x-b3-traceid": "80f198ee56343ba864fe8b2a57d3eff7",
    "x-b3-spanid": "e457b5a2e4d86bd1",
    "x-b3-parentspanid": "05e3ac9a4f6e3b90",
    "x-b3-sampled": "1",
    "x-b3-flags": "0",
}


def publish(directory: Path, files: Mapping[str, str]) -> None:
    """Swap in a new config set the way kubelet and the config sidecar do (``..data`` symlink)."""
    directory.mkdir(parents=True, exist_ok=True)
    versioned = directory / f"..{time.time_ns()}"
    versioned.mkdir()
    for name, content in files.items():
        (versioned / name).write_text(content)
    (directory / "..data_tmp").symlink_to(versioned.name)
    os.replace(directory / "..data_tmp", directory / "..data")
    for name in files:
        if not (directory / name).is_symlink():
            (directory / name).symlink_to(Path("..data") / name)
    for entry in directory.iterdir():
        if entry.name.startswith("..") and entry.is_dir() and not entry.is_symlink() and entry != versioned:
            shutil.rmtree(entry)


class StatsdListener:
    """A UDP socket the test binds, collecting every statsd line the app sends."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = int(self.sock.getsockname()[1])
        self.lines: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                packet = self.sock.recv(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            self.lines.extend(packet.decode(errors="replace").splitlines())

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


# What the stand-in upstream app answers; it records the headers of every call it gets.
UPSTREAM_GREETING = {"greeting": "hello from upstream"}


@dataclass
class App:
    process: ServiceProcess
    url: str
    control_url: str  # the loopback control port: POST /-/reload
    config_dir: Path
    log_file: Path
    statsd: StatsdListener
    upstream: HttpStub

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        # A fresh connection per call (no Session), so calls spread over the workers.
        return requests.get(self.url + path, timeout=10, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return requests.post(self.url + path, timeout=10, **kwargs)

    def reload(self, **kwargs: Any) -> requests.Response:
        return requests.post(self.control_url + "/-/reload", timeout=10, **kwargs)

    def worker_pids(self) -> set[str]:
        return set(self.get("/stats").json()["workers"])

    def hit_every_worker(self, path: str = "/api/greeting") -> dict[str, list[requests.Response]]:
        """Call ``path`` until every worker answered at least once; return the answers by worker pid."""
        pids = self.worker_pids()
        assert len(pids) == WORKERS, pids
        answers: dict[str, list[requests.Response]] = {}

        def every_worker_answered() -> bool:
            response = self.get(path)
            answers.setdefault(response.headers["X-Worker-Pid"], []).append(response)
            return pids <= set(answers)

        wait_until(every_worker_answered, timeout=20, interval=0, message=f"answers from workers {sorted(pids)}")
        return answers


def start_app(tmp_path: Path, statsd: StatsdListener, upstream: HttpStub, **env: str) -> App:
    config_dir = tmp_path / "config"
    publish(config_dir, {"app.yaml": APP_YAML.format(greeting="first"), "features.json": '{"banner": true}'})
    log_file = tmp_path / "logs" / "app.log"  # the directory does not exist yet: the app creates it
    port, control_port = free_tcp_port(), free_tcp_port()
    process = ServiceProcess.python_module(
        "demo_app",
        {
            "APP_HOST": "127.0.0.1",
            "APP_PORT": str(port),
            "CONTROL_PORT": str(control_port),
            "APP_CONFIG_DIR": str(config_dir),
            "APP_LOG_FILE": str(log_file),
            "STATSD_HOST": "127.0.0.1",
            "STATSD_PORT": str(statsd.port),
            "APP_WORKERS": str(WORKERS),
            "APP_THREADS": "4",
            "APP_UPSTREAM_URL": upstream.url,
            "APP_NAME": "demo-app-it",
            **env,
        },
        tmp_path / "app.out",
    ).start()
    app = App(
        process, f"http://127.0.0.1:{port}", f"http://127.0.0.1:{control_port}", config_dir, log_file, statsd, upstream
    )

    process.wait_for(
        lambda: app.get("/readyz").status_code == 200 and len(app.worker_pids()) == WORKERS,
        "gunicorn ready with every worker",
        interval=0.1,
    )
    return app


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    statsd = StatsdListener()
    with HttpStub(json_reply(UPSTREAM_GREETING)) as upstream:
        started = start_app(tmp_path_factory.mktemp("app"), statsd, upstream)
        yield started
        code = started.process.stop()
    statsd.close()
    assert code == 0, started.process.output()


def reload_with(app: App, greeting: str) -> str:
    publish(app.config_dir, {"app.yaml": APP_YAML.format(greeting=greeting)})
    response = app.reload(json={"changed": ["app.yaml"]})
    assert response.status_code == 200, response.text
    return str(response.json()["version"])


def log_records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_every_worker_serves_the_new_config_right_after_the_reload(app: App) -> None:
    before = app.get("/api/greeting").headers["X-Config-Version"]
    version = reload_with(app, "converged")
    assert version != before
    # Not "eventually": the first answer of each worker after the reload returned already has it.
    for pid, answers in app.hit_every_worker().items():
        for answer in answers:
            assert answer.headers["X-Config-Version"] == version, f"worker {pid} still served the old config"
            assert answer.json()["greeting"] == "converged"
    workers = app.get("/stats").json()["workers"]
    assert {pid: worker["config_version"] for pid, worker in workers.items()} == dict.fromkeys(workers, version)


def test_a_refused_config_keeps_the_old_version_in_every_worker(app: App) -> None:
    good = reload_with(app, "good")
    publish(app.config_dir, {"app.yaml": "greeting: [not closed\n"})
    refused = app.reload()
    assert refused.status_code == 422
    assert refused.json()["version"] == good
    assert refused.json()["detail"].startswith("app.yaml: line 2:")
    for answers in app.hit_every_worker().values():
        assert {answer.headers["X-Config-Version"] for answer in answers} == {good}
    reloads = app.get("/stats").json()["config"]["reloads_total"]
    assert reloads["refused"] >= 1
    reload_with(app, "restored")


def test_statsd_packets_from_gunicorn_and_the_app_arrive(app: App) -> None:
    assert app.post("/api/orders", json={"item": "tea", "quantity": 1}).status_code == 201
    assert app.get("/api/work?status=503").status_code == 503
    reload_with(app, "metrics")
    app.get("/api/greeting")
    expected = {
        "gunicorn.requests:1|c",
        "gunicorn.request.status.201:1|c",
        "gunicorn.request.status.503:1|c",
        f"gunicorn.workers:{WORKERS}|g",
        "app.orders.created:1|c",
        "app.config.reloads:1|c|#result:ok",
        "app.upstream.calls:1|c|#status:200",
    }

    def all_expected_arrived() -> set[str]:
        # gunicorn appends a sample rate ("|@1.0") to counters; compare without it.
        seen = {line.replace("|@1.0", "") for line in app.statsd.lines}
        missing = expected - seen
        assert not missing, missing
        return seen

    seen = wait_until(all_expected_arrived, timeout=10, message="statsd lines")
    assert any(line.startswith("gunicorn.request.duration:") and line.endswith("|ms") for line in seen)
    assert any(line.startswith("app.upstream.duration:") for line in seen)


def test_greeting_calls_the_upstream_with_the_trace_headers(app: App) -> None:
    response = app.get("/api/greeting", headers=TRACE_HEADERS)
    assert response.status_code == 200
    assert response.json()["upstream"] == {"greeting": "hello from upstream"}
    call = next(r.headers for r in reversed(app.upstream.requests) if r.headers.get("x-request-id") == "it-trace-1")
    assert {name: call.get(name) for name in TRACE_HEADERS} == TRACE_HEADERS


def raw_exchange(app: App, request: bytes) -> bytes:
    """Send bytes no HTTP library would produce; return everything the server answered until it closed."""
    with socket.create_connection(("127.0.0.1", int(app.url.rsplit(":", 1)[1])), timeout=10) as connection:
        connection.sendall(request)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    return answer


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", b"414 URI Too Long"),
        (b"NOT HTTP AT ALL\r\n\r\n", b"400 Bad Request"),
        (b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(101)) + b"\r\n", b"431 "),
        (b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n", b"431 "),
    ],
)
def test_gunicorn_answers_malformed_http_itself_as_the_readme_says(
    app: App, request_bytes: bytes, status: bytes
) -> None:
    # services/app/README.md ("Errors gunicorn answers itself") says why these stay gunicorn's
    # HTML: if gunicorn changes them, this fails and the README gets another look.
    def warnings() -> int:
        return sum(
            record.get("log.logger") == "gunicorn.error"
            and record.get("log.level") == "warning"
            and record["message"].startswith("Invalid request from ip=127.0.0.1")
            for record in log_records(app.log_file)
        )

    before = warnings()
    head, _, body = raw_exchange(app, request_bytes).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 " + status), head
    assert b"Content-Type: text/html" in head
    assert b"Connection: close" in head
    assert body.startswith(b"<html>")
    # Still seen: gunicorn logs each one as a warning in the app's ECS log.
    wait_until(lambda: warnings() > before, timeout=10, message="gunicorn's warning in the ECS log")


def send_marked_requests(app: App, count: int) -> list[str]:
    marks = [f"rotation-{uuid.uuid4()}" for _ in range(count)]
    for mark in marks:
        assert app.get("/livez", headers={"x-request-id": mark}).status_code == 200
    return marks


def request_ids(path: Path) -> list[str]:
    return [record.get("http.request.id", "") for record in log_records(path)]


def test_logging_survives_renaming_the_file_away(app: App) -> None:
    wait_until(app.log_file.exists, timeout=10)
    rotated = app.log_file.with_name("app.log.1")
    app.log_file.rename(rotated)
    marks = send_marked_requests(app, 20)
    wait_until(lambda: set(marks) <= set(request_ids(app.log_file)), timeout=10, message="lines in the new file")
    # Every line after the rename landed in the new file, none in the renamed one, none twice.
    assert not set(marks) & set(request_ids(rotated))
    assert sorted(mark for mark in request_ids(app.log_file) if mark in marks) == sorted(marks)
    rotated.unlink()


def test_logging_survives_truncating_the_file(app: App) -> None:
    send_marked_requests(app, 5)
    os.truncate(app.log_file, 0)  # copytruncate
    marks = send_marked_requests(app, 20)
    wait_until(lambda: set(marks) <= set(request_ids(app.log_file)), timeout=10, message="lines after truncation")
    content = app.log_file.read_bytes()
    assert not content.startswith(b"\0"), "lines were written at the old offset, leaving a hole"
    assert sorted(mark for mark in request_ids(app.log_file) if mark in marks) == sorted(marks)


def test_log_lines_are_ecs_json_from_every_process(app: App) -> None:
    records = log_records(app.log_file) + [
        json.loads(line) for line in app.process.output().splitlines() if line.startswith("{")
    ]
    requests_logged = [record for record in records if record.get("event.action") == "http-request"]
    assert requests_logged
    for record in requests_logged:
        assert record["service.name"] == "demo-app-it"
        assert {"@timestamp", "log.level", "message", "http.request.method", "url.path"} <= set(record)
        assert {"http.response.status_code", "event.duration", "http.request.id", "process.pid"} <= set(record)
    # gunicorn's own messages (master and workers) use the same format, on stdout too.
    assert any(
        record.get("log.logger") == "gunicorn.error" and "Booting worker" in record["message"] for record in records
    )


def test_sigterm_lets_in_flight_requests_finish_then_exits_cleanly(tmp_path: Path) -> None:
    statsd = StatsdListener()
    upstream = HttpStub(json_reply(UPSTREAM_GREETING)).start()
    app = start_app(tmp_path, statsd, upstream)
    try:
        slow: dict[str, requests.Response] = {}
        caller = threading.Thread(target=lambda: slow.setdefault("answer", app.get("/api/work?ms=2000")))
        caller.start()
        # The /stats call itself is in flight too: more than one means the slow call is being served.
        wait_until(lambda: app.get("/stats").json()["requests_in_flight"] >= 2, timeout=10, message="slow call")
        app.process.signal(signal.SIGTERM)
        caller.join(30)
        assert slow["answer"].status_code == 200
        assert app.process.wait(30) == 0
        assert "Shutting down: Master" in app.process.output()
        with pytest.raises(requests.ConnectionError):
            app.get("/livez")
    finally:
        app.process.stop()
        upstream.stop()
        statsd.close()
