"""noida-db (PyPI) as a process speaking the Elasticsearch 8.15 API on 127.0.0.1: an independent second opinion.

The binary is run directly, not through the package's ``noida-db`` console script: that
wrapper starts it with ``subprocess.call`` and would not pass our signals on.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

import requests

from tests.support import ServiceProcess, free_tcp_port

START_TIMEOUT = 30.0
REQUEST_TIMEOUT = 10.0
MAX_RESULT_WINDOW = 10_000  # as in Elasticsearch: one search returns at most this many hits


def binary() -> Path:
    path = Path(str(files("noida_db").joinpath("noida-db")))
    assert path.is_file(), f"{path} is missing: noida-db is pinned in requirements-dev.txt (make install)"
    return path


class NoidaElasticsearch:
    """``noida-db start --only elasticsearch`` on a free port with its data in ``data_dir``."""

    def __init__(self, data_dir: Path) -> None:
        self.port = free_tcp_port()
        self.url = f"http://127.0.0.1:{self.port}"
        argv = [str(binary()), "start", "--only", "elasticsearch", "--host", "127.0.0.1"]
        argv += ["--elasticsearch-port", str(self.port), "--data-dir", str(data_dir)]
        self.process = ServiceProcess(argv, {}, data_dir.with_name(data_dir.name + ".out"))

    def start(self) -> NoidaElasticsearch:
        self.process.start().wait_for(
            lambda: requests.get(self.url + "/", timeout=2).ok, "GET / to answer", START_TIMEOUT, interval=0.1
        )
        return self

    def stop(self) -> None:
        self.process.stop(timeout=10)

    def request(self, method: str, path: str, body: Any = None) -> Any:
        response = requests.request(method, self.url + path, json=body, timeout=REQUEST_TIMEOUT)
        assert response.ok, f"{method} {path}: {response.status_code} {response.text[:500]}"
        return response.json()

    def count(self, index: str) -> int:
        """Documents in ``index`` after a refresh: like Elasticsearch, noida-db counts only what was refreshed."""
        self.request("POST", f"/{index}/_refresh")
        return int(self.request("GET", f"/{index}/_count")["count"])

    def sources(self, index: str) -> list[dict[str, Any]]:
        """Every stored document of ``index`` (at most MAX_RESULT_WINDOW)."""
        self.request("POST", f"/{index}/_refresh")
        hits = self.request("POST", f"/{index}/_search", {"size": MAX_RESULT_WINDOW, "query": {"match_all": {}}})
        return [hit["_source"] for hit in hits["hits"]["hits"]]
