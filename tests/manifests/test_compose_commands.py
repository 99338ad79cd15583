"""The compose commands we tell people to run work as written: `up --wait` never includes a one-shot service."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from tests.manifests.rendering import ROOT
from tests.support.make import make_dry_run

COMPOSE_FILE = ROOT / "docker-compose.yml"
CI_FILE = ROOT / "docker-compose.ci.yml"
# Where a user reads a compose command: the compose files' comments and the docs.
TEXTS = (COMPOSE_FILE, CI_FILE, ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md")))
COMMAND = re.compile(r"docker compose\b[^\n`]*?\bup\b[^\n`]*")


def one_shot_services(ci: bool) -> set[str]:
    """Services that run to completion (`restart: "no"`) and are started by `up` in that stack."""
    services = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    one_shots = {name for name, service in services.items() if str(service.get("restart")) == "no"}
    if ci:
        # The CI override moves services out of every profile it enables (`!override [not-in-ci]`).
        ci_text = CI_FILE.read_text()
        one_shots = {name for name in one_shots if not re.search(rf"^  {re.escape(name)}: \*not-in-ci", ci_text, re.M)}
    return one_shots


def problems_of(command: str) -> list[str]:
    """Why `command` would fail under --wait: a one-shot service it starts and waits for."""
    if "--wait" not in command.split():
        return []
    ci = "docker-compose.ci.yml" in command
    return [
        f"{command!r} waits for the one-shot {name} (add --scale {name}=0 and run it afterwards)"
        for name in sorted(one_shot_services(ci))
        if f"--scale {name}=0" not in command
    ]


def test_the_stack_has_a_one_shot_service_to_guard() -> None:
    assert {"kibana-setup", "mesh-ca"} <= one_shot_services(ci=False)
    assert "kibana-setup" not in one_shot_services(ci=True)
    assert "mesh-ca" in one_shot_services(ci=True)


@pytest.mark.parametrize("text", TEXTS, ids=lambda path: str(Path(path).relative_to(ROOT)))
def test_documented_up_commands_leave_one_shots_out_of_wait(text: Path) -> None:
    commands = COMMAND.findall(text.read_text())
    assert [problem for command in commands for problem in problems_of(command)] == []


@pytest.mark.parametrize("target", ["up", "e2e"])
def test_make_targets_leave_one_shots_out_of_wait(target: str) -> None:
    commands = COMMAND.findall(make_dry_run(target))
    assert commands, f"make -n {target} runs no `docker compose ... up`"
    assert [problem for command in commands for problem in problems_of(command)] == []


def test_the_compose_file_header_says_how_to_start_the_stack() -> None:
    header = COMPOSE_FILE.read_text().split("\nname:", 1)[0]
    assert "`make up`" in header
    run_by_make = make_dry_run("up")
    for command in COMMAND.findall(header):
        flags = command.split()
        assert all(flag in run_by_make for flag in flags), f"the header's {command!r} is not what `make up` runs"


def test_the_guard_catches_a_plain_wait() -> None:
    assert problems_of("docker compose up -d --build --wait")
    ci = "docker compose -f docker-compose.yml -f docker-compose.ci.yml up -d --build --wait"
    assert [problem.split(" waits for ")[1] for problem in problems_of(ci)] == [
        "the one-shot mesh-ca (add --scale mesh-ca=0 and run it afterwards)"
    ]
    assert not problems_of(f"{ci} --scale mesh-ca=0")
