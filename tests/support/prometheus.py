"""Debian's Prometheus as a real process on a free loopback port, scraping loopback ports every second."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from tests.support.ports import free_tcp_port
from tests.support.processes import ServiceProcess, http_ready
from tests.support.tools import require_tool


class Prometheus:
    """Scrapes ``127.0.0.1:<port>`` of each of ``ports`` at ``metrics_path``; ``start()`` waits for /-/ready."""

    def __init__(self, workdir: Path, ports: Sequence[int], metrics_path: str = "/metrics") -> None:
        binary = require_tool("prometheus", "it scrapes what the test runs")
        config = workdir / "prometheus.yml"
        targets = json.dumps([f"127.0.0.1:{port}" for port in ports])
        config.write_text(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
            f"scrape_configs:\n  - job_name: test\n    metrics_path: {metrics_path}\n"
            f"    static_configs:\n      - targets: {targets}\n"
        )
        self.url = f"http://127.0.0.1:{free_tcp_port()}"
        argv = [binary, f"--config.file={config}", f"--storage.tsdb.path={workdir / 'tsdb'}"]
        argv += [f"--web.listen-address={self.url.removeprefix('http://')}", "--log.level=warn"]
        self.process = ServiceProcess(argv, {}, workdir / "prometheus.log")

    def start(self) -> Prometheus:
        self.process.start().wait_for(http_ready(self.url + "/-/ready"), "/-/ready to answer 200")
        return self

    def __enter__(self) -> Prometheus:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.process.stop()

    def api(self, path: str, **params: str) -> Any:
        """``data`` of a successful answer of the HTTP API's ``/api/v1/<path>``."""
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}", timeout=20) as r:
            answer = json.load(r)
        assert answer["status"] == "success", answer
        return answer["data"]

    def value(self, expression: str) -> float | None:
        """The value of an instant query that yields exactly one sample, else None."""
        result = self.api("query", query=expression)["result"]
        return float(result[0]["value"][1]) if len(result) == 1 else None


StartPrometheus = Callable[..., Prometheus]  # (ports, metrics_path="/metrics"): the integration fixture prometheus
