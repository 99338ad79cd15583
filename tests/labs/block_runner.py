"""Run a checked lab block in bash and hold its output against the block's expectations."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tests.labs.markdown_blocks import CheckedBlock

RETRY_INTERVAL_SECONDS = 0.5
SHOWN_OUTPUT_CHARS = 4000


@dataclass(frozen=True)
class BlockResult:
    """What one run of a block printed (stdout and stderr together) and its exit status."""

    status: int
    output: str


class BlockCheckError(AssertionError):
    """A checked block did not do what its lab says; the message is the whole story."""

    def __init__(self, block: CheckedBlock, reasons: list[str], result: BlockResult | None) -> None:
        self.block = block
        self.reasons = reasons
        self.result = result
        output = "(not run)" if result is None else result.output[-SHOWN_OUTPUT_CHARS:]
        status = "" if result is None else f" (exit status {result.status})"
        super().__init__(
            f"{block.where}: the lab's {block.target} block failed{status}:\n"
            + "".join(f"  - {reason}\n" for reason in reasons)
            + f"--- block ---\n{block.script}--- output ---\n{output}"
        )


def sample_problems(block: CheckedBlock) -> list[str]:
    """The sample output shown to readers must satisfy the block's text expectations too."""
    if block.sample is None:
        return []
    problems = []
    for expectation in block.expectations:
        if expectation.is_textual:
            failure = expectation.failure(block.sample)
            if failure is not None:
                problems.append(f"the sample output after the block contradicts '{expectation}': {failure}")
    return problems


def failures(block: CheckedBlock, result: BlockResult) -> list[str]:
    """Why ``result`` does not satisfy ``block`` (empty when it does)."""
    reasons = []
    if result.status != block.exit_status:
        reasons.append(f"exit status {result.status}, the lab expects {block.exit_status}")
    for expectation in block.expectations:
        failure = expectation.failure(result.output)
        if failure is not None:
            reasons.append(f"'{expectation}': {failure}")
    return reasons


def run_once(block: CheckedBlock, cwd: Path, env: Mapping[str, str]) -> BlockResult:
    """Run the block as one bash script that stops at the first failing command (``-e``)."""
    process = subprocess.Popen(
        ["bash", "--noprofile", "--norc", "-e", "-c", block.script],
        cwd=cwd,
        env=dict(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # so a timeout can stop what the block started, too
    )
    try:
        output, _ = process.communicate(timeout=block.timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        return BlockResult(-1, output.decode(errors="replace") + f"\n[timed out after {block.timeout:.0f}s]")
    return BlockResult(process.returncode, output.decode(errors="replace"))


def check_block(block: CheckedBlock, cwd: Path, env: Mapping[str, str]) -> BlockResult:
    """Run ``block`` (again and again for ``eventually``) until it passes; raise BlockCheckError if it never does."""
    problems = sample_problems(block)
    if problems:
        raise BlockCheckError(block, problems, None)
    deadline = time.monotonic() + block.eventually
    while True:
        result = run_once(block, cwd, env)
        reasons = failures(block, result)
        if not reasons:
            return result
        if time.monotonic() >= deadline:
            if block.eventually:
                reasons.append(f"still failing after eventually={block.eventually:.0f}s")
            raise BlockCheckError(block, reasons, result)
        time.sleep(RETRY_INTERVAL_SECONDS)
