"""The running compose stack as the e2e tests see it: its 127.0.0.1 ports and its containers.

Everything goes through the ports published on 127.0.0.1 (the way a person uses the
stack) or through the `docker` CLI (restarts, inspection, and `docker exec` into a pod's
pause container for what only the pod's own localhost reaches: the api app listens on
127.0.0.1 only, behind its mesh proxy, as `kubectl exec` would reach it in Kubernetes).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILES = ("docker-compose.yml", "docker-compose.ci.yml")
HTTP_TIMEOUT_SECONDS = 5.0
DOCKER_TIMEOUT_SECONDS = 180.0
# Host ports when neither the environment nor .env names them (the .env defaults).
DEFAULT_PORTS = {
    "CONFIG_SIDECAR_PORT": 8081,
    "LOG_SIDECAR_PORT": 8082,
    "EXPORTER_PORT": 9102,
    "MESH_INBOUND_PORT": 8443,
    "MESH_STATS_PORT": 9903,
    "WEB_PORT": 8090,
    "WEB_CONFIG_SIDECAR_PORT": 8181,
    "WEB_LOG_SIDECAR_PORT": 8182,
    "WEB_MESH_STATS_PORT": 10003,
    "ELASTICSEARCH_PORT": 9200,
    "PROMETHEUS_PORT": 9090,
}
# Each pod's pause container: it holds the pod's network namespace and never restarts.
PAUSE = {"api": "pause", "web": "web-pause"}
APP_PORT_IN_POD = 8080
# HTTP from inside a pod's namespace (run by the pause image's python3): one JSON line per answer.
IN_POD_CLIENT = r"""
import json, sys, urllib.error, urllib.request
url, method, headers, count = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), int(sys.argv[4])
answers = []
for _ in range(count):
    request = urllib.request.Request(url, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            answers.append({"status": response.status, "body": response.read().decode()})
    except urllib.error.HTTPError as error:
        answers.append({"status": error.code, "body": error.read().decode()})
    except OSError as error:  # no HTTP answer at all: refused, reset, closed
        answers.append({"status": None, "body": "", "error": repr(error)})
print(json.dumps(answers))
"""


class DockerCommandError(Exception):
    """A docker CLI call exited non-zero; carries the command and what it printed."""

    def __init__(self, argv: list[str], returncode: int, output: str) -> None:
        self.argv = argv
        self.returncode = returncode
        self.output = output
        super().__init__(f"{' '.join(argv)} exited {returncode}: {output[-2000:]}")


def read_dotenv(path: Path) -> dict[str, str]:
    """Parse compose's .env (KEY=VALUE lines, # comments); a missing file is empty."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        values[key.strip()] = value.strip().strip("'\"")
    return values


def run_docker(argv: list[str], env: Mapping[str, str] | None = None, timeout: float = DOCKER_TIMEOUT_SECONDS) -> str:
    """Run a docker CLI command in the repository root and return its output."""
    completed = subprocess.run(
        argv,
        cwd=REPO_ROOT,
        env=dict(env) if env is not None else None,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    output = completed.stdout + completed.stderr
    if completed.returncode != 0:
        raise DockerCommandError(argv, completed.returncode, output)
    return completed.stdout


@dataclass(frozen=True)
class PodAnswer:
    """What a request from inside a pod got: the status (None: no HTTP answer), the body, the error."""

    status: int | None
    body: str
    error: str | None = None

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class Stack:
    """One running compose project and the host ports it publishes."""

    project: str
    ports: Mapping[str, int]
    config_source: Path | None
    web_config_source: Path | None = None

    @classmethod
    def from_environment(cls) -> Stack:
        """Read the project name and ports the way compose does: environment over .env."""
        dotenv = read_dotenv(REPO_ROOT / ".env")

        def value(name: str, default: str) -> str:
            return os.environ.get(name) or dotenv.get(name) or default

        ports = {name: int(value(name, str(default))) for name, default in DEFAULT_PORTS.items()}
        project = value("COMPOSE_PROJECT_NAME", "sidecar-lab")
        source = os.environ.get("E2E_CONFIG_SOURCE")
        web_source = os.environ.get("E2E_WEB_CONFIG_SOURCE")
        return cls(
            project=project,
            ports=ports,
            config_source=Path(source) if source else None,
            web_config_source=Path(web_source) if web_source else None,
        )

    def with_discovered_config_source(self) -> Stack:
        """Fill in the config sources from the running config sidecars' bind mounts if unknown."""
        return Stack(
            self.project,
            self.ports,
            self.config_source or self._mounted_source("config-sidecar"),
            self.web_config_source or self._mounted_source("web-config-sidecar"),
        )

    def _mounted_source(self, service: str) -> Path:
        for mount in self.inspect(service)["Mounts"]:
            if mount.get("Destination") == "/config-source":
                return Path(mount["Source"])
        raise AssertionError(f"the {service} container has no /config-source mount")

    def url(self, port_name: str, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.ports[port_name]}{path}"

    @property
    def config_sidecar(self) -> str:
        return self.url("CONFIG_SIDECAR_PORT", "")

    @property
    def log_sidecar(self) -> str:
        return self.url("LOG_SIDECAR_PORT", "")

    @property
    def exporter(self) -> str:
        return self.url("EXPORTER_PORT", "")

    @property
    def web(self) -> str:
        return self.url("WEB_PORT", "")

    @property
    def web_config_sidecar(self) -> str:
        return self.url("WEB_CONFIG_SIDECAR_PORT", "")

    @property
    def web_log_sidecar(self) -> str:
        return self.url("WEB_LOG_SIDECAR_PORT", "")

    @property
    def mesh_stats(self) -> str:
        """The api pod's Envoy: /ready and /stats/prometheus."""
        return self.url("MESH_STATS_PORT", "")

    @property
    def web_mesh_stats(self) -> str:
        """The web pod's Envoy: /ready and /stats/prometheus."""
        return self.url("WEB_MESH_STATS_PORT", "")

    @property
    def elasticsearch(self) -> str:
        return self.url("ELASTICSEARCH_PORT", "")

    @property
    def prometheus(self) -> str:
        return self.url("PROMETHEUS_PORT", "")

    # --- docker -----------------------------------------------------------------------

    def compose_env(self) -> dict[str, str]:
        """The environment compose needs to interpolate the CI override (the config copies)."""
        env = dict(os.environ)
        if self.config_source is not None:
            env["E2E_CONFIG_SOURCE"] = str(self.config_source)
        if self.web_config_source is not None:
            env["E2E_WEB_CONFIG_SOURCE"] = str(self.web_config_source)
        return env

    def compose(self, *args: str, timeout: float = DOCKER_TIMEOUT_SECONDS) -> str:
        """Run `docker compose` with the CI files on this project."""
        argv = ["docker", "compose", "-p", self.project]
        for file in COMPOSE_FILES:
            argv += ["-f", file]
        return run_docker([*argv, *args], env=self.compose_env(), timeout=timeout)

    def container_ids(self, service: str | None = None, all_states: bool = False) -> list[str]:
        """Ids of the project's containers (of one service), found by compose's labels."""
        argv = ["docker", "ps", "-q", "--no-trunc", "--filter", f"label=com.docker.compose.project={self.project}"]
        if service is not None:
            argv += ["--filter", f"label=com.docker.compose.service={service}"]
        if all_states:
            argv.append("-a")
        return run_docker(argv).split()

    def inspect(self, service: str) -> dict[str, Any]:
        """`docker inspect` of the service's (only) container."""
        ids = self.container_ids(service)
        if len(ids) != 1:
            raise AssertionError(f"expected one running {service} container, found {len(ids)}")
        return inspect_container(ids[0])

    def exec_in(self, service: str, *argv: str) -> str:
        """Run a command in the service's container (no TTY) and return its stdout."""
        return self.compose("exec", "-T", service, *argv)

    # --- HTTP -------------------------------------------------------------------------

    def in_pod(
        self,
        port: int,
        path: str,
        *,
        pod: str = "api",
        host: str = "127.0.0.1",
        method: str = "GET",
        headers: Mapping[str, str] | None = None,
        count: int = 1,
    ) -> list[PodAnswer]:
        """``count`` requests to http://<host>:<port><path> from inside the pod's network namespace."""
        pause = self.container_ids(PAUSE[pod])
        if len(pause) != 1:
            raise AssertionError(f"expected one running {PAUSE[pod]} container, found {len(pause)}")
        url = f"http://{host}:{port}{path}"
        argv = ["docker", "exec", pause[0], "python3", "-c", IN_POD_CLIENT, url, method]
        output = run_docker(
            [*argv, json.dumps(dict(headers or {})), str(count)], timeout=HTTP_TIMEOUT_SECONDS * count + 30
        )
        return [PodAnswer(a["status"], a["body"], a.get("error")) for a in json.loads(output)]

    def app_get(self, path: str, headers: Mapping[str, str] | None = None) -> PodAnswer:
        """GET the api pod's app on its 127.0.0.1:8080, the only place it listens (behind its Envoy)."""
        return self.in_pod(APP_PORT_IN_POD, path, headers=headers)[0]

    def app_json(self, path: str) -> Any:
        answer = self.app_get(path)
        if answer.status != 200:
            raise AssertionError(f"GET {path} on the app answered {answer.status}: {answer.body or answer.error}")
        return answer.json()

    def get_json(self, url: str, **params: str) -> Any:
        response = requests.get(url, params=params, timeout=HTTP_TIMEOUT_SECONDS)
        response.raise_for_status()
        return response.json()

    def prometheus_query(self, expr: str) -> list[dict[str, Any]]:
        """Run an instant query on the stack's Prometheus; raise on a query error."""
        body = self.get_json(f"{self.prometheus}/api/v1/query", query=expr)
        if body.get("status") != "success":
            raise AssertionError(f"query {expr!r} failed: {body}")
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def prometheus_value(self, expr: str) -> float | None:
        """The single value of an instant query, or None when it returns no series."""
        result = self.prometheus_query(expr)
        if not result:
            return None
        if len(result) != 1:
            raise AssertionError(f"query {expr!r} returned {len(result)} series, expected one")
        return float(result[0]["value"][1])

    def emulator_docs(self, index: str = "*") -> dict[str, dict[str, Any]]:
        """Every document the Elasticsearch emulator holds, by _id."""
        body = self.get_json(f"{self.elasticsearch}/_emulator/docs", index=index)
        docs: dict[str, dict[str, Any]] = body["docs"]
        return docs


def inspect_container(container_id: str) -> dict[str, Any]:
    """`docker inspect` of one container."""
    inspected: list[dict[str, Any]] = json.loads(run_docker(["docker", "inspect", container_id]))
    return inspected[0]


def field(document: Mapping[str, Any], dotted: str) -> Any:
    """A document's field by its dotted ECS name, whether stored flat or nested."""
    if dotted in document:
        return document[dotted]
    node: Any = document
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node
