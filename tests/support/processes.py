"""Run a service (a Python module or any program) as a real process, its output kept for failure messages."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType

from tests.support.polling import wait_until

TAIL = 4000  # characters of output a failure message carries


def http_ready(url: str) -> Callable[[], bool]:
    """A probe for ``wait_for``: true once ``url`` answers 200 (until then it raises or is false)."""

    def probe() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return bool(response.status == 200)
        except urllib.error.HTTPError as error:
            error.close()  # it holds the connection: unclosed, it is a ResourceWarning later
            return False

    return probe


class ServiceProcess:
    """A child process in a process group of its own, stdout and stderr in ``log_path``.

    ``env`` is added to this process's environment. ``output()`` returns what the child
    printed so far, to put into assertion messages; ``stop()`` ends it gracefully within a
    deadline and then kills its whole group, so no child (a gunicorn worker) outlives the test.
    """

    def __init__(self, argv: Sequence[str], env: Mapping[str, str], log_path: Path, cwd: Path | None = None) -> None:
        self.argv = list(argv)
        self.name = Path(self.argv[0]).name
        self.env = {**os.environ, **env}
        self.log_path = log_path
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None

    @classmethod
    def python_module(cls, module: str, env: Mapping[str, str], log_path: Path, *args: str) -> ServiceProcess:
        process = cls([sys.executable, "-m", module, *args], env, log_path)
        process.name = module
        return process

    def start(self) -> ServiceProcess:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.argv,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.cwd,
                start_new_session=True,
            )
        return self

    def __enter__(self) -> ServiceProcess:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    @property
    def pid(self) -> int:
        assert self.proc is not None, f"{self.name} was never started"
        return self.proc.pid

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def output(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def failure(self, what: str) -> str:
        """``what`` went wrong, with the end of the output: an assertion message."""
        return f"{self.name} {what}\n--- output of {self.name} (last {TAIL} characters) ---\n{self.output()[-TAIL:]}"

    def wait_for(
        self, check: Callable[[], object], what: str, timeout: float = 30.0, interval: float = 0.05
    ) -> ServiceProcess:
        """Poll ``check`` until it is true (exceptions count as "not yet"); fail at once if the process exits."""
        try:
            wait_until(lambda: not self.running() or check(), timeout, interval, message=what)
        except AssertionError as exc:
            raise AssertionError(self.failure(str(exc))) from None
        if not self.running():
            raise AssertionError(self.failure(f"exited with {self.returncode()} while waiting for {what}"))
        return self

    def signal(self, sig: int) -> None:
        assert self.proc is not None, f"{self.name} was never started"
        self.proc.send_signal(sig)

    def wait(self, timeout: float) -> int:
        """Wait for the process to exit on its own; return its exit code."""
        assert self.proc is not None, f"{self.name} was never started"
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(self.failure(f"still running after {timeout} s")) from None

    def returncode(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM, wait up to ``timeout``, then SIGKILL the whole process group; return the exit code."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        with contextlib.suppress(ProcessLookupError):  # children (gunicorn workers) must not outlive the test
            os.killpg(self.proc.pid, signal.SIGKILL)
        return int(self.proc.returncode)

    def kill(self) -> None:
        """SIGKILL the whole process group at once: a crash, no shutdown code runs."""
        assert self.proc is not None, f"{self.name} was never started"
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(5)
