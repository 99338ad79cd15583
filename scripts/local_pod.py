#!/usr/bin/env python3
"""Run the lab's two pods as local processes: the same contract as compose and Kubernetes, no Docker.

``make local`` runs this with ``.venv/bin/python``. The **api pod** is the app
with its four sidecars (config, logs, metrics, mesh proxy) on the contract
ports; the **web pod** is the web tier (a second instance of the app that calls
the api pod) with its own config sidecar, log sidecar and mesh proxy, on ports
offset by 100 and its API on 8090, as compose publishes it. Web's app calls
``http://127.0.0.1:<web's outbound port>``: web's Envoy carries the call over
mTLS to the api pod's Envoy (8443), which admits only web's SPIFFE identity, on
the API paths only, and hands it to the app on 127.0.0.1:8080.

A state directory (default ``.local-pod/``) stands in for the pods' volumes::

    config-source/   the api pod's ConfigMap volume, written kubelet-style (``..data`` swaps) from ./config
    config/          CONFIG_TARGET_DIR = APP_CONFIG_DIR = MESH_POLICY_DIR (the config sidecar publishes here)
    logs/            APP_LOG_FILE's directory and Envoy's access log (the log sidecar tails logs/*.log)
    log-state/       LOG_STATE_DIR (checkpoints, dead letters)
    certs/           MESH_CERT_DIR: the pod's certificate, a Secret volume written kubelet-style
    mesh-run/        MESH_RUN_DIR: Envoy's rendered bootstrap (an emptyDir)
    shipped-logs.jsonl   what the log sidecar delivered (LOG_SINK=file; unset ES_URL)
    run/             one pid file per container, for the failure drills
    web/             the same for the web pod (its config source comes from deploy/compose/web/config)
    ca/              the lab CA (ca.key never enters a pod's volume): the one issuing step of this run mode

Containers start in the order of the Kubernetes manifests' native sidecars
(config sidecar, log sidecar, exporter, mesh proxy, then the app; the next one
starts when the previous one's startup probe answers), the api pod before the
web pod, every port on 127.0.0.1, and output is multiplexed with honcho's
printer. Ctrl-C or SIGTERM stops them in reverse order: the web pod first, and
in each pod the app first, so its Envoy still carries the app's last calls and
the log sidecar still ships the app's final lines.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import IO

from honcho.colour import get_colours
from honcho.printer import Message, Printer

from mesh_proxy import ca, cert_dir
from sidecar_common import SettingsError, parse_cli, setting

DESCRIPTION = (
    "Run the api pod and the web pod as local processes on 127.0.0.1 (volumes in LOCAL_POD_DIR), with the "
    "mesh between them; Ctrl-C stops them in order. Every other variable (APP_WORKERS, LOG_LEVEL, "
    "CONFIG_SCHEMA_FILE, ...) passes through to the containers."
)
SYSTEM = "system"  # honcho's name for the runner's own lines
KUBELET = "kubelet"  # who writes the config-source volumes, as in a real pod
MESH_CA = "mesh-ca"  # the issuing step: creates the lab CA, writes each pod's certificate volume
PROBE_TIMEOUT_SECONDS = 1.0
RESTART_BACKOFF_MAX_SECONDS = 30.0
# Below a pod's default terminationGracePeriodSeconds (30 s), like the containers' own drain deadlines.
STOP_GRACE_SECONDS = 25.0
ROOT = Path(__file__).resolve().parents[1]
MESH_SCHEMA = ROOT / "services" / "mesh-proxy" / "schemas" / "mesh-policy.schema.json"

# The api pod's contract ports (docs/architecture.md). LOCAL_POD_PORT_OFFSET shifts every port of both pods.
API_PORTS = {
    "APP_PORT": 8080,
    "APP_CONTROL_PORT": 8079,
    "CONFIG_SIDECAR_PORT": 8081,
    "LOG_SIDECAR_PORT": 8082,
    "EXPORTER_PORT": 9102,
    "EXPORTER_CONTROL_PORT": 9101,
}
MESH_PORTS = {
    "MESH_INBOUND_PORT": 8443,
    "MESH_OUTBOUND_PORT": 8001,
    "MESH_ADMIN_PORT": 9901,
    "MESH_STATS_PORT": 9903,
}
# Both pods share this host's loopback, so the web pod's ports are the contract's plus 100 --
# except its API, on 8090 as compose publishes it.
WEB_PORT_OFFSET = 100
WEB_PORTS = {
    "WEB_PORT": 8090,
    "WEB_CONTROL_PORT": API_PORTS["APP_CONTROL_PORT"] + WEB_PORT_OFFSET,
    "WEB_CONFIG_SIDECAR_PORT": API_PORTS["CONFIG_SIDECAR_PORT"] + WEB_PORT_OFFSET,
    "WEB_LOG_SIDECAR_PORT": API_PORTS["LOG_SIDECAR_PORT"] + WEB_PORT_OFFSET,
}
WEB_MESH_PORTS = {f"WEB_{name}": port + WEB_PORT_OFFSET for name, port in MESH_PORTS.items()}
CONTRACT_STATSD_PORT = 9125
# Where these listen, whatever LOCAL_POD_HOST says: the pod's localhost only.
LOOPBACK_ONLY = frozenset(
    {
        "APP_CONTROL_PORT",
        "EXPORTER_CONTROL_PORT",
        "MESH_OUTBOUND_PORT",
        "MESH_ADMIN_PORT",
        "WEB_CONTROL_PORT",
        "WEB_MESH_OUTBOUND_PORT",
        "WEB_MESH_ADMIN_PORT",
    }
)
CONTROL_HOST = "127.0.0.1"
# Identities as in Kubernetes: namespace sidecar-lab, the pods' ServiceAccounts (k8s/base/serviceaccounts.yaml).
NAMESPACE = "sidecar-lab"
API_SERVICE_ACCOUNT = "demo-app"
WEB_SERVICE_ACCOUNT = "web"
CERT_VALIDITY = datetime.timedelta(days=1)
CA_VALIDITY = datetime.timedelta(days=365)
# Web waits for demo-app longer than its Envoy can take (a fault delay plus the route timeout of
# config/mesh/routes.yaml), so a timeout web relays is Envoy's 504, not its own (lab 05).
WEB_UPSTREAM_TIMEOUT_SECONDS = "5"


def _all_port_defaults() -> dict[str, int]:
    return {**API_PORTS, **MESH_PORTS, **WEB_PORTS, **WEB_MESH_PORTS, "STATSD_PORT": CONTRACT_STATSD_PORT}


@dataclass(frozen=True)
class Settings:
    """What the runner reads from its environment; every service variable also passes through."""

    state_dir: Path = setting("LOCAL_POD_DIR", Path(".local-pod"), "state directory holding the volume stand-ins")
    config_dir: Path = setting("LOCAL_POD_CONFIG", Path("config"), "the api pod's config source, copied at start")
    web_config_dir: Path = setting(
        "LOCAL_POD_WEB_CONFIG", Path("deploy/compose/web/config"), "the web pod's config source, copied at start"
    )
    mesh: bool = setting("LOCAL_POD_MESH", True, "run each pod's mesh proxy (Envoy, mTLS between the pods)")
    web: bool = setting("LOCAL_POD_WEB", True, "run the web pod (it calls the api pod, through the mesh if on)")
    host: str = setting("LOCAL_POD_HOST", "127.0.0.1", "address every container listens on (the pod's localhost)")
    port_offset: int = setting("LOCAL_POD_PORT_OFFSET", 0, "added to every port of both pods (e.g. 100 -> 8180...)")
    app_port: int | None = setting(
        "APP_PORT", None, "app port (8080 + offset); with the mesh on 127.0.0.1 only, whatever LOCAL_POD_HOST says"
    )
    app_control_port: int | None = setting(
        "APP_CONTROL_PORT", None, "app control port, POST /-/reload, on 127.0.0.1 only (8079 + offset)"
    )
    config_sidecar_port: int | None = setting("CONFIG_SIDECAR_PORT", None, "config sidecar admin port (8081 + offset)")
    log_sidecar_port: int | None = setting("LOG_SIDECAR_PORT", None, "log sidecar admin port (8082 + offset)")
    exporter_port: int | None = setting("EXPORTER_PORT", None, "exporter metrics port (9102 + offset)")
    exporter_control_port: int | None = setting(
        "EXPORTER_CONTROL_PORT", None, "exporter control port, POST /-/reload (9101 + offset)"
    )
    statsd_port: int | None = setting("STATSD_PORT", None, "exporter statsd UDP port (9125 + offset)")
    mesh_inbound_port: int | None = setting(
        "MESH_INBOUND_PORT", None, "api pod's Envoy: mTLS inbound, what web's Envoy calls (8443 + offset)"
    )
    mesh_outbound_port: int | None = setting(
        "MESH_OUTBOUND_PORT", None, "api pod's Envoy: outbound, 127.0.0.1 only (8001 + offset)"
    )
    mesh_admin_port: int | None = setting(
        "MESH_ADMIN_PORT", None, "api pod's Envoy: admin, 127.0.0.1 only (9901 + offset)"
    )
    mesh_stats_port: int | None = setting(
        "MESH_STATS_PORT", None, "api pod's Envoy: /ready and /stats/prometheus (9903 + offset)"
    )
    web_port: int | None = setting("WEB_PORT", None, "web pod: web's API (8090 + offset)")
    web_control_port: int | None = setting(
        "WEB_CONTROL_PORT", None, "web pod: web's control port, 127.0.0.1 only (8179 + offset)"
    )
    web_config_sidecar_port: int | None = setting(
        "WEB_CONFIG_SIDECAR_PORT", None, "web pod: config sidecar admin port (8181 + offset)"
    )
    web_log_sidecar_port: int | None = setting(
        "WEB_LOG_SIDECAR_PORT", None, "web pod: log sidecar admin port (8182 + offset)"
    )
    web_mesh_inbound_port: int | None = setting(
        "WEB_MESH_INBOUND_PORT", None, "web pod's Envoy: mTLS inbound (8543 + offset)"
    )
    web_mesh_outbound_port: int | None = setting(
        "WEB_MESH_OUTBOUND_PORT", None, "web pod's Envoy: outbound, web's APP_UPSTREAM_URL (8101 + offset)"
    )
    web_mesh_admin_port: int | None = setting(
        "WEB_MESH_ADMIN_PORT", None, "web pod's Envoy: admin, 127.0.0.1 only (10001 + offset)"
    )
    web_mesh_stats_port: int | None = setting(
        "WEB_MESH_STATS_PORT", None, "web pod's Envoy: /ready and /stats/prometheus (10003 + offset)"
    )
    es_url: str | None = setting("ES_URL", None, "ship logs to this Elasticsearch; unset = LOG_SINK=file")
    startup_timeout: float = setting("LOCAL_POD_STARTUP_TIMEOUT", 60.0, "seconds each container has to start")
    raw_output: bool = setting("LOCAL_POD_RAW_OUTPUT", False, "print the containers' JSON log lines as they are")

    def port(self, name: str) -> int:
        """The port for ``name`` (a key of the port tables or STATSD_PORT): explicit, else default + offset."""
        explicit = getattr(self, name.lower())
        if explicit is not None:
            return int(explicit)
        return _all_port_defaults()[name] + self.port_offset

    def tcp_port_names(self) -> list[str]:
        """The TCP ports this run listens on (the mesh's and the web pod's only when they run)."""
        names = list(API_PORTS)
        if self.mesh:
            names += list(MESH_PORTS)
        if self.web:
            names += list(WEB_PORTS)
            if self.mesh:
                names += list(WEB_MESH_PORTS)
        return names

    def validate(self) -> None:
        """Reject ports out of range or shared, naming the variable; the mesh wants an IP address."""
        seen: dict[int, str] = {}
        for name in (*self.tcp_port_names(), "STATSD_PORT"):
            port = self.port(name)
            if not 0 < port < 65536:
                raise SettingsError(name, f"port {port} is out of range (check LOCAL_POD_PORT_OFFSET)")
            if name != "STATSD_PORT" and port in seen:
                raise SettingsError(name, f"port {port} is also {seen[port]}'s: every port of both pods must differ")
            seen[port] = name
        if self.mesh:
            try:
                ipaddress.ip_address(self.host)
            except ValueError:
                raise SettingsError(
                    "LOCAL_POD_HOST", f"must be an IP address with the mesh on, got {self.host!r}"
                ) from None

    def bind_host(self, name: str) -> str:
        """Where the port ``name`` listens: loopback for control, outbound and admin ports, else LOCAL_POD_HOST."""
        if name in LOOPBACK_ONLY or (name == "APP_PORT" and self.mesh):
            return CONTROL_HOST  # with the mesh on, nothing reaches the app but through its Envoy
        return self.host

    def reach_host(self, name: str) -> str:
        """The address to call the port ``name`` at: where it listens, loopback for a wildcard."""
        host = self.bind_host(name)
        return CONTROL_HOST if ipaddress.ip_address(host).is_unspecified else host

    def url(self, name: str) -> str:
        return f"http://{self.bind_host(name)}:{self.port(name)}"


# --------------------------------------------------------------------------- the pods' volumes


@dataclass(frozen=True)
class Volumes:
    """Directories standing in for one pod's volumes, all under ``root``."""

    root: Path

    @property
    def config_source(self) -> Path:
        return self.root / "config-source"

    @property
    def config(self) -> Path:
        return self.root / "config"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def log_state(self) -> Path:
        return self.root / "log-state"

    @property
    def certs(self) -> Path:
        return self.root / "certs"

    @property
    def mesh_run(self) -> Path:
        return self.root / "mesh-run"

    @property
    def shipped_logs(self) -> Path:
        return self.root / "shipped-logs.jsonl"

    @property
    def run(self) -> Path:
        return self.root / "run"

    def recreate(self) -> None:
        """Start from empty volumes, as a new pod's emptyDirs are: remove only what we own."""
        for directory in (
            self.config_source,
            self.config,
            self.logs,
            self.log_state,
            self.certs,
            self.mesh_run,
            self.run,
        ):
            shutil.rmtree(directory, ignore_errors=True)
            directory.mkdir(parents=True)
        self.shipped_logs.unlink(missing_ok=True)


# --------------------------------------------------------------------------- the containers


@dataclass(frozen=True)
class Container:
    """One container of a pod: its command, environment and probes."""

    name: str  # as printed: the api pod's containers by their own name, the web pod's as web/<name>
    argv: tuple[str, ...]
    env: Mapping[str, str]
    url: str  # base URL of its HTTP port
    startup_path: str  # its startupProbe in k8s/base: the next container starts once this answers 200
    show: str  # the URL path printed for people once the pod is ready
    pid_file: Path
    ready_path: str = "/readyz"


@dataclass(frozen=True)
class PodSpec:
    """One pod: its name, identity, volumes and containers in start order."""

    name: str
    service_account: str
    volumes: Volumes
    config_from: Path
    containers: tuple[Container, ...]

    @property
    def identity(self) -> str:
        return ca.spiffe_id(NAMESPACE, self.service_account)


def schema_env(settings: Settings) -> dict[str, str]:
    """The config sidecar validates the mesh policy with its schema, so Envoy only ever gets a valid one.

    app.yaml gets no schema here, as before the mesh: lab 06 shows the app refusing a
    bad app.yaml itself (CONFIG_SCHEMA_FILE=... adds app.yaml's schema on top).
    """
    if not settings.mesh:
        return {}
    pairs = ",".join(f"mesh/{name}={MESH_SCHEMA}" for name in ("routes.yaml", "clusters.yaml"))
    return {"CONFIG_SCHEMAS": pairs}


def log_sink_env(settings: Settings, volumes: Volumes) -> dict[str, str]:
    if settings.es_url:
        return {"LOG_SINK": "elasticsearch", "ES_URL": settings.es_url}
    return {"LOG_SINK": "file", "LOG_FILE_SINK_PATH": str(volumes.shipped_logs)}


def mesh_proxy(
    settings: Settings,
    volumes: Volumes,
    *,
    name: str,
    prefix: str,
    app_port: int,
    upstream: str,
    upstream_principal: str,
    allowed_principals: str,
) -> Container:
    """A pod's Envoy on its four ports; policy from the config sidecar's target, certificates from certs/."""
    stats = f"{prefix}MESH_STATS_PORT"
    return Container(
        name=name,
        argv=(sys.executable, "-m", "mesh_proxy"),
        env={
            "MESH_INBOUND_HOST": settings.bind_host(f"{prefix}MESH_INBOUND_PORT"),
            "MESH_INBOUND_PORT": str(settings.port(f"{prefix}MESH_INBOUND_PORT")),
            "MESH_APP_HOST": CONTROL_HOST,
            "MESH_APP_PORT": str(app_port),
            "MESH_OUTBOUND_PORT": str(settings.port(f"{prefix}MESH_OUTBOUND_PORT")),
            "MESH_UPSTREAM_ADDRESSES": upstream,
            "MESH_UPSTREAM_PRINCIPAL": upstream_principal,
            "MESH_ALLOWED_PRINCIPALS": allowed_principals,
            "MESH_ADMIN_PORT": str(settings.port(f"{prefix}MESH_ADMIN_PORT")),
            "MESH_STATS_HOST": settings.bind_host(stats),
            "MESH_STATS_PORT": str(settings.port(stats)),
            "MESH_CERT_DIR": str(volumes.certs),
            # The config sidecar's target: Envoy watches its ..data swap for mesh/*.yaml.
            "MESH_POLICY_DIR": str(volumes.config),
            "MESH_RUN_DIR": str(volumes.mesh_run),
            "MESH_ACCESS_LOG": str(volumes.logs / "envoy-access.log"),
        },
        url=settings.url(stats),
        startup_path="/ready",  # Envoy is live: the app starts only now (holdApplicationUntilProxyStarts)
        ready_path="/ready",
        show="/stats/prometheus",
        pid_file=volumes.run / "mesh-proxy.pid",
    )


def api_pod(settings: Settings, volumes: Volumes) -> PodSpec:
    """The api pod in start order, as k8s/base/deployment-demo-app.yaml declares its native sidecars.

    The config sidecar comes first: it is ready after its first publish, so the
    mesh proxy and the app start with their config present. The mesh proxy comes
    last before the app, so the app never runs without it. Stopping runs in
    reverse: the app first, then the mesh proxy, the exporter, the log sidecar
    (still tailing while the app and Envoy write their last lines) and the config sidecar.
    """
    host = settings.host
    app_port = settings.port("APP_PORT")
    control_port = settings.port("APP_CONTROL_PORT")
    statsd_port = settings.port("STATSD_PORT")
    app_url = settings.url("APP_PORT")
    python = sys.executable
    containers = [
        Container(
            name="config-sidecar",
            argv=(python, "-m", "config_sidecar"),
            env={
                "CONFIG_SOURCE_DIR": str(volumes.config_source),
                "CONFIG_TARGET_DIR": str(volumes.config),
                "CONFIG_RELOAD_URL": f"http://{CONTROL_HOST}:{control_port}/-/reload",  # the app's control port
                **schema_env(settings),
                "ADMIN_HOST": host,
                "ADMIN_PORT": str(settings.port("CONFIG_SIDECAR_PORT")),
            },
            url=settings.url("CONFIG_SIDECAR_PORT"),
            # Ready = first publish done, so the app starts with its config (the k8s startupProbe).
            startup_path="/readyz",
            show="/status",
            pid_file=volumes.run / "config-sidecar.pid",
        ),
        Container(
            name="log-sidecar",
            argv=(python, "-m", "log_sidecar"),
            env={
                "LOG_PATHS": str(volumes.logs / "*.log"),
                "LOG_STATE_DIR": str(volumes.log_state),
                **log_sink_env(settings, volumes),
                "ADMIN_HOST": host,
                "ADMIN_PORT": str(settings.port("LOG_SIDECAR_PORT")),
                # What the Downward API gives a real pod.
                "POD_NAME": "local-pod",
                "POD_NAMESPACE": "local",
                "NODE_NAME": socket.gethostname(),
            },
            url=settings.url("LOG_SIDECAR_PORT"),
            startup_path="/livez",
            show="/metrics",
            pid_file=volumes.run / "log-sidecar.pid",
        ),
        Container(
            name="exporter",
            argv=(python, "-m", "metrics_exporter"),
            env={
                "ADMIN_HOST": host,
                "ADMIN_PORT": str(settings.port("EXPORTER_PORT")),
                "CONTROL_PORT": str(settings.port("EXPORTER_CONTROL_PORT")),
                "STATSD_HOST": host,
                "STATSD_PORT": str(statsd_port),
                "EXPORTER_JSON_URL": f"{app_url}/stats",
            },
            url=settings.url("EXPORTER_PORT"),
            startup_path="/readyz",
            show="/metrics",
            pid_file=volumes.run / "exporter.pid",
        ),
    ]
    if settings.mesh:
        containers.append(
            mesh_proxy(
                settings,
                volumes,
                name="mesh-proxy",
                prefix="",
                app_port=app_port,
                upstream="",  # the api pod calls no upstream: its outbound side answers 503
                upstream_principal=ca.spiffe_id(NAMESPACE, API_SERVICE_ACCOUNT),
                allowed_principals=ca.spiffe_id(NAMESPACE, WEB_SERVICE_ACCOUNT),  # web only (RBAC)
            )
        )
    containers.append(
        Container(
            name="app",
            argv=(python, "-m", "demo_app"),
            env={
                "APP_HOST": settings.bind_host("APP_PORT"),
                "APP_PORT": str(app_port),
                "CONTROL_PORT": str(control_port),
                "APP_CONFIG_DIR": str(volumes.config),
                "APP_LOG_FILE": str(volumes.logs / "app.log"),
                "STATSD_HOST": host,
                "STATSD_PORT": str(statsd_port),
                "DB_HOST": os.environ.get("DB_HOST", "localhost"),
            },
            url=app_url,
            startup_path="/readyz",
            show="/api/greeting",
            pid_file=volumes.run / "app.pid",
        )
    )
    return PodSpec("api", API_SERVICE_ACCOUNT, volumes, settings.config_dir, tuple(containers))


def web_pod(settings: Settings, volumes: Volumes) -> PodSpec:
    """The web pod: web's app behind its own config sidecar, log sidecar and mesh proxy (no exporter).

    Web's app calls its Envoy's outbound port in plain text; Envoy carries the call
    to the api pod's inbound port over mTLS and checks the api pod's identity.
    Without the mesh, web calls the api pod's app directly.
    """
    host = settings.host
    web_port = settings.port("WEB_PORT")
    control_port = settings.port("WEB_CONTROL_PORT")
    python = sys.executable
    if settings.mesh:
        upstream_url = f"http://{CONTROL_HOST}:{settings.port('WEB_MESH_OUTBOUND_PORT')}"
    else:
        upstream_url = settings.url("APP_PORT")
    containers = [
        Container(
            name="web/config-sidecar",
            argv=(python, "-m", "config_sidecar"),
            env={
                "CONFIG_SOURCE_DIR": str(volumes.config_source),
                "CONFIG_TARGET_DIR": str(volumes.config),
                "CONFIG_RELOAD_URL": f"http://{CONTROL_HOST}:{control_port}/-/reload",
                **schema_env(settings),
                "ADMIN_HOST": host,
                "ADMIN_PORT": str(settings.port("WEB_CONFIG_SIDECAR_PORT")),
            },
            url=settings.url("WEB_CONFIG_SIDECAR_PORT"),
            startup_path="/readyz",
            show="/status",
            pid_file=volumes.run / "config-sidecar.pid",
        ),
        Container(
            name="web/log-sidecar",
            argv=(python, "-m", "log_sidecar"),
            env={
                "LOG_PATHS": str(volumes.logs / "*.log"),
                "LOG_STATE_DIR": str(volumes.log_state),
                **log_sink_env(settings, volumes),
                "ADMIN_HOST": host,
                "ADMIN_PORT": str(settings.port("WEB_LOG_SIDECAR_PORT")),
                "POD_NAME": "local-web-pod",
                "POD_NAMESPACE": "local",
                "NODE_NAME": socket.gethostname(),
            },
            url=settings.url("WEB_LOG_SIDECAR_PORT"),
            startup_path="/livez",
            show="/metrics",
            pid_file=volumes.run / "log-sidecar.pid",
        ),
    ]
    if settings.mesh:
        containers.append(
            mesh_proxy(
                settings,
                volumes,
                name="web/mesh-proxy",
                prefix="WEB_",
                app_port=web_port,
                # The api pod's inbound side, where it listens.
                upstream=f"{settings.reach_host('MESH_INBOUND_PORT')}:{settings.port('MESH_INBOUND_PORT')}",
                upstream_principal=ca.spiffe_id(NAMESPACE, API_SERVICE_ACCOUNT),
                allowed_principals="",  # nobody calls web through the mesh: people call its API directly
            )
        )
    containers.append(
        Container(
            name="web/app",
            argv=(python, "-m", "demo_app"),
            env={
                "APP_NAME": "web",
                "APP_HOST": host,  # web is the front end: its API is what people call (compose publishes it)
                "APP_PORT": str(web_port),
                "CONTROL_PORT": str(control_port),
                "APP_CONFIG_DIR": str(volumes.config),
                "APP_LOG_FILE": str(volumes.logs / "app.log"),
                "APP_UPSTREAM_URL": upstream_url,
                "APP_UPSTREAM_TIMEOUT_SECONDS": WEB_UPSTREAM_TIMEOUT_SECONDS,
                "STATSD_HOST": "",  # no exporter in this pod
                "DB_HOST": os.environ.get("DB_HOST", "localhost"),
            },
            url=settings.url("WEB_PORT"),
            startup_path="/readyz",
            show="/api/greeting",
            pid_file=volumes.run / "app.pid",
        )
    )
    return PodSpec("web", WEB_SERVICE_ACCOUNT, volumes, settings.web_config_dir, tuple(containers))


def local_pods(settings: Settings, root: Path) -> list[PodSpec]:
    """The pods of this run in start order: the api pod (volumes at the root), then the web pod (under web/)."""
    pods = [api_pod(settings, Volumes(root))]
    if settings.web:
        pods.append(web_pod(settings, Volumes(root / "web")))
    return pods


def short_line(line: bytes) -> bytes:
    """Show a JSON log line as "level message" (plus its exception), other lines unchanged.

    The services log one JSON object per line for machines (the log sidecar ships
    the app's); people watching nine interleaved streams read the short form.
    Envoy logs the same keys as our services (``level``, ``msg``).
    """
    try:
        record = json.loads(line)
    except ValueError:
        return line
    if not isinstance(record, dict):
        return line
    level = record.get("log.level") or record.get("level") or ""
    message = record.get("message") or record.get("msg") or ""
    short = f"{str(level).lower():<7} {message}"
    if record.get("exception"):
        short += f"\n{record['exception']}"
    return short.encode()


def probe(url: str) -> bool:
    """True when ``url`` answers 200 within the probe timeout."""
    try:
        with urllib.request.urlopen(url, timeout=PROBE_TIMEOUT_SECONDS) as response:  # noqa: S310 - our own http URL
            return int(response.status) == 200
    except (urllib.error.URLError, OSError):
        return False


def busy_ports(settings: Settings) -> list[str]:
    """Ports already taken, so a clash fails before anything starts."""
    taken = []
    checks = [(name, settings.port(name), socket.SOCK_STREAM) for name in settings.tcp_port_names()]
    checks.append(("STATSD_PORT", settings.port("STATSD_PORT"), socket.SOCK_DGRAM))
    for name, port, kind in checks:
        with socket.socket(socket.AF_INET, kind) as sock:
            if kind == socket.SOCK_STREAM:
                # As the servers do: a TIME_WAIT left by the last pod's probes is no clash; a listener is.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((settings.bind_host(name), port))
            except OSError:
                taken.append(f"{name}={port}{'/udp' if kind == socket.SOCK_DGRAM else ''}")
    return taken


# --------------------------------------------------------------------------- the lab CA


def lab_authority(directory: Path, now: datetime.datetime) -> tuple[ca.Authority, str]:
    """The lab CA in ``directory``: kept across runs while usable for another day, else made anew."""
    try:
        authority = ca.load_authority(directory)
        if authority.certificate.not_valid_after_utc - now > 2 * CERT_VALIDITY:
            return authority, "kept"
        reason = "expires soon"
    except ca.CaError as exc:
        reason = "none yet" if not (directory / ca.CA_CERT).exists() else str(exc)
    for name in (ca.CA_CERT, ca.CA_KEY):
        (directory / name).unlink(missing_ok=True)
    directory.mkdir(parents=True, exist_ok=True)
    return ca.create_authority(directory, CA_VALIDITY, now), f"created ({reason})"


# --------------------------------------------------------------------------- supervision


class PodStartError(Exception):
    """A container exited or never answered its startup probe while the pods were starting."""

    def __init__(self, container: str, reason: str) -> None:
        super().__init__(f"{container}: {reason}")
        self.container = container
        self.reason = reason


@dataclass
class Running:
    """A started container: its process and restart bookkeeping."""

    container: Container
    colour: str
    process: subprocess.Popen[bytes]
    started_at: float
    restarts: int = 0
    restart_at: float | None = None  # set while waiting out the restart back-off


class Supervisor:
    """Start, watch, restart and stop the pods' containers, printing their output with honcho.

    honcho's own Manager would do the multiplexing, but on Ctrl-C it terminates
    every process at once; a pod stops the app first and its sidecars after, in
    reverse start order, so Envoy still carries the app's last calls and the log
    sidecar still ships the app's last lines. So each container runs in its own
    session (the terminal's Ctrl-C reaches only this runner) and the runner does
    the ordered stop itself.
    """

    def __init__(self, pods: list[PodSpec], printer: Printer, raw_output: bool) -> None:
        self.pods = pods
        self.containers = [container for pod in pods for container in pod.containers]
        self.raw_output = raw_output
        self.printer = printer
        self.printer.width = max(len(SYSTEM), len(KUBELET), len(MESH_CA), *(len(c.name) for c in self.containers))
        self.lines: queue.Queue[Message] = queue.Queue()
        self.running: dict[str, Running] = {}
        self.stop_requested = threading.Event()
        self.force = threading.Event()
        self._colours: Iterator[str] = get_colours()

    # Signals ----------------------------------------------------------------
    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        # Only set events here; the main loop does the work (printing from a handler can deadlock).
        if self.stop_requested.is_set():
            self.force.set()
        self.stop_requested.set()

    # Output -----------------------------------------------------------------
    def say(self, text: str, name: str = SYSTEM) -> None:
        self.printer.write(Message("line", text, datetime.datetime.now(), name, None))

    def pump(self, seconds: float) -> None:
        """Print queued output for up to ``seconds`` (returns early on a stop request)."""
        deadline = time.monotonic() + seconds
        while True:
            remaining = deadline - time.monotonic()
            try:
                message = self.lines.get(timeout=max(0.0, min(remaining, 0.1)))
            except queue.Empty:
                if remaining <= 0 or self.stop_requested.is_set():
                    return
                continue
            self.printer.write(message)

    def _read_output(self, name: str, colour: str, stream: IO[bytes]) -> None:
        for line in iter(stream.readline, b""):
            shown = line if self.raw_output else short_line(line)
            self.lines.put(Message("line", shown, datetime.datetime.now(), name, colour))
        stream.close()

    # Lifecycle --------------------------------------------------------------
    def spawn(self, container: Container, restarts: int = 0) -> Running:
        colour = self.running[container.name].colour if container.name in self.running else next(self._colours)
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **container.env}
        process = subprocess.Popen(
            container.argv,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C in the terminal must not reach it: we stop it in order
        )
        assert process.stdout is not None
        threading.Thread(target=self._read_output, args=(container.name, colour, process.stdout), daemon=True).start()
        container.pid_file.write_text(f"{process.pid}\n")
        self.say(f"{container.name} started (pid {process.pid})")
        running = Running(container, colour, process, time.monotonic(), restarts)
        self.running[container.name] = running
        return running

    def start_all(self, timeout: float) -> None:
        """Start each container once the previous one passed its startup probe."""
        for container in self.containers:
            running = self.spawn(container)
            deadline = time.monotonic() + timeout
            while not probe(container.url + container.startup_path):
                if self.stop_requested.is_set():
                    return
                if running.process.poll() is not None:
                    self.pump(0.3)  # print its last words before the error
                    raise PodStartError(container.name, f"exited with status {running.process.returncode}")
                if time.monotonic() > deadline:
                    raise PodStartError(container.name, f"{container.startup_path} not 200 after {timeout:.0f}s")
                self.pump(0.2)

    def wait_ready(self, timeout: float) -> list[str]:
        """Poll every container's readiness; return the names still not ready at the deadline."""
        deadline = time.monotonic() + timeout
        pending = list(self.containers)
        while pending and time.monotonic() < deadline and not self.stop_requested.is_set():
            pending = [c for c in pending if not probe(c.url + c.ready_path)]
            self.pump(0.2)
        return [c.name for c in pending]

    def supervise(self) -> None:
        """Print output and restart exited containers with back-off until a stop is requested."""
        while not self.stop_requested.is_set():
            self.pump(0.2)
            now = time.monotonic()
            for running in list(self.running.values()):
                if running.restart_at is None and running.process.poll() is not None:
                    self._schedule_restart(running, now)
                elif running.restart_at is not None and now >= running.restart_at and not self.stop_requested.is_set():
                    self.spawn(running.container, running.restarts + 1)

    def _schedule_restart(self, running: Running, now: float) -> None:
        # kubelet's restartPolicy: Always, with its doubling back-off (from 1 s here, not 10 s: a dev loop).
        kill_group(running.process)
        self.pump(0.2)
        uptime = now - running.started_at
        if uptime > 2 * RESTART_BACKOFF_MAX_SECONDS:
            running.restarts = 0
        delay = min(RESTART_BACKOFF_MAX_SECONDS, 2.0**running.restarts)
        running.restart_at = now + delay
        self.say(
            f"{running.container.name} exited (status {running.process.returncode}); "
            f"restarting in {delay:.0f}s (restart #{running.restarts + 1}, like kubelet)"
        )

    def stop_all(self) -> bool:
        """Stop the containers in reverse start order; return False if one had to be killed."""
        clean = True
        for container in reversed(self.containers):
            running = self.running.pop(container.name, None)
            if running is None:
                continue
            clean = self._stop(running) and clean
            container.pid_file.unlink(missing_ok=True)
        self.pump(0.1)
        return clean

    def _stop(self, running: Running) -> bool:
        process, name = running.process, running.container.name
        if process.poll() is not None:
            kill_group(process)
            return True
        self.say(f"stopping {name} (SIGTERM)")
        # The leader only: gunicorn's master drains its own workers; the mesh proxy is Envoy itself (exec).
        process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        while process.poll() is None and time.monotonic() < deadline and not self.force.is_set():
            self.pump(0.1)
        killed = process.poll() is None
        if killed:
            self.say(f"{name} did not stop in time: SIGKILL")
        kill_group(process)
        self.pump(0.2)
        self.say(f"{name} stopped (status {process.returncode})")
        return not killed


def kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL whatever is left of the container's process group (e.g. orphaned gunicorn workers)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(5)


# --------------------------------------------------------------------------- main


def populate_config_source(pod: PodSpec, supervisor: Supervisor) -> None:
    """Write the pod's config into its config-source the way kubelet writes a ConfigMap volume (``..data`` swap)."""
    target = pod.volumes.config_source
    swap = ("kubelet-swap", "--from", str(pod.config_from), "--to", str(target))
    result = subprocess.run(
        [sys.executable, "-m", "config_sidecar", *swap],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    for line in (result.stdout + result.stderr).splitlines():
        supervisor.say(line, KUBELET)
    # A Ctrl-C right now reaches the child too (same process group): that is a stop, not a failure.
    if result.returncode != 0 and not supervisor.stop_requested.is_set():
        raise PodStartError(KUBELET, f"could not write {target} from {pod.config_from}")


def issue_certificates(pods: list[PodSpec], ca_dir: Path, supervisor: Supervisor) -> None:
    """The run mode's one issuing step: the lab CA (kept in ca/), then each pod's certificate, kubelet-style."""
    now = datetime.datetime.now(datetime.UTC)
    try:
        authority, how = lab_authority(ca_dir, now)
        supervisor.say(
            f"{ca_dir}: lab CA {how}, valid until {authority.certificate.not_valid_after_utc:%Y-%m-%d}", MESH_CA
        )
        for pod in pods:
            workload = ca.issue(authority, pod.identity, CERT_VALIDITY, now)
            version = cert_dir.publish(pod.volumes.certs, workload)
            supervisor.say(f"{pod.volumes.certs}: ..data -> {version.name}: {pod.identity}", MESH_CA)
    except (ca.CaError, OSError) as exc:
        raise PodStartError(MESH_CA, str(exc)) from None


def another_runner_pid(run_dir: Path) -> int | None:
    """The pid of a runner already using this state directory, if it is alive."""
    try:
        pid = int((run_dir / "local-pod.pid").read_text())
        os.kill(pid, 0)
    except (FileNotFoundError, ValueError, ProcessLookupError):
        return None
    except PermissionError:
        return pid
    return pid


def print_ready(supervisor: Supervisor, settings: Settings, root: Path, seconds: float) -> None:
    say = supervisor.say
    what = " and ".join(f"{pod.name} pod" for pod in supervisor.pods)
    say(f"local pod ready in {seconds:.1f}s ({what}); volumes in {root}/")
    for pod in supervisor.pods:
        say(f"  {pod.name} pod" + (f", {pod.identity}" if settings.mesh else ""))
        for container in reversed(pod.containers):
            say(f"    {container.name:<18} {container.url}{container.show}")
    say(f"    {'statsd':<18} {settings.host}:{settings.port('STATSD_PORT')}/udp")
    say(f"    {'app control':<18} {CONTROL_HOST}:{settings.port('APP_CONTROL_PORT')} (POST /-/reload)")
    say(f"    {'exporter ctl':<18} {CONTROL_HOST}:{settings.port('EXPORTER_CONTROL_PORT')} (POST /-/reload)")
    if settings.mesh:
        say(
            f"    {'mesh':<18} inbound (mTLS only) {settings.host}:{settings.port('MESH_INBOUND_PORT')}"
            f", outbound {CONTROL_HOST}:{settings.port('MESH_OUTBOUND_PORT')}"
            f", admin {CONTROL_HOST}:{settings.port('MESH_ADMIN_PORT')}"
        )
    if settings.web:
        if settings.mesh:
            say(
                f"    {'web/mesh':<18} web -> {CONTROL_HOST}:{settings.port('WEB_MESH_OUTBOUND_PORT')} -> mTLS -> "
                f"{settings.reach_host('MESH_INBOUND_PORT')}:{settings.port('MESH_INBOUND_PORT')} -> app"
                f"; admin {CONTROL_HOST}:{settings.port('WEB_MESH_ADMIN_PORT')}"
            )
        else:
            say(f"    {'web upstream':<18} {settings.url('APP_PORT')} (no mesh)")
    where = f"Elasticsearch at {settings.es_url}" if settings.es_url else "shipped-logs.jsonl in each pod's volumes"
    say(f"  shipped logs: {where}")
    say(
        f"edit {settings.config_dir}/app.yaml, then run `make config-push`"
        + (f" (web's: {settings.web_config_dir}/, `make config-push pod=web`)" if settings.web else "")
        + "; Ctrl-C stops the pods"
    )


def run(settings: Settings) -> int:
    root = settings.state_dir.absolute()
    pods = local_pods(settings, root)
    supervisor = Supervisor(pods, Printer(sys.stdout), settings.raw_output)
    api_run = pods[0].volumes.run
    other = another_runner_pid(api_run)
    if other is not None:
        supervisor.say(f"a local pod (pid {other}) already runs in {root}/; stop it first")
        return 1
    taken = busy_ports(settings)
    if taken:
        supervisor.say(f"ports in use: {', '.join(taken)} (is `make up` or another pod running?)")
        supervisor.say("set LOCAL_POD_PORT_OFFSET=2000 (or APP_PORT=... etc.) to run on other ports")
        return 1
    for pod in pods:
        pod.volumes.recreate()
    (api_run / "local-pod.pid").write_text(f"{os.getpid()}\n")
    supervisor.install_signal_handlers()
    began = time.monotonic()
    status = 0
    try:
        for pod in pods:
            if not supervisor.stop_requested.is_set():
                populate_config_source(pod, supervisor)
        if settings.mesh and not supervisor.stop_requested.is_set():
            issue_certificates(pods, root / "ca", supervisor)
        if not supervisor.stop_requested.is_set():
            supervisor.start_all(settings.startup_timeout)
        late = [] if supervisor.stop_requested.is_set() else supervisor.wait_ready(settings.startup_timeout)
        if late:
            supervisor.say(f"not ready yet: {', '.join(late)} (see their output above); still running")
        if not supervisor.stop_requested.is_set():
            print_ready(supervisor, settings, root, time.monotonic() - began)
            supervisor.supervise()
        supervisor.say("stopping: the web pod, then the api pod; in each the app first, then its sidecars in reverse")
    except PodStartError as exc:
        supervisor.say(f"the pod did not start: {exc}")
        status = 1
    finally:
        clean = supervisor.stop_all()
        (api_run / "local-pod.pid").unlink(missing_ok=True)
    supervisor.say("local pod stopped" if clean else "local pod stopped (some containers had to be killed)")
    return status


def main(argv: list[str] | None = None) -> int:
    settings, _ = parse_cli(Settings, prog="local_pod.py", description=DESCRIPTION, argv=argv)
    return run(settings)


if __name__ == "__main__":
    sys.exit(main())
