"""Mesh proxies as real processes (real Envoy) in front of scripted stand-in apps, on 127.0.0.1.

Each ``MeshProxy`` is ``python -m mesh_proxy`` with every port from a free port,
its own certificate directory (issued by a test CA), a kubelet-style policy
volume and a run directory; after its start the process *is* Envoy (exec), so
its PID is Envoy's. ``scripted_app`` is the local app behind an inbound side:
``/api/slow?seconds=N`` answers after N seconds, ``/api/flaky`` fails two calls out of
three, anything else answers 200 with the app's name (or 500, if it fails everything).
"""

from __future__ import annotations

import copy
import http.client
import socket
import ssl
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

from mesh_proxy import ca, cert_dir
from tests.support import ServiceProcess, free_tcp_port
from tests.support.http_stub import HttpStub, Request, json_reply
from tests.support.kubelet import KubeletVolume

ROOT = Path(__file__).resolve().parents[2]
NAMESPACE = "sidecar-lab"
WEB = "web"
API = "demo-app"


def spiffe(service_account: str) -> str:
    return ca.spiffe_id(NAMESPACE, service_account)


def default_policy() -> dict[str, dict[str, Any]]:
    """The shipped policy (config/mesh/), as documents the tests edit."""
    return {
        name: yaml.safe_load((ROOT / "config" / "mesh" / name).read_text()) for name in ("routes.yaml", "clusters.yaml")
    }


def policy(
    *,
    timeout: str = "2s",
    retries: int = 2,
    per_try_timeout: str = "1s",
    abort_percent: int = 0,
    delay_percent: int = 0,
    delay: str = "0.5s",
    consecutive_5xx: int = 3,
) -> dict[str, str]:
    """Policy files (``mesh/routes.yaml``, ``mesh/clusters.yaml``) with the knobs the tests turn."""
    docs = copy.deepcopy(default_policy())
    route = docs["routes.yaml"]["resources"][0]["virtual_hosts"][0]["routes"][0]
    route["route"]["timeout"] = timeout
    route["route"]["retry_policy"]["num_retries"] = retries
    route["route"]["retry_policy"]["per_try_timeout"] = per_try_timeout
    fault = route["typed_per_filter_config"]["envoy.filters.http.fault"]
    fault["abort"]["percentage"]["numerator"] = abort_percent
    fault["delay"]["percentage"]["numerator"] = delay_percent
    fault["delay"]["fixed_delay"] = delay
    docs["clusters.yaml"]["resources"][0]["outlier_detection"]["consecutive_5xx"] = consecutive_5xx
    return {f"mesh/{name}": yaml.safe_dump(doc, sort_keys=False) for name, doc in docs.items()}


StartApp = Callable[..., HttpStub]  # (name, fail_everything=False): the conftest fixture start_app


def scripted_app(name: str, fail_everything: bool = False) -> HttpStub:
    """The app behind an inbound side (keep-alive, as Envoy's upstream connections are); not started yet."""
    if fail_everything:
        return HttpStub(json_reply({"server": name, "error": "always failing"}, 500), keep_alive=True)
    app = HttpStub(lambda request: json_reply({"server": name, "path": request.route}), keep_alive=True)
    slow = {"server": name, "path": "/api/slow"}
    app.answer(lambda request: json_reply(slow, delay=seconds_asked(request)), path="/api/slow")
    flaky = json_reply({"server": name, "error": "flaky"}, 503)
    app.answer(flaky, flaky, json_reply({"server": name, "path": "/api/flaky"}), path="/api/flaky", cycle=True)
    return app


def seconds_asked(request: Request) -> float:
    return float(parse_qs(urlsplit(request.path).query).get("seconds", ["3"])[0])


class Pki:
    """A test CA and workload certificates issued from it, written kubelet-style."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.authority = ca.create_authority(directory / "ca", timedelta(days=2), datetime.now(UTC))

    def issue(
        self, service_account: str, out: Path, *, validity: timedelta = timedelta(hours=1), now: datetime | None = None
    ) -> ca.WorkloadCertificate:
        workload = ca.issue(self.authority, spiffe(service_account), validity, now or datetime.now(UTC))
        cert_dir.publish(out, workload)
        return workload

    def client_context(self, service_account: str | None, trust: Path | None = None) -> ssl.SSLContext:
        """A TLS client context trusting this CA, presenting a fresh certificate of ``service_account``."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False  # SPIFFE certificates carry a URI SAN, no DNS name
        context.load_verify_locations(trust or self.directory / "ca" / ca.CA_CERT)
        if service_account is not None:
            out = self.directory / f"client-{service_account}"
            self.issue(service_account, out)
            context.load_cert_chain(out / cert_dir.TLS_CERT, out / cert_dir.TLS_KEY)
        return context


class MeshProxy:
    """One pod's mesh proxy; ``start()`` waits until Envoy's /ready answers 200 on the stats port."""

    def __init__(
        self,
        tmp_path: Path,
        name: str,
        *,
        app_port: int | None = None,
        upstream_ports: tuple[int, ...] = (),
        upstream_principal: str = spiffe(API),
        allowed_principals: tuple[str, ...] = (spiffe(WEB),),
        policy_files: dict[str, str] | None = None,
        access_log: bool = True,
        **env: str,
    ) -> None:
        self.name = name
        self.root = tmp_path / name
        self.cert_dir = self.root / "certs"
        self.run_dir = self.root / "run"
        self.logs = self.root / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.policy = KubeletVolume(self.root / "policy")
        self.policy.write(policy_files or policy())
        self.inbound_port, self.outbound_port = free_tcp_port(), free_tcp_port()
        self.admin_port, self.stats_port = free_tcp_port(), free_tcp_port()
        self.access_log = self.logs / "envoy-access.log"
        self.env = {
            "MESH_INBOUND_HOST": "127.0.0.1",
            "MESH_INBOUND_PORT": str(self.inbound_port),
            "MESH_OUTBOUND_PORT": str(self.outbound_port),
            "MESH_ADMIN_PORT": str(self.admin_port),
            "MESH_STATS_HOST": "127.0.0.1",
            "MESH_STATS_PORT": str(self.stats_port),
            "MESH_APP_PORT": str(app_port or free_tcp_port()),
            "MESH_UPSTREAM_ADDRESSES": ",".join(f"127.0.0.1:{port}" for port in upstream_ports),
            "MESH_UPSTREAM_PRINCIPAL": upstream_principal,
            "MESH_ALLOWED_PRINCIPALS": ",".join(allowed_principals),
            "MESH_CERT_DIR": str(self.cert_dir),
            "MESH_POLICY_DIR": str(self.policy.directory),
            "MESH_RUN_DIR": str(self.run_dir),
            "MESH_ACCESS_LOG": str(self.access_log) if access_log else "",
            "MESH_RETRY_SECONDS": "0.1",
            "LOG_LEVEL": "INFO",
            **env,
        }
        self.process = ServiceProcess.python_module("mesh_proxy", self.env, self.root / "proxy.out")

    def start(self, wait: bool = True) -> MeshProxy:
        self.process.start()
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self) -> None:
        self.process.wait_for(lambda: get(self.stats_port, "/ready")[0] == 200, f"{self.name}'s Envoy ready", 30)

    @property
    def pid(self) -> int:
        return self.process.pid

    def admin(self, path: str) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}{path}", timeout=5) as response:
            return str(response.read().decode())

    def stat(self, name: str) -> int:
        """One counter or gauge from the admin /stats (0 when Envoy has not created it)."""
        for line in self.admin(f"/stats?filter=^{name.replace('.', '[.]')}$").splitlines():
            key, _, value = line.partition(": ")
            if key == name:
                return int(value)
        return 0

    def stop(self) -> int:
        return self.process.stop()


StartProxy = Callable[..., MeshProxy]  # (name, account, **MeshProxy options): the fixture start_proxy


def get(port: int, path: str, method: str = "GET", timeout: float = 10.0) -> tuple[int, bytes]:
    """One plaintext request on a fresh connection."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request(method, path, headers={"Connection": "close"})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def tls_get(port: int, path: str, context: ssl.SSLContext, timeout: float = 10.0) -> tuple[int, bytes]:
    """One request over a fresh TLS connection (a new handshake each time)."""
    connection = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=timeout)
    try:
        connection.request("GET", path, headers={"Connection": "close"})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def peer_serial(port: int, context: ssl.SSLContext) -> int:
    """The serial number of the certificate the server on ``port`` presents now."""
    from cryptography import x509

    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="mesh") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number
