"""``check-policy``: is a policy directory safe to publish? Our JSON Schema first, then the real Envoy.

The schema (``schemas/mesh-policy.schema.json``) gives readable reasons for the
fields the policy documents (``...retry_policy.num_retries: 12 is greater than
the maximum of 10``); ``envoy --mode validate`` then judges the whole file with
the Envoy that will load it, on a bootstrap that embeds the two resources
statically. The outcome is one line naming the file and the problem.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, replace
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml

from mesh_proxy import policy
from mesh_proxy.bootstrap import NODE_CLUSTER, Endpoint, outbound_listener, render_endpoints, render_secrets
from mesh_proxy.envoy import validate
from mesh_proxy.settings import Settings

SCHEMA_FILE = "mesh-policy.schema.json"


@dataclass(frozen=True)
class PolicyProblem:
    """A policy file that must not reach Envoy: the file and the reason."""

    file: Path
    reason: str

    def __str__(self) -> str:
        return f"{self.file}: {self.reason}"


@cache
def schema() -> dict[str, Any]:
    """The policy JSON Schema shipped with the package."""
    loaded: dict[str, Any] = json.loads(files("mesh_proxy.schemas").joinpath(SCHEMA_FILE).read_text())
    return loaded


def check_policy(
    policy_dir: Path, envoy: Path, settings: Settings, scratch: Path | None = None
) -> PolicyProblem | None:
    """None if both policy files pass the schema and Envoy's validation; else the first problem.

    Envoy's validation runs in a temporary directory under ``scratch`` (the system's temporary
    directory when None); the proxy passes MESH_RUN_DIR, since its root filesystem is read-only.
    """
    routes_file, clusters_file = policy.policy_files(policy_dir)
    documents: dict[Path, dict[str, Any]] = {}
    for path, expected_type in (
        (routes_file, policy.ROUTE_CONFIGURATION_TYPE),
        (clusters_file, policy.CLUSTER_TYPE),
    ):
        loaded = _load(path)
        if isinstance(loaded, PolicyProblem):
            return loaded
        problem = _check_document(path, loaded, expected_type)
        if problem is not None:
            return problem
        documents[path] = loaded
    route = _resource(documents[routes_file])
    cluster = _resource(documents[clusters_file])
    # Envoy reports no file name, so the cluster is checked alone first: a failure then is
    # the cluster's, and a failure with both is the routes'.
    reason = _envoy_validate(envoy, settings, scratch, cluster, route=None)
    if reason is not None:
        return PolicyProblem(clusters_file, f"envoy: {reason}")
    reason = _envoy_validate(envoy, settings, scratch, cluster, route=route)
    if reason is not None:
        return PolicyProblem(routes_file, f"envoy: {reason}")
    return None


def _load(path: Path) -> dict[str, Any] | PolicyProblem:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return PolicyProblem(path, "missing")
    except (OSError, UnicodeDecodeError) as exc:
        return PolicyProblem(path, f"unreadable ({exc})")
    try:
        documents = [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        return PolicyProblem(path, f"{where}not valid YAML ({getattr(exc, 'problem', None) or exc})")
    except ValueError as exc:  # a value the YAML loader cannot build, e.g. an impossible date
        return PolicyProblem(path, f"not valid YAML ({exc})")
    if len(documents) != 1 or not isinstance(documents[0], dict):
        return PolicyProblem(path, "must be one YAML mapping with a 'resources' list")
    return documents[0]


def _check_document(path: Path, document: dict[str, Any], expected_type: str) -> PolicyProblem | None:
    import jsonschema  # only check-policy and the start-up check need it

    validator = jsonschema.Draft202012Validator(schema())
    error = jsonschema.exceptions.best_match(validator.iter_errors(document))
    if error is not None:
        where = ".".join(str(part) for part in error.absolute_path) or "(top level)"
        return PolicyProblem(path, f"{where}: {_schema_reason(error)}")
    resource = _resource(document)
    if resource.get("@type") != expected_type:
        return PolicyProblem(path, f"resources.0.@type: must be {expected_type}")
    return None


def _schema_reason(error: Any) -> str:
    """The schema's reason, without echoing whole values (a const block would flood the line)."""
    if error.validator == "const":
        described = error.schema.get("description")
        return str(described) if described else f"must be {json.dumps(error.validator_value)}"
    message = str(error.message)
    return message if len(message) <= 200 else message[:197] + "..."


def _resource(document: dict[str, Any]) -> dict[str, Any]:
    resource: dict[str, Any] = document["resources"][0]
    return resource


def _envoy_validate(
    envoy: Path, settings: Settings, scratch: Path | None, cluster: dict[str, Any], route: dict[str, Any] | None
) -> str | None:
    with tempfile.TemporaryDirectory(prefix=".policy-check-", dir=scratch) as tmp:
        workdir = Path(tmp)
        # The cluster refers to the rendered SDS/EDS files relative to Envoy's working directory;
        # give it stand-ins there, as the running proxy has them in MESH_RUN_DIR.
        sandbox = replace(settings, cert_dir=workdir / "certs", run_dir=workdir, access_log="")
        stand_ins: dict[str, Any] = {
            **render_secrets(sandbox),
            policy.UPSTREAM_ENDPOINTS_FILE: render_endpoints([Endpoint("127.0.0.1", settings.inbound_port)]),
        }
        for relative, document in stand_ins.items():
            target = workdir / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(json.dumps(document))
        static: dict[str, Any] = {"clusters": [_without_type(cluster)]}
        if route is not None:
            static["listeners"] = [outbound_listener(sandbox, {"route_config": _without_type(route)})]
        bootstrap = {"node": {"id": "check-policy", "cluster": NODE_CLUSTER}, "static_resources": static}
        path = workdir / "check.json"
        path.write_text(json.dumps(bootstrap))
        return validate(envoy, path, workdir)


def _without_type(resource: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in resource.items() if key != "@type"}
