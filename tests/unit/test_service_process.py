"""The process launcher the other tests build on: readiness that notices an exit, a stop that leaves no child."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest

from tests.support import ServiceProcess, wait_until

# Ignores SIGTERM and leaves a grandchild behind, the way a stuck gunicorn master would.
STUBBORN = """
import signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
print(child.pid, flush=True)
time.sleep(600)
"""


def test_waiting_ends_at_an_exit_with_the_code_and_the_output(tmp_path: Path) -> None:
    process = ServiceProcess([sys.executable, "-c", "print('bad config'); raise SystemExit(2)"], {}, tmp_path / "out")
    with process, pytest.raises(AssertionError) as caught:
        process.wait_for(lambda: False, "ready", timeout=60)
    assert "exited with 2 while waiting for ready" in str(caught.value)
    assert "bad config" in str(caught.value)


def test_a_timeout_names_what_was_awaited_with_the_output(tmp_path: Path) -> None:
    with ServiceProcess(
        [sys.executable, "-c", "print('starting', flush=True); import time; time.sleep(60)"], {}, tmp_path / "out"
    ) as p:
        wait_until(p.output, message="the first line")
        with pytest.raises(AssertionError, match=r"(?s)timed out after 0.2s waiting for /readyz.*starting"):
            p.wait_for(lambda: False, "/readyz", timeout=0.2)


def test_stop_kills_the_whole_group_after_the_deadline(tmp_path: Path) -> None:
    process = ServiceProcess([sys.executable, "-c", STUBBORN], {}, tmp_path / "out").start()
    grandchild = int(wait_until(lambda: process.output().strip(), message="the grandchild's pid"))
    assert process.stop(timeout=0.5) == -signal.SIGKILL
    wait_until(lambda: not os.path.exists(f"/proc/{grandchild}") or zombie(grandchild), message="the grandchild gone")


def zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True
