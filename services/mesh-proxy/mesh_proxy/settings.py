"""The mesh proxy's settings: every port, path and identity, read once from the environment."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

from sidecar_common import SettingsError, log_level_setting, setting

SPIFFE_PREFIX = "spiffe://"
MAX_CONCURRENCY = 16


@dataclass(frozen=True)
class Settings:
    """Environment of the mesh proxy; ``python -m mesh_proxy --help`` lists it."""

    inbound_host: str = setting("MESH_INBOUND_HOST", "0.0.0.0", "address of the mTLS inbound listener")
    inbound_port: int = setting("MESH_INBOUND_PORT", 8443, "port of the mTLS inbound listener (other pods call it)")
    inbound_timeout_seconds: float = setting(
        "MESH_INBOUND_TIMEOUT_SECONDS", 15.0, "inbound route timeout: the local app must answer within this"
    )
    app_host: str = setting("MESH_APP_HOST", "127.0.0.1", "address of the local app the inbound side forwards to")
    app_port: int = setting("MESH_APP_PORT", 8080, "port of the local app")
    outbound_port: int = setting(
        "MESH_OUTBOUND_PORT", 8001, "plaintext outbound listener on 127.0.0.1 (the app's APP_UPSTREAM_URL)"
    )
    upstream_addresses: tuple[str, ...] = setting(
        "MESH_UPSTREAM_ADDRESSES",
        ("demo-app:8443",),
        "comma-separated host:port of the upstream pods' inbound listeners (names resolved at start); empty = none",
    )
    upstream_principal: str = setting(
        "MESH_UPSTREAM_PRINCIPAL",
        "spiffe://sidecar-lab.local/ns/sidecar-lab/sa/demo-app",
        "SPIFFE ID the upstream's certificate must carry (URI SAN)",
    )
    allowed_principals: tuple[str, ...] = setting(
        "MESH_ALLOWED_PRINCIPALS",
        ("spiffe://sidecar-lab.local/ns/sidecar-lab/sa/web",),
        "comma-separated SPIFFE IDs the inbound side admits (RBAC); empty = nobody",
    )
    allowed_path_prefixes: tuple[str, ...] = setting(
        "MESH_ALLOWED_PATH_PREFIXES", ("/api/",), "comma-separated path prefixes the inbound side admits (RBAC)"
    )
    admin_port: int = setting("MESH_ADMIN_PORT", 9901, "Envoy's admin interface, on 127.0.0.1 only")
    stats_host: str = setting("MESH_STATS_HOST", "0.0.0.0", "address of the /ready + /stats/prometheus listener")
    stats_port: int = setting("MESH_STATS_PORT", 9903, "port serving only /ready and /stats/prometheus")
    cert_dir: Path = setting(
        "MESH_CERT_DIR", Path("/etc/mesh/certs"), "tls.crt, tls.key, ca.crt (a Secret volume; rotation by ..data swap)"
    )
    policy_dir: Path = setting(
        "MESH_POLICY_DIR",
        Path("/etc/app/config"),
        "kubelet-style directory whose mesh/routes.yaml and mesh/clusters.yaml hold the outbound policy",
    )
    run_dir: Path = setting(
        "MESH_RUN_DIR", Path("/var/run/mesh"), "writable directory for the rendered bootstrap (an emptyDir)"
    )
    access_log: str = setting(
        "MESH_ACCESS_LOG", "/var/log/app/envoy-access.log", "JSON access log file; empty = Envoy's stdout"
    )
    concurrency: int = setting("MESH_CONCURRENCY", 1, "Envoy worker threads (--concurrency)")
    drain_seconds: int = setting("MESH_DRAIN_SECONDS", 5, "Envoy --drain-time-s")
    retry_seconds: float = setting(
        "MESH_RETRY_SECONDS", 1.0, "while certificates, policy or upstream are unusable at start, re-check this often"
    )
    log_level: str = log_level_setting()  # the wrapper's and Envoy's

    def validate(self) -> None:
        """Refuse values that parse but cannot work, naming the variable."""
        ports = (
            ("MESH_INBOUND_PORT", self.inbound_port),
            ("MESH_APP_PORT", self.app_port),
            ("MESH_OUTBOUND_PORT", self.outbound_port),
            ("MESH_ADMIN_PORT", self.admin_port),
            ("MESH_STATS_PORT", self.stats_port),
        )
        for variable, port in ports:
            if not 1 <= port <= 65535:
                raise SettingsError(variable, f"{port} is not a port (1-65535)")
        # The app's port may equal none of ours: every listener binds its own port on the pod's localhost.
        seen: dict[int, str] = {}
        for variable, port in ports:
            if port in seen:
                raise SettingsError(variable, f"port {port} is also {seen[port]}")
            seen[port] = variable
        for variable, seconds in (
            ("MESH_INBOUND_TIMEOUT_SECONDS", self.inbound_timeout_seconds),
            ("MESH_RETRY_SECONDS", self.retry_seconds),
        ):
            if seconds <= 0:
                raise SettingsError(variable, f"must be > 0, got {seconds}")
        if not 1 <= self.concurrency <= MAX_CONCURRENCY:
            raise SettingsError("MESH_CONCURRENCY", f"{self.concurrency} is outside 1-{MAX_CONCURRENCY}")
        if self.drain_seconds < 0:
            raise SettingsError("MESH_DRAIN_SECONDS", f"must be >= 0, got {self.drain_seconds}")
        for variable, host in (
            ("MESH_INBOUND_HOST", self.inbound_host),
            ("MESH_APP_HOST", self.app_host),
            ("MESH_STATS_HOST", self.stats_host),
        ):
            try:
                ipaddress.ip_address(host)
            except ValueError:
                raise SettingsError(
                    variable, f"{host!r} is not an IP address (Envoy binds and connects to IPs)"
                ) from None
        for address in self.upstream_addresses:
            try:
                split_host_port(address)
            except ValueError as exc:
                raise SettingsError("MESH_UPSTREAM_ADDRESSES", str(exc)) from None
        for variable, ids in (
            ("MESH_UPSTREAM_PRINCIPAL", (self.upstream_principal,)),
            ("MESH_ALLOWED_PRINCIPALS", self.allowed_principals),
        ):
            for spiffe in ids:
                if not spiffe.startswith(SPIFFE_PREFIX) or len(spiffe) <= len(SPIFFE_PREFIX):
                    raise SettingsError(variable, f"{spiffe!r} is not a SPIFFE ID (spiffe://<trust domain>/...)")
        for prefix in self.allowed_path_prefixes:
            if not prefix.startswith("/"):
                raise SettingsError("MESH_ALLOWED_PATH_PREFIXES", f"{prefix!r} must start with /")
        if self.access_log and not self.access_log.startswith("/"):
            raise SettingsError("MESH_ACCESS_LOG", f"{self.access_log!r} must be an absolute path (or empty)")


def split_host_port(address: str) -> tuple[str, int]:
    """Split ``host:port`` (``[v6]:port`` too); raise ValueError with a readable reason."""
    host, sep, port_text = address.strip().rpartition(":")
    if not sep or not host or not port_text.isdigit():
        raise ValueError(f"{address!r} is not host:port")
    port = int(port_text)
    if not 1 <= port <= 65535:
        raise ValueError(f"{address!r}: {port} is not a port (1-65535)")
    return host.removeprefix("[").removesuffix("]"), port
