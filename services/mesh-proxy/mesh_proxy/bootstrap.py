"""Render Envoy's bootstrap and the files it reads from MESH_RUN_DIR, all from the settings.

One Envoy per pod plays both roles at once:

- **inbound** — MESH_INBOUND_HOST:MESH_INBOUND_PORT (8443), TLS that requires a client
  certificate signed by the lab CA; RBAC admits only MESH_ALLOWED_PRINCIPALS (the peer
  certificate's URI SAN) on MESH_ALLOWED_PATH_PREFIXES; then the local app on
  MESH_APP_HOST:MESH_APP_PORT. Static: it changes with the pod, not with policy.
- **outbound** — 127.0.0.1:MESH_OUTBOUND_PORT (8001) in plaintext from the app; routes
  (RDS) and the ``upstream`` cluster (CDS) come from the policy files, which reach
  the upstream's inbound port over mTLS and check its SPIFFE ID.

Plus the admin interface on 127.0.0.1:MESH_ADMIN_PORT and a listener on
MESH_STATS_HOST:MESH_STATS_PORT that forwards only ``/ready`` and
``/stats/prometheus`` to it (probes and Prometheus must never reach
``/quitquitquit``). Certificates come through SDS from files with
``watched_directory`` on MESH_CERT_DIR: a kubelet ``..data`` swap is a rotation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mesh_proxy import policy
from mesh_proxy.access_log import access_log
from mesh_proxy.cert_dir import CA_CERT, TLS_CERT, TLS_KEY
from mesh_proxy.settings import Settings
from sidecar_common.durable import replace_file

BOOTSTRAP_FILE = "envoy.json"
NODE_CLUSTER = "sidecar-lab"
LOCAL_APP_CLUSTER = "local_app"
ADMIN_CLUSTER = "admin"
# The only admin paths reachable from outside the pod.
PUBLIC_ADMIN_PATHS = ("/ready", "/stats/prometheus")
MAX_DOWNSTREAM_CONNECTIONS = 10_000
_HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
_ROUTER = {
    "name": "envoy.filters.http.router",
    "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
}


@dataclass(frozen=True)
class Endpoint:
    """One upstream inbound listener: an IP address and a port (EDS accepts no host names)."""

    ip: str
    port: int


def render_bootstrap(settings: Settings, node_id: str) -> dict[str, Any]:
    """The bootstrap; paths of the rendered SDS/EDS files are relative to MESH_RUN_DIR."""
    _, clusters_file = policy.policy_files(settings.policy_dir)
    return {
        "node": {"id": node_id, "cluster": NODE_CLUSTER},
        "admin": {"address": _socket("127.0.0.1", settings.admin_port)},
        "overload_manager": {
            "resource_monitors": [
                {
                    "name": "envoy.resource_monitors.global_downstream_max_connections",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.resource_monitors.downstream_connections"
                        ".v3.DownstreamConnectionsConfig",
                        "max_active_downstream_connections": MAX_DOWNSTREAM_CONNECTIONS,
                    },
                }
            ]
        },
        "dynamic_resources": {"cds_config": _policy_source(settings, clusters_file)},
        "static_resources": {
            "listeners": [
                _inbound_listener(settings),
                outbound_listener(settings, {"rds": _outbound_rds(settings)}),
                _stats_listener(settings),
            ],
            "clusters": [
                _static_cluster(LOCAL_APP_CLUSTER, settings.app_host, settings.app_port),
                _static_cluster(ADMIN_CLUSTER, "127.0.0.1", settings.admin_port),
            ],
        },
    }


def render_secrets(settings: Settings) -> dict[str, dict[str, Any]]:
    """The SDS files, by their path relative to MESH_RUN_DIR."""
    cert_dir = str(settings.cert_dir)
    # Envoy watches the directory, not the files: kubelet swaps ..data and never touches the
    # visible symlinks, so only a watch on the directory sees a rotation. Certificate and key
    # are then read together and checked to belong together.
    watched = {"path": cert_dir}
    trusted_ca = {"filename": str(settings.cert_dir / CA_CERT)}
    secrets: dict[str, dict[str, Any]] = {
        policy.WORKLOAD_CERT: {
            "tls_certificate": {
                "certificate_chain": {"filename": str(settings.cert_dir / TLS_CERT)},
                "private_key": {"filename": str(settings.cert_dir / TLS_KEY)},
                "watched_directory": watched,
            }
        },
        policy.PEER_VALIDATION: {"validation_context": {"trusted_ca": trusted_ca, "watched_directory": watched}},
        policy.UPSTREAM_VALIDATION: {
            "validation_context": {
                "trusted_ca": trusted_ca,
                "match_typed_subject_alt_names": [
                    {"san_type": "URI", "matcher": {"exact": settings.upstream_principal}}
                ],
                "watched_directory": watched,
            }
        },
    }
    return {
        policy.SDS_FILES[name]: {"resources": [{"@type": policy.SDS_RESOURCE_TYPE, "name": name, **body}]}
        for name, body in secrets.items()
    }


def render_endpoints(endpoints: list[Endpoint]) -> dict[str, Any]:
    """The EDS file of the ``upstream`` cluster."""
    return {
        "resources": [
            {
                "@type": policy.CLUSTER_LOAD_ASSIGNMENT_TYPE,
                "cluster_name": policy.UPSTREAM_CLUSTER,
                "endpoints": [{"lb_endpoints": [{"endpoint": {"address": _socket(e.ip, e.port)}} for e in endpoints]}],
            }
        ]
    }


def write_run_dir(settings: Settings, endpoints: list[Endpoint], node_id: str) -> Path:
    """Write the bootstrap, SDS and EDS files into MESH_RUN_DIR; return the bootstrap's path."""
    files: dict[str, dict[str, Any]] = {
        **render_secrets(settings),
        policy.UPSTREAM_ENDPOINTS_FILE: render_endpoints(endpoints),
        BOOTSTRAP_FILE: render_bootstrap(settings, node_id),
    }
    for relative, document in files.items():
        path = settings.run_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        replace_file(path, (json.dumps(document, indent=2) + "\n").encode(), 0o644)
    return settings.run_dir / BOOTSTRAP_FILE


def outbound_listener(settings: Settings, routes: dict[str, Any]) -> dict[str, Any]:
    """The plaintext listener on 127.0.0.1:MESH_OUTBOUND_PORT; ``routes`` holds ``rds`` or ``route_config``."""
    return {
        "name": "outbound",
        "address": _socket("127.0.0.1", settings.outbound_port),
        "filter_chains": [
            {
                "filters": [
                    _http_connection_manager(
                        "outbound",
                        routes,
                        http_filters=[
                            # Off unless a route's typed_per_filter_config (the policy) turns it on.
                            {
                                "name": "envoy.filters.http.fault",
                                "typed_config": {
                                    "@type": "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"
                                },
                            },
                            _ROUTER,
                        ],
                        access=access_log("outbound", settings.access_log),
                    )
                ]
            }
        ],
    }


def _inbound_listener(settings: Settings) -> dict[str, Any]:
    tls = {
        "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
        "require_client_certificate": True,
        "common_tls_context": {
            "tls_params": {"tls_minimum_protocol_version": "TLSv1_2"},
            "alpn_protocols": ["h2", "http/1.1"],
            "tls_certificate_sds_secret_configs": [
                {
                    "name": policy.WORKLOAD_CERT,
                    "sds_config": policy.sds_config(policy.SDS_FILES[policy.WORKLOAD_CERT]),
                }
            ],
            "validation_context_sds_secret_config": {
                "name": policy.PEER_VALIDATION,
                "sds_config": policy.sds_config(policy.SDS_FILES[policy.PEER_VALIDATION]),
            },
        },
    }
    routes = {
        "route_config": {
            "name": "inbound",
            "virtual_hosts": [
                {
                    "name": LOCAL_APP_CLUSTER,
                    "domains": ["*"],
                    "routes": [
                        {
                            "match": {"prefix": "/"},
                            "route": {
                                "cluster": LOCAL_APP_CLUSTER,
                                "timeout": _duration(settings.inbound_timeout_seconds),
                            },
                        }
                    ],
                }
            ],
        }
    }
    manager = _http_connection_manager(
        "inbound",
        routes,
        http_filters=[_rbac(settings), _ROUTER],
        access=access_log("inbound", settings.access_log),
        extra={
            # The app sees who called: x-forwarded-client-cert carries the peer's SPIFFE ID.
            "forward_client_cert_details": "SANITIZE_SET",
            "set_current_client_cert_details": {"uri": True},
            "use_remote_address": True,
            # One request id across both proxies and the app, so their log lines join up.
            "preserve_external_request_id": True,
        },
    )
    return {
        "name": "inbound",
        "address": _socket(settings.inbound_host, settings.inbound_port),
        "filter_chains": [
            {
                "transport_socket": {"name": "envoy.transport_sockets.tls", "typed_config": tls},
                "filters": [manager],
            }
        ],
    }


def _rbac(settings: Settings) -> dict[str, Any]:
    """ALLOW only the listed principals on the listed path prefixes; no policy at all denies everything."""
    policies: dict[str, Any] = {}
    if settings.allowed_principals and settings.allowed_path_prefixes:
        policies["mesh-allowed"] = {
            "permissions": [
                {"or_rules": {"rules": [{"url_path": {"path": {"prefix": p}}} for p in settings.allowed_path_prefixes]}}
            ],
            # principal_name matches the peer certificate's URI SAN first (then DNS SAN, then subject).
            "principals": [
                {"authenticated": {"principal_name": {"exact": spiffe}}} for spiffe in settings.allowed_principals
            ],
        }
    return {
        "name": "envoy.filters.http.rbac",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC",
            "rules": {"action": "ALLOW", "policies": policies},
        },
    }


def _stats_listener(settings: Settings) -> dict[str, Any]:
    get_or_head = {"name": ":method", "string_match": {"safe_regex": {"regex": "GET|HEAD"}}}
    routes: list[dict[str, Any]] = [
        {"match": {"path": path, "headers": [get_or_head]}, "route": {"cluster": ADMIN_CLUSTER, "timeout": "5s"}}
        for path in PUBLIC_ADMIN_PATHS
    ]
    routes.append(
        {
            "match": {"prefix": "/"},
            "direct_response": {
                "status": 404,
                "body": {"inline_string": json.dumps({"error": "not found", "paths": list(PUBLIC_ADMIN_PATHS)})},
            },
            "response_headers_to_add": [
                {
                    "header": {"key": "content-type", "value": "application/json"},
                    "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
                }
            ],
        }
    )
    route_config = {"name": "stats", "virtual_hosts": [{"name": "stats", "domains": ["*"], "routes": routes}]}
    manager = _http_connection_manager("stats", {"route_config": route_config}, http_filters=[_ROUTER], access=[])
    return {
        "name": "stats",
        "address": _socket(settings.stats_host, settings.stats_port),
        "filter_chains": [{"filters": [manager]}],
    }


def _http_connection_manager(
    stat_prefix: str,
    routes: dict[str, Any],
    http_filters: list[dict[str, Any]],
    access: list[dict[str, Any]],
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    config: dict[str, Any] = {
        "@type": _HCM,
        "stat_prefix": stat_prefix,
        "codec_type": "AUTO",
        # RBAC sees the path Envoy routes on: /api/../stats and //stats must not slip past a prefix rule.
        "normalize_path": True,
        "merge_slashes": True,
        "path_with_escaped_slashes_action": "REJECT_REQUEST",
        **routes,
        "http_filters": http_filters,
        **(extra or {}),
    }
    if access:
        config["access_log"] = access
    return {"name": "envoy.filters.network.http_connection_manager", "typed_config": config}


def _outbound_rds(settings: Settings) -> dict[str, Any]:
    routes_file, _ = policy.policy_files(settings.policy_dir)
    return {"route_config_name": policy.ROUTE_CONFIG_NAME, "config_source": _policy_source(settings, routes_file)}


def _policy_source(settings: Settings, path: Path) -> dict[str, Any]:
    # watched_directory on the volume's root: that is where kubelet (or the config sidecar)
    # renames ..data_tmp over ..data; the policy files themselves are never written in place.
    return {
        "resource_api_version": "V3",
        "path_config_source": {"path": str(path), "watched_directory": {"path": str(settings.policy_dir)}},
    }


def _static_cluster(name: str, ip: str, port: int) -> dict[str, Any]:
    return {
        "name": name,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": _socket(ip, port)}}]}],
        },
    }


def _socket(address: str, port: int) -> dict[str, Any]:
    return {"socket_address": {"address": address, "port_value": port}}


def _duration(seconds: float) -> str:
    return f"{seconds:.3f}s"
