"""The project's make targets, run from tests: for real or as a dry run (`make -n`)."""

from __future__ import annotations

import subprocess

from tests.support.tools import ROOT, require_tool


def make(*args: str) -> subprocess.CompletedProcess[str]:
    """`make ARGS` in the repository root, its output captured; the caller judges the exit code."""
    binary = require_tool("make", "GNU make runs every entry point")
    return subprocess.run(
        [binary, "--no-print-directory", *args], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )


def make_dry_run(*args: str) -> str:
    """What `make -n ARGS` would run; a dry run that fails fails the test with make's message."""
    result = make("-n", *args)
    assert result.returncode == 0, result.stderr
    return result.stdout
