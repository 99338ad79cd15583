"""What each service reads: its settings dataclass and its README's variable table.

The docs test and the manifest contract test both compare these, so they share
one way of finding them.
"""

from __future__ import annotations

import dataclasses
import importlib
import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]

# service directory under services/ -> python package
SERVICE_PACKAGES = {
    "app": "demo_app",
    "config-sidecar": "config_sidecar",
    "log-sidecar": "log_sidecar",
    "exporter": "metrics_exporter",
    "mesh-proxy": "mesh_proxy",
}
README_ROW = re.compile(r"^\|\s*`([A-Z][A-Z0-9_]+)`\s*\|\s*([^|]*?)\s*\|")


def settings_class(package: str) -> type[Any]:
    """The frozen settings dataclass of ``package`` (the one whose fields carry `env` metadata)."""
    module = importlib.import_module(f"{package}.settings")
    classes = [
        obj
        for obj in vars(module).values()
        if isinstance(obj, type)
        and dataclasses.is_dataclass(obj)
        and obj.__module__ == module.__name__
        and any("env" in field.metadata for field in dataclasses.fields(obj))
    ]
    if len(classes) != 1:
        raise LookupError(f"{module.__name__} should define exactly one settings dataclass, found {classes}")
    return classes[0]


def settings_variables(package: str) -> set[str]:
    """Every environment variable the package reads: each field's name and its older names (aliases)."""
    return set(settings_names(package)) | set(settings_aliases(package))


def settings_names(package: str) -> list[str]:
    """The variable of each settings field (what ``--help`` lists, with its default)."""
    return [f.metadata["env"] for f in dataclasses.fields(settings_class(package)) if "env" in f.metadata]


def settings_aliases(package: str) -> dict[str, str]:
    """Older names still read, each mapped to the variable it stands for (EXPORTER_PORT -> ADMIN_PORT)."""
    return {
        alias: f.metadata["env"]
        for f in dataclasses.fields(settings_class(package))
        for alias in f.metadata.get("aliases", ())
    }


def readme_table(directory: str) -> dict[str, str] | None:
    """The `| `VAR` | default | meaning |` rows of services/<directory>/README.md; None without a README."""
    readme = ROOT / "services" / directory / "README.md"
    if not readme.is_file():
        return None
    rows: dict[str, str] = {}
    for line in readme.read_text().splitlines():
        match = README_ROW.match(line)
        if match:
            rows[match.group(1)] = match.group(2).strip().strip("`")
    return rows


def readme_rows(directory: str) -> dict[str, str]:
    """Each variable's whole row of services/<directory>/README.md's table (to read its meaning)."""
    rows: dict[str, str] = {}
    for line in (ROOT / "services" / directory / "README.md").read_text().splitlines():
        match = README_ROW.match(line)
        if match:
            rows[match.group(1)] = line
    return rows
