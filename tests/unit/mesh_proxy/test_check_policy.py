"""check-policy: the shipped policy passes; each broken file is refused with its name and the reason."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from mesh_proxy import policy
from mesh_proxy.check import check_policy, schema
from tests.unit.mesh_proxy.conftest import ROOT, settings

Edit = Callable[[dict[str, Any]], None]


def route(doc: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = doc["resources"][0]["virtual_hosts"][0]["routes"][0]
    return found


def cluster(doc: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = doc["resources"][0]
    return found


@pytest.fixture
def policy_dir(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "config" / "mesh", tmp_path / "policy" / "mesh")
    return tmp_path / "policy"


def edit(policy_dir: Path, name: str, change: Edit) -> Path:
    path = policy_dir / "mesh" / name
    doc = yaml.safe_load(path.read_text())
    change(doc)
    path.write_text(yaml.safe_dump(doc))
    return path


def test_the_shipped_policy_passes(envoy: Path) -> None:
    assert check_policy(ROOT / "config", envoy, settings()) is None


def test_the_shipped_policy_has_the_documented_defaults() -> None:
    routes = yaml.safe_load((ROOT / "config" / "mesh" / "routes.yaml").read_text())
    clusters = yaml.safe_load((ROOT / "config" / "mesh" / "clusters.yaml").read_text())
    fault = route(routes)["typed_per_filter_config"]["envoy.filters.http.fault"]
    assert route(routes)["route"]["timeout"] == "2s"
    assert route(routes)["route"]["retry_policy"]["num_retries"] == 2
    assert set(route(routes)["route"]["retry_policy"]["retry_on"].split(",")) == {"5xx", "reset", "connect-failure"}
    assert fault["abort"]["percentage"]["numerator"] == 0
    assert fault["delay"]["percentage"]["numerator"] == 0
    assert cluster(clusters)["outlier_detection"]["consecutive_5xx"] == 3


def test_the_schema_is_a_valid_draft_2020_12_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(schema())
    shipped = json.loads((ROOT / "services" / "mesh-proxy" / "schemas" / "mesh-policy.schema.json").read_text())
    assert shipped == schema()


@pytest.mark.parametrize(
    ("name", "change", "reason"),
    [
        (
            "routes.yaml",
            lambda d: route(d)["route"]["retry_policy"].update(num_retries=12),
            "retry_policy.num_retries: 12 is greater than the maximum of 10",
        ),
        (
            "routes.yaml",
            lambda d: route(d)["route"].update(timeout="2 seconds"),
            "route.timeout: '2 seconds' does not match",
        ),
        (
            "routes.yaml",
            lambda d: route(d)["typed_per_filter_config"]["envoy.filters.http.fault"]["abort"]["percentage"].update(
                numerator=150
            ),
            "numerator: 150 is greater than the maximum of 100",
        ),
        ("routes.yaml", lambda d: route(d)["route"].update(cluster="elsewhere"), 'route.cluster: must be "upstream"'),
        (
            "routes.yaml",
            lambda d: route(d)["route"]["retry_policy"].update(retry_on="5xx,sometimes"),
            "retry_on: '5xx,sometimes' does not match",
        ),
        ("routes.yaml", lambda d: route(d).update(unknown_field=1), "envoy: "),
        ("routes.yaml", lambda d: d["resources"][0].update(name="inbound"), 'resources.0.name: must be "outbound"'),
        (
            "clusters.yaml",
            lambda d: cluster(d)["outlier_detection"].update(max_ejection_percent=150),
            "max_ejection_percent: 150 is greater than the maximum of 100",
        ),
        (
            "clusters.yaml",
            lambda d: cluster(d)["eds_cluster_config"]["eds_config"]["path_config_source"].update(path="/x.json"),
            "eds_cluster_config: must stay as shipped",
        ),
        ("clusters.yaml", lambda d: cluster(d).pop("transport_socket"), "'transport_socket' is a required property"),
        ("clusters.yaml", lambda d: cluster(d).update(lb_policy="FASTEST"), "lb_policy: 'FASTEST' is not one of"),
        ("clusters.yaml", lambda d: cluster(d).update(per_connection_buffer_limit_bytes="lots"), "envoy: "),
    ],
)
def test_a_broken_file_is_named_with_the_reason(
    policy_dir: Path, envoy: Path, name: str, change: Edit, reason: str
) -> None:
    path = edit(policy_dir, name, change)
    problem = check_policy(policy_dir, envoy, settings())
    assert problem is not None
    assert problem.file == path
    assert reason in problem.reason, problem.reason


def test_a_routes_file_in_the_clusters_place_is_refused(policy_dir: Path, envoy: Path) -> None:
    shutil.copy(policy_dir / "mesh" / "routes.yaml", policy_dir / "mesh" / "clusters.yaml")
    problem = check_policy(policy_dir, envoy, settings())
    assert problem is not None
    assert problem.file.name == "clusters.yaml"
    assert "envoy.config.cluster.v3.Cluster" in problem.reason


@pytest.mark.parametrize(
    ("content", "reason"),
    [("resources: [\n", "line 2: not valid YAML"), ("- a\n- b\n", "one YAML mapping"), (None, "missing")],
)
def test_unreadable_files_are_named(policy_dir: Path, envoy: Path, content: str | None, reason: str) -> None:
    path = policy_dir / "mesh" / "routes.yaml"
    if content is None:
        path.unlink()
    else:
        path.write_text(content)
    problem = check_policy(policy_dir, envoy, settings())
    assert problem is not None
    assert problem.file == path
    assert reason in problem.reason


def test_the_pinned_plumbing_is_what_the_proxy_renders() -> None:
    """The schema's fixed blocks, the shipped file and the rendered file names must agree."""
    pinned = schema()["$defs"]["cluster"]["properties"]
    assert pinned["transport_socket"]["const"] == policy.upstream_transport_socket()
    assert pinned["eds_cluster_config"]["const"] == policy.upstream_eds_config()
    shipped = cluster(yaml.safe_load((ROOT / "config" / "mesh" / "clusters.yaml").read_text()))
    assert shipped["transport_socket"] == policy.upstream_transport_socket()
    assert shipped["eds_cluster_config"] == policy.upstream_eds_config()


@pytest.mark.parametrize("name", [policy.ROUTES_FILE, policy.CLUSTERS_FILE])
def test_webs_own_policy_is_the_shipped_policy(name: str) -> None:
    """web's copy (compose and make local: deploy/compose/web/config/mesh/) says what config/mesh/ says.

    kind's web-config ConfigMap takes web's policy from config/mesh/ itself; the copy differs in
    its comments only (the lab's `# abort` / `# delay` markers), so both run modes start alike.
    """
    shipped = yaml.safe_load((ROOT / "config" / "mesh" / name).read_text())
    webs = ROOT / "deploy" / "compose" / "web" / "config" / "mesh" / name
    assert yaml.safe_load(webs.read_text()) == shipped
    if name == policy.ROUTES_FILE:
        # Lab 05's perl edits find each fault percentage by its marker: exactly one line each.
        lines = webs.read_text().splitlines()
        assert [sum(f"# {knob}:" in line for line in lines) for knob in ("abort", "delay")] == [1, 1]
