"""The outbound mesh policy: two Envoy-native filesystem-xDS files and what they may refer to.

The policy lives in the pod's config source (the app's ConfigMap, published with
nested paths) as

    <MESH_POLICY_DIR>/mesh/routes.yaml     an RDS RouteConfiguration "outbound":
                                           timeouts, retries, fault injection
    <MESH_POLICY_DIR>/mesh/clusters.yaml   a CDS Cluster "upstream": outlier ejection,
                                           circuit breakers, the retry budget

Envoy loads both with ``path_config_source`` and ``watched_directory`` on
MESH_POLICY_DIR, so kubelet's ``..data`` swap is seen and the new policy is in
force without a restart. The same files must work in every run mode (local,
compose, Kubernetes), so they hold no address, path or identity of a pod: the
cluster's endpoints and its mTLS secrets are files the mesh proxy renders from
its settings into MESH_RUN_DIR, Envoy's working directory, and the cluster
refers to them by the fixed relative paths below.
"""

from __future__ import annotations

from pathlib import Path

POLICY_SUBDIR = "mesh"
ROUTES_FILE = "routes.yaml"
CLUSTERS_FILE = "clusters.yaml"

ROUTE_CONFIG_NAME = "outbound"
UPSTREAM_CLUSTER = "upstream"

ROUTE_CONFIGURATION_TYPE = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
CLUSTER_TYPE = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
CLUSTER_LOAD_ASSIGNMENT_TYPE = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
SDS_RESOURCE_TYPE = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"

# Files in MESH_RUN_DIR (Envoy's working directory), rendered from the settings at start.
WORKLOAD_CERT = "workload"  # this pod's certificate and key
PEER_VALIDATION = "peer"  # the lab CA, for the inbound side (RBAC then checks who the peer is)
UPSTREAM_VALIDATION = "upstream"  # the lab CA plus the upstream's SPIFFE ID, for the outbound side
SDS_FILES = {
    WORKLOAD_CERT: "./sds/workload.json",
    PEER_VALIDATION: "./sds/peer.json",
    UPSTREAM_VALIDATION: "./sds/upstream.json",
}
UPSTREAM_ENDPOINTS_FILE = "./eds/upstream.json"


def policy_files(policy_dir: Path) -> tuple[Path, Path]:
    """(routes, clusters) paths inside a policy directory."""
    return policy_dir / POLICY_SUBDIR / ROUTES_FILE, policy_dir / POLICY_SUBDIR / CLUSTERS_FILE


def sds_config(path: str) -> dict[str, object]:
    """A ConfigSource reading one of the rendered SDS files (they never change: the certificates do)."""
    return {"resource_api_version": "V3", "path_config_source": {"path": path}}


def upstream_transport_socket() -> dict[str, object]:
    """The mTLS client side of the ``upstream`` cluster, exactly as clusters.yaml must spell it."""
    return {
        "name": "envoy.transport_sockets.tls",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
            "common_tls_context": {
                "tls_certificate_sds_secret_configs": [
                    {"name": WORKLOAD_CERT, "sds_config": sds_config(SDS_FILES[WORKLOAD_CERT])}
                ],
                "validation_context_sds_secret_config": {
                    "name": UPSTREAM_VALIDATION,
                    "sds_config": sds_config(SDS_FILES[UPSTREAM_VALIDATION]),
                },
            },
        },
    }


def upstream_eds_config() -> dict[str, object]:
    """The ``eds_cluster_config`` of the ``upstream`` cluster, exactly as clusters.yaml must spell it."""
    return {
        "service_name": UPSTREAM_CLUSTER,
        "eds_config": {"resource_api_version": "V3", "path_config_source": {"path": UPSTREAM_ENDPOINTS_FILE}},
    }
