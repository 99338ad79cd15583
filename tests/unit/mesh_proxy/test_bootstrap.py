"""The rendered bootstrap: every port, path and identity from the settings, accepted by the real Envoy."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from mesh_proxy import policy
from mesh_proxy.bootstrap import Endpoint, render_bootstrap, write_run_dir
from mesh_proxy.envoy import validate
from tests.unit.mesh_proxy.conftest import ROOT, settings

WEB = "spiffe://sidecar-lab.local/ns/sidecar-lab/sa/web"


def listener(bootstrap: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(item for item in bootstrap["static_resources"]["listeners"] if item["name"] == name)
    return found


def manager(bootstrap: dict[str, Any], name: str) -> dict[str, Any]:
    config: dict[str, Any] = listener(bootstrap, name)["filter_chains"][0]["filters"][0]["typed_config"]
    return config


def addresses(bootstrap: dict[str, Any]) -> dict[str, tuple[str, int]]:
    found = {"admin": bootstrap["admin"]["address"]["socket_address"]}
    for item in bootstrap["static_resources"]["listeners"]:
        found[item["name"]] = item["address"]["socket_address"]
    return {name: (a["address"], a["port_value"]) for name, a in found.items()}


def test_defaults_are_the_contract_ports() -> None:
    assert addresses(render_bootstrap(settings(), "node")) == {
        "admin": ("127.0.0.1", 9901),
        "inbound": ("0.0.0.0", 8443),
        "outbound": ("127.0.0.1", 8001),
        "stats": ("0.0.0.0", 9903),
    }


def test_every_port_comes_from_the_settings() -> None:
    custom = settings(
        MESH_INBOUND_HOST="127.0.0.1",
        MESH_INBOUND_PORT="18443",
        MESH_OUTBOUND_PORT="18001",
        MESH_ADMIN_PORT="19901",
        MESH_STATS_HOST="127.0.0.1",
        MESH_STATS_PORT="19903",
        MESH_APP_PORT="18080",
    )
    bootstrap = render_bootstrap(custom, "node")
    assert addresses(bootstrap) == {
        "admin": ("127.0.0.1", 19901),
        "inbound": ("127.0.0.1", 18443),
        "outbound": ("127.0.0.1", 18001),
        "stats": ("127.0.0.1", 19903),
    }
    clusters = {c["name"]: c for c in bootstrap["static_resources"]["clusters"]}
    app = clusters["local_app"]["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]
    assert app["socket_address"] == {"address": "127.0.0.1", "port_value": 18080}


def test_the_inbound_side_requires_client_certificates_and_rbac() -> None:
    bootstrap = render_bootstrap(settings(MESH_ALLOWED_PRINCIPALS=f"{WEB},spiffe://x/y"), "node")
    tls = listener(bootstrap, "inbound")["filter_chains"][0]["transport_socket"]["typed_config"]
    assert tls["require_client_certificate"] is True
    rbac = manager(bootstrap, "inbound")["http_filters"][0]["typed_config"]["rules"]
    assert rbac["action"] == "ALLOW"
    allowed = rbac["policies"]["mesh-allowed"]
    assert [p["authenticated"]["principal_name"]["exact"] for p in allowed["principals"]] == [WEB, "spiffe://x/y"]
    assert allowed["permissions"][0]["or_rules"]["rules"] == [{"url_path": {"path": {"prefix": "/api/"}}}]


def test_no_allowed_principal_means_no_policy_so_everything_is_denied() -> None:
    rbac = manager(render_bootstrap(settings(MESH_ALLOWED_PRINCIPALS=""), "node"), "inbound")["http_filters"][0]
    assert rbac["typed_config"]["rules"] == {"action": "ALLOW", "policies": {}}


def test_the_outbound_side_loads_the_policy_by_filesystem_xds_on_the_data_swap() -> None:
    bootstrap = render_bootstrap(settings(MESH_POLICY_DIR="/policy"), "node")
    rds = manager(bootstrap, "outbound")["rds"]["config_source"]["path_config_source"]
    cds = bootstrap["dynamic_resources"]["cds_config"]["path_config_source"]
    assert rds == {"path": "/policy/mesh/routes.yaml", "watched_directory": {"path": "/policy"}}
    assert cds == {"path": "/policy/mesh/clusters.yaml", "watched_directory": {"path": "/policy"}}


def test_the_stats_listener_routes_only_ready_and_prometheus_to_the_admin() -> None:
    routes = manager(render_bootstrap(settings(), "node"), "stats")["route_config"]["virtual_hosts"][0]["routes"]
    to_admin = [r["match"]["path"] for r in routes if r.get("route", {}).get("cluster") == "admin"]
    assert to_admin == ["/ready", "/stats/prometheus"]
    assert routes[-1]["match"] == {"prefix": "/"}
    assert routes[-1]["direct_response"]["status"] == 404


def test_an_empty_access_log_goes_to_stdout() -> None:
    log = manager(render_bootstrap(settings(MESH_ACCESS_LOG=""), "node"), "inbound")["access_log"][0]
    assert log["name"] == "envoy.access_loggers.stdout"


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"MESH_ACCESS_LOG": "", "MESH_ALLOWED_PRINCIPALS": "", "MESH_CONCURRENCY": "2"},
        {"MESH_ALLOWED_PATH_PREFIXES": "/api/,/v2/", "MESH_INBOUND_TIMEOUT_SECONDS": "0.25"},
        {"MESH_UPSTREAM_ADDRESSES": ""},
    ],
)
def test_the_real_envoy_accepts_the_rendered_run_dir(tmp_path: Path, envoy: Path, env: dict[str, str]) -> None:
    (tmp_path / "logs").mkdir()
    shutil.copytree(ROOT / "config" / "mesh", tmp_path / "policy" / "mesh")
    env = {
        "MESH_RUN_DIR": str(tmp_path / "run"),
        "MESH_ACCESS_LOG": str(tmp_path / "logs" / "a.log"),
        "MESH_POLICY_DIR": str(tmp_path / "policy"),
        **env,
    }
    custom = settings(**env)
    endpoints = [Endpoint("127.0.0.1", 8443), Endpoint("::1", 8443)] if custom.upstream_addresses else []
    bootstrap = write_run_dir(custom, endpoints, "node")
    assert validate(envoy, bootstrap, custom.run_dir) is None
    for relative in [*policy.SDS_FILES.values(), policy.UPSTREAM_ENDPOINTS_FILE]:
        assert json.loads((custom.run_dir / relative).read_text())["resources"]


def test_validate_names_what_envoy_refuses(tmp_path: Path, envoy: Path) -> None:
    bootstrap = tmp_path / "envoy.json"
    bootstrap.write_text(json.dumps({"admin": {"address": {"socket_address": {"port_value": "eighty"}}}}))
    reason = validate(envoy, bootstrap, tmp_path)
    assert reason is not None
    assert "port_value" in reason


def test_the_upstream_secret_checks_the_upstream_spiffe_id() -> None:
    from mesh_proxy.bootstrap import render_secrets

    secrets = render_secrets(settings(MESH_UPSTREAM_PRINCIPAL="spiffe://lab/ns/a/sa/b", MESH_CERT_DIR="/certs"))
    upstream = secrets[policy.SDS_FILES[policy.UPSTREAM_VALIDATION]]["resources"][0]["validation_context"]
    assert upstream["match_typed_subject_alt_names"] == [
        {"san_type": "URI", "matcher": {"exact": "spiffe://lab/ns/a/sa/b"}}
    ]
    assert upstream["watched_directory"] == {"path": "/certs"}
    assert upstream["trusted_ca"] == {"filename": "/certs/ca.crt"}
