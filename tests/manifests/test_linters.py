"""shellcheck on every shell script (files and the ones inlined in manifests), hadolint on every Dockerfile."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.manifests.rendering import ROOT, unique_documents
from tests.support.tools import require_tool

# Ours: the scripts, and the ones the manifests mount into containers (ConfigMaps from files).
SHELL_SCRIPTS = sorted([*(ROOT / "scripts").glob("*.sh"), *(ROOT / "k8s").rglob("*.sh")])
# The Python services' images: one shared Dockerfile, one stage per service (SERVICE picks it).
PYTHON_SERVICES_DOCKERFILE = ROOT / "services" / "Dockerfile"
SERVICE_DOCKERFILES = [PYTHON_SERVICES_DOCKERFILE, *sorted((ROOT / "services").glob("*/Dockerfile"))]
OTHER_DOCKERFILES = sorted(
    p for p in ROOT.glob("**/Dockerfile") if ".venv" not in p.parts and "services" not in p.relative_to(ROOT).parts
)
SHELLS = ("bash", "sh", "/bin/bash", "/bin/sh")


def shellcheck(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    binary = require_tool("shellcheck", "it checks every shell script")
    return subprocess.run([binary, *args], input=stdin, capture_output=True, text=True, timeout=60, check=False)


def inline_scripts(renderings) -> dict[str, str]:
    """Shell programs inside manifests: `command: [bash, -c, script]` and exec probes alike."""
    found = {}
    for _, doc in unique_documents(renderings):
        spec = (doc.get("spec", {}).get("template") or {}).get("spec") or {}
        for container in spec.get("initContainers", []) + spec.get("containers", []):
            argvs = {"command": (container.get("command") or []) + (container.get("args") or [])}
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                argvs[probe] = (container.get(probe) or {}).get("exec", {}).get("command", [])
            for where, argv in argvs.items():
                if len(argv) >= 3 and argv[0] in SHELLS and argv[1] == "-c":
                    found[f"{doc['kind']}/{doc['metadata']['name']} {container['name']} {where}"] = argv[2]
    return found


@pytest.mark.parametrize("script", SHELL_SCRIPTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_shell_scripts_pass_shellcheck(script):
    result = shellcheck(str(script))
    assert result.returncode == 0, result.stdout


def test_scripts_inlined_in_manifests_pass_shellcheck(renderings):
    scripts = inline_scripts(renderings)
    assert scripts, "expected the exec probes of Elasticsearch and its setup sidecar"
    failures = {}
    for where, script in scripts.items():
        result = shellcheck("--shell=bash", "-", stdin=script)
        if result.returncode != 0:
            failures[where] = result.stdout
    assert failures == {}


def test_shellcheck_catches_a_defect():
    result = shellcheck("--shell=bash", "-", stdin="for f in $(ls *.log); do rm $f; done\n")
    assert result.returncode != 0


def hadolint(path: Path | str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    binary = require_tool("hadolint", "it checks every Dockerfile")
    return subprocess.run([binary, str(path)], input=stdin, capture_output=True, text=True, timeout=60, check=False)


def python_service_stages() -> set[str]:
    """The stages of services/Dockerfile named after a service directory."""
    stages = set(re.findall(r"^FROM \S+ AS (\S+)$", PYTHON_SERVICES_DOCKERFILE.read_text(), re.MULTILINE))
    return {stage for stage in stages if (ROOT / "services" / stage).is_dir()}


def test_every_service_has_exactly_one_image_recipe():
    """A stage in services/Dockerfile or a Dockerfile of its own (the emulators', the mesh proxy's), never both."""
    stages = python_service_stages()
    assert {"app", "config-sidecar", "log-sidecar", "exporter"} <= stages
    for directory in sorted(p for p in (ROOT / "services").iterdir() if (p / "pyproject.toml").is_file()):
        own = (directory / "Dockerfile").is_file()
        assert own != (directory.name in stages), f"services/{directory.name}: {'both' if own else 'no'} image recipe"


def test_compose_builds_each_python_service_from_its_stage():
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    built = {
        name: service["build"]
        for name, service in services.items()
        if service.get("build", {}).get("dockerfile") == "services/Dockerfile"
    }
    assert {build["args"]["SERVICE"] for build in built.values()} == python_service_stages()
    for name, build in built.items():
        service = build["args"]["SERVICE"]
        assert services[name]["image"].startswith(f"sidecar-lab/{service}:"), f"{name} builds {service}"
        assert build["context"] == ".", "the build context is the repository root (libs/ must be reachable)"


@pytest.mark.parametrize("dockerfile", SERVICE_DOCKERFILES + OTHER_DOCKERFILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_dockerfiles_pass_hadolint(dockerfile):
    result = hadolint(dockerfile)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_catches_a_defect():
    result = hadolint("-", stdin="FROM python:latest\nRUN apt-get install curl\nUSER root\n")
    assert result.returncode != 0
