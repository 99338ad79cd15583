"""What each service reads (its settings dataclass, its README table, docs/architecture.md).

The manifests and docker-compose.yml are checked against these, so Kubernetes, compose
and the services themselves cannot drift apart.
"""

from __future__ import annotations

import re
from typing import Any

from tests.manifests.rendering import ROOT
from tests.support import service_settings

# image repository -> (service directory, python package)
SERVICES = {
    "sidecar-lab/app": ("app", "demo_app"),
    "sidecar-lab/config-sidecar": ("config-sidecar", "config_sidecar"),
    "sidecar-lab/log-sidecar": ("log-sidecar", "log_sidecar"),
    "sidecar-lab/exporter": ("exporter", "metrics_exporter"),
    "sidecar-lab/mesh-proxy": ("mesh-proxy", "mesh_proxy"),
}
ARCHITECTURE = ROOT / "docs" / "architecture.md"
ARCHITECTURE_ROW = re.compile(r"^\|\s*[\w-]+\s*\(`(\w+)`\)\s*\|(.*)\|\s*$")
ARCHITECTURE_VARIABLE = re.compile(r"`([A-Z][A-Z0-9_]+)`(?:\s*\(([^)]*)\))?")


def service_of_image(image: str) -> str | None:
    """The service directory an image reference (`repo:tag`) belongs to, None if not ours."""
    repository = image.rsplit(":", 1)[0] if ":" in image.rsplit("/", 1)[-1] else image
    entry = SERVICES.get(repository)
    return entry[0] if entry else None


def package_of(service: str) -> str:
    return next(package for directory, package in SERVICES.values() if directory == service)


def settings_class(service: str) -> type[Any]:
    """The frozen settings dataclass of a service."""
    return service_settings.settings_class(package_of(service))


def settings_variables(service: str) -> set[str]:
    """Every environment variable the service reads."""
    return service_settings.settings_variables(package_of(service))


def readme_variables(service: str) -> set[str] | None:
    """Variables of the README's `| `VAR` | default | meaning |` table; None while there is no README."""
    table = service_settings.readme_table(service)
    return None if table is None else set(table)


def architecture_contract() -> dict[str, dict[str, str | None]]:
    """docs/architecture.md's environment table: package -> {variable: literal default or None}.

    A default counts as literal when it is one token (`8080`, `/etc/app/config`,
    `http://localhost:8080/-/reload`); choices (`a | b`), `unset` and prose are None.
    """
    contract: dict[str, dict[str, str | None]] = {}
    for line in ARCHITECTURE.read_text().splitlines():
        row = ARCHITECTURE_ROW.match(line)
        if not row:
            continue
        variables: dict[str, str | None] = {}
        for name, default in ARCHITECTURE_VARIABLE.findall(row.group(2)):
            literal = default.split(";")[0].strip()
            plain = literal and " " not in literal and "|" not in literal and literal != "unset"
            variables[name] = literal if plain else None
        contract[row.group(1)] = variables
    return contract


def same_value(left: str, right: str) -> bool:
    """Equal as written, or as numbers (`30` == `30.0`)."""
    if left == right:
        return True
    try:
        return float(left) == float(right)
    except ValueError:
        return False
