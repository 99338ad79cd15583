"""Start Envoy only when it can do its job safely: certificates, policy and upstream first, then exec.

Envoy is never started without usable certificates: with none it could only
serve plaintext or reset every connection, and a mesh that silently falls back
to plaintext is worse than one that is visibly not ready. So while a certificate
is missing or expired, the policy is invalid or the upstream's name does not
resolve, the wrapper logs the problem once (one JSON line naming the file),
re-checks every MESH_RETRY_SECONDS, and no port is open: probes of
MESH_STATS_PORT fail, the pod stays not ready. Once everything is usable it
renders the bootstrap into MESH_RUN_DIR and replaces itself with Envoy.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from mesh_proxy import cert_dir
from mesh_proxy.bootstrap import Endpoint, write_run_dir
from mesh_proxy.cert_dir import CertificateProblem
from mesh_proxy.check import PolicyProblem, check_policy
from mesh_proxy.envoy import exec_envoy, serve_argv
from mesh_proxy.policy import policy_files
from mesh_proxy.settings import Settings
from mesh_proxy.upstream import ResolveProblem, resolve
from sidecar_common import StartupError

logger = logging.getLogger("mesh_proxy")

Problem = CertificateProblem | PolicyProblem | ResolveProblem


class Startup:
    """Check the preconditions, wait for them, render the run directory and exec Envoy."""

    def __init__(
        self,
        settings: Settings,
        envoy: Path,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = settings
        self.envoy = envoy
        self.clock = clock
        self.endpoints: list[Endpoint] = []
        # The last policy verdict by file contents: an unchanged bad policy is not re-run through Envoy.
        self._policy_verdict: tuple[tuple[bytes | None, ...], PolicyProblem | None] | None = None

    def prepare(self) -> None:
        """Make sure MESH_RUN_DIR and the access log's directory are writable; raise StartupError."""
        run_dir = self.settings.run_dir
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StartupError("MESH_RUN_DIR", f"{run_dir}: cannot create ({exc.strerror})") from None
        if not os.access(run_dir, os.W_OK | os.X_OK):
            raise StartupError("MESH_RUN_DIR", f"{run_dir}: not writable (an emptyDir belongs here)")
        if self.settings.access_log:
            directory = Path(self.settings.access_log).parent
            if not directory.is_dir() or not os.access(directory, os.W_OK | os.X_OK):
                raise StartupError("MESH_ACCESS_LOG", f"{directory}: not a writable directory (the pod's log volume)")

    def problem(self) -> Problem | None:
        """The first reason not to start Envoy now, or None (then ``endpoints`` is filled)."""
        certificates = cert_dir.check(self.settings.cert_dir, self.clock())
        if certificates is not None:
            return certificates
        policy = self._check_policy()
        if policy is not None:
            return policy
        resolved = resolve(self.settings.upstream_addresses)
        if isinstance(resolved, ResolveProblem):
            return resolved
        self.endpoints = resolved
        return None

    def _check_policy(self) -> PolicyProblem | None:
        contents = tuple(_read(path) for path in policy_files(self.settings.policy_dir))
        if self._policy_verdict is not None and self._policy_verdict[0] == contents:
            return self._policy_verdict[1]
        verdict = check_policy(self.settings.policy_dir, self.envoy, self.settings, scratch=self.settings.run_dir)
        self._policy_verdict = (contents, verdict)
        return verdict

    def wait(self, stop: threading.Event) -> bool:
        """Block until every precondition holds (True) or ``stop`` is set (False); log each new problem once."""
        reported: str | None = None
        while not stop.is_set():
            problem = self.problem()
            if problem is None:
                if reported is not None:
                    logger.info("ready to start Envoy: the problem is gone", extra={"resolved": reported})
                return True
            if str(problem) != reported:
                reported = str(problem)
                logger.error(
                    "not starting Envoy (no listener is open, the pod stays not ready): %s",
                    problem,
                    extra=_fields(problem),
                )
            else:
                logger.debug("still waiting: %s", problem)
            stop.wait(self.settings.retry_seconds)
        return False

    def exec(self) -> None:
        """Render MESH_RUN_DIR and replace this process with Envoy; returns only by raising OSError."""
        bootstrap = write_run_dir(self.settings, self.endpoints, socket.gethostname())
        argv = serve_argv(self.envoy, bootstrap, self.settings)
        logger.info(
            "starting Envoy",
            extra={
                "bootstrap": str(bootstrap),
                "endpoints": [f"{e.ip}:{e.port}" for e in self.endpoints],
                "argv": argv,
            },
        )
        sys.stdout.flush()
        sys.stderr.flush()
        exec_envoy(argv, self.settings.run_dir)


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def _fields(problem: Problem) -> dict[str, str]:
    if isinstance(problem, ResolveProblem):
        return {"variable": "MESH_UPSTREAM_ADDRESSES", "address": problem.address, "reason": problem.reason}
    return {"file": str(problem.file), "reason": problem.reason}
