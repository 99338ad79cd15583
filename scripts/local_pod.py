#!/usr/bin/env python3
"""Run the app pod as local processes: the same contract as compose and Kubernetes, no Docker.

``make local`` runs this with ``.venv/bin/python``. A state directory (default
``.local-pod/``) stands in for the pod's volumes::

    config-source/   the ConfigMap volume, written kubelet-style (``..data`` swaps) from ./config
    config/          CONFIG_TARGET_DIR = APP_CONFIG_DIR (the config sidecar publishes here)
    logs/            APP_LOG_FILE's directory (the log sidecar tails logs/*.log)
    log-state/       LOG_STATE_DIR (checkpoints, dead letters)
    shipped-logs.jsonl   what the log sidecar delivered (LOG_SINK=file; unset ES_URL)
    run/             one pid file per container, for the failure drills

Containers start in the order of the Kubernetes manifest's native sidecars
(config sidecar, log sidecar, exporter, then the app; the next one starts when
the previous one's startup probe answers), every port on 127.0.0.1, and output
is multiplexed with honcho's printer. Ctrl-C or SIGTERM stops them in reverse
order: the app first, so the log sidecar still ships the app's final lines.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import IO

from honcho.colour import get_colours
from honcho.printer import Message, Printer

from sidecar_common import SettingsError, parse_cli, setting

DESCRIPTION = (
    "Run the app pod as local processes on 127.0.0.1 (volumes in LOCAL_POD_DIR); Ctrl-C stops it in order. "
    "Every other variable (APP_WORKERS, LOG_LEVEL, CONFIG_SCHEMA_FILE, ...) passes through to the containers."
)
SYSTEM = "system"  # honcho's name for the runner's own lines
KUBELET = "kubelet"  # who writes the config-source volume, as in a real pod
PROBE_TIMEOUT_SECONDS = 1.0
RESTART_BACKOFF_MAX_SECONDS = 30.0
# Below a pod's default terminationGracePeriodSeconds (30 s), like the containers' own drain deadlines.
STOP_GRACE_SECONDS = 25.0

# Contract ports (docs/architecture.md); LOCAL_POD_PORT_OFFSET shifts all of them at once.
CONTRACT_PORTS = {
    "APP_PORT": 8080,
    "APP_CONTROL_PORT": 8079,
    "CONFIG_SIDECAR_PORT": 8081,
    "LOG_SIDECAR_PORT": 8082,
    "EXPORTER_PORT": 9102,
    "EXPORTER_CONTROL_PORT": 9101,
}
# Where control ports listen, whatever LOCAL_POD_HOST says: the containers' shared localhost.
CONTROL_HOST = "127.0.0.1"
CONTRACT_STATSD_PORT = 9125


@dataclass(frozen=True)
class Settings:
    """What the runner reads from its environment; every service variable also passes through."""

    state_dir: Path = setting("LOCAL_POD_DIR", Path(".local-pod"), "state directory holding the volume stand-ins")
    config_dir: Path = setting("LOCAL_POD_CONFIG", Path("config"), "config source copied kubelet-style at start")
    host: str = setting("LOCAL_POD_HOST", "127.0.0.1", "address every container listens on (the pod's localhost)")
    port_offset: int = setting("LOCAL_POD_PORT_OFFSET", 0, "added to every contract port (e.g. 100 -> 8180...)")
    app_port: int | None = setting("APP_PORT", None, "app port (default 8080 + offset)")
    app_control_port: int | None = setting(
        "APP_CONTROL_PORT", None, "app control port, POST /-/reload, on 127.0.0.1 only (8079 + offset)"
    )
    config_sidecar_port: int | None = setting("CONFIG_SIDECAR_PORT", None, "config sidecar admin port (8081 + offset)")
    log_sidecar_port: int | None = setting("LOG_SIDECAR_PORT", None, "log sidecar admin port (8082 + offset)")
    exporter_port: int | None = setting("EXPORTER_PORT", None, "exporter metrics port (9102 + offset)")
    exporter_control_port: int | None = setting(
        "EXPORTER_CONTROL_PORT", None, "exporter control port, POST /-/reload (9101 + offset)"
    )
    statsd_port: int | None = setting("STATSD_PORT", None, "exporter statsd UDP port (9125 + offset)")
    es_url: str | None = setting("ES_URL", None, "ship logs to this Elasticsearch; unset = LOG_SINK=file")
    startup_timeout: float = setting("LOCAL_POD_STARTUP_TIMEOUT", 60.0, "seconds each container has to start")
    raw_output: bool = setting("LOCAL_POD_RAW_OUTPUT", False, "print the containers' JSON log lines as they are")

    def port(self, name: str) -> int:
        """The port for ``name`` (a CONTRACT_PORTS key or STATSD_PORT): explicit, else contract + offset."""
        explicit = getattr(self, name.lower())
        if explicit is not None:
            return int(explicit)
        default = CONTRACT_STATSD_PORT if name == "STATSD_PORT" else CONTRACT_PORTS[name]
        return default + self.port_offset

    def validate(self) -> None:
        """Reject ports out of range, naming the variable."""
        for name in (*CONTRACT_PORTS, "STATSD_PORT"):
            if not 0 < self.port(name) < 65536:
                raise SettingsError(name, f"port {self.port(name)} is out of range (check LOCAL_POD_PORT_OFFSET)")


# --------------------------------------------------------------------------- the pod's volumes


@dataclass(frozen=True)
class Volumes:
    """Directories standing in for the pod's volumes, all under the state directory."""

    root: Path

    @property
    def config_source(self) -> Path:
        return self.root / "config-source"

    @property
    def config(self) -> Path:
        return self.root / "config"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def log_state(self) -> Path:
        return self.root / "log-state"

    @property
    def shipped_logs(self) -> Path:
        return self.root / "shipped-logs.jsonl"

    @property
    def run(self) -> Path:
        return self.root / "run"

    def recreate(self) -> None:
        """Start from empty volumes, as a new pod's emptyDirs are: remove only what we own."""
        for directory in (self.config_source, self.config, self.logs, self.log_state, self.run):
            shutil.rmtree(directory, ignore_errors=True)
            directory.mkdir(parents=True)
        self.shipped_logs.unlink(missing_ok=True)


# --------------------------------------------------------------------------- the containers


@dataclass(frozen=True)
class Container:
    """One container of the pod: its command, environment and probes."""

    name: str
    argv: tuple[str, ...]
    env: Mapping[str, str]
    url: str  # base URL of its HTTP port
    startup_path: str  # its startupProbe in k8s/base: the next container starts once this answers 200
    show: str  # the URL path printed for people once the pod is ready


def pod_containers(settings: Settings, volumes: Volumes) -> list[Container]:
    """The pod's containers in start order, as k8s/base/deployment-demo-app.yaml declares its native sidecars.

    The config sidecar comes first: it is ready after its first publish, so the
    app starts with its config present. Stopping runs in reverse: the app first,
    then the exporter, the log sidecar (still tailing while the app writes its
    last lines) and the config sidecar.
    """
    host = settings.host
    app_port = settings.port("APP_PORT")
    control_port = settings.port("APP_CONTROL_PORT")
    statsd_port = settings.port("STATSD_PORT")
    app_url = f"http://{host}:{app_port}"
    log_sink = {"LOG_SINK": "elasticsearch", "ES_URL": settings.es_url} if settings.es_url else {"LOG_SINK": "file"}
    python = sys.executable
    return [
        Container(
            name="config-sidecar",
            argv=(python, "-m", "config_sidecar"),
            env={
                "CONFIG_SOURCE_DIR": str(volumes.config_source),
                "CONFIG_TARGET_DIR": str(volumes.config),
                "CONFIG_RELOAD_URL": f"http://{CONTROL_HOST}:{control_port}/-/reload",  # the app's control port
                "ADMIN_HOST": host,
                "ADMIN_PORT": str(settings.port("CONFIG_SIDECAR_PORT")),
            },
            url=f"http://{host}:{settings.port('CONFIG_SIDECAR_PORT')}",
            # Ready = first publish done, so the app starts with its config (the k8s startupProbe).
            startup_path="/readyz",
            show="/status",
        ),
        Container(
            name="log-sidecar",
            argv=(python, "-m", "log_sidecar"),
            env={
                "LOG_PATHS": str(volumes.logs / "*.log"),
                "LOG_STATE_DIR": str(volumes.log_state),
                "LOG_FILE_SINK_PATH": str(volumes.shipped_logs),
                **log_sink,
                "ADMIN_HOST": host,
                "ADMIN_PORT": str(settings.port("LOG_SIDECAR_PORT")),
                # What the Downward API gives a real pod.
                "POD_NAME": "local-pod",
                "POD_NAMESPACE": "local",
                "NODE_NAME": socket.gethostname(),
            },
            url=f"http://{host}:{settings.port('LOG_SIDECAR_PORT')}",
            startup_path="/livez",
            show="/metrics",
        ),
        Container(
            name="exporter",
            argv=(python, "-m", "metrics_exporter"),
            env={
                "ADMIN_HOST": host,
                "ADMIN_PORT": str(settings.port("EXPORTER_PORT")),
                "CONTROL_PORT": str(settings.port("EXPORTER_CONTROL_PORT")),
                "STATSD_HOST": host,
                "STATSD_PORT": str(statsd_port),
                "EXPORTER_JSON_URL": f"{app_url}/stats",
            },
            url=f"http://{host}:{settings.port('EXPORTER_PORT')}",
            startup_path="/readyz",
            show="/metrics",
        ),
        Container(
            name="app",
            argv=(python, "-m", "demo_app"),
            env={
                "APP_HOST": host,
                "APP_PORT": str(app_port),
                "CONTROL_PORT": str(control_port),
                "APP_CONFIG_DIR": str(volumes.config),
                "APP_LOG_FILE": str(volumes.logs / "app.log"),
                "STATSD_HOST": host,
                "STATSD_PORT": str(statsd_port),
                "DB_HOST": os.environ.get("DB_HOST", "localhost"),
            },
            url=app_url,
            startup_path="/readyz",
            show="/api/greeting",
        ),
    ]


def short_line(line: bytes) -> bytes:
    """Show a JSON log line as "level message" (plus its exception), other lines unchanged.

    The services log one JSON object per line for machines (the log sidecar ships
    the app's); people watching four interleaved streams read the short form.
    """
    try:
        record = json.loads(line)
    except ValueError:
        return line
    if not isinstance(record, dict):
        return line
    level = record.get("log.level") or record.get("level") or ""
    message = record.get("message") or record.get("msg") or ""
    short = f"{str(level).lower():<7} {message}"
    if record.get("exception"):
        short += f"\n{record['exception']}"
    return short.encode()


def probe(url: str) -> bool:
    """True when ``url`` answers 200 within the probe timeout."""
    try:
        with urllib.request.urlopen(url, timeout=PROBE_TIMEOUT_SECONDS) as response:  # noqa: S310 - our own http URL
            return int(response.status) == 200
    except (urllib.error.URLError, OSError):
        return False


def busy_ports(settings: Settings) -> list[str]:
    """Ports already taken on the pod's address, so a clash fails before anything starts."""
    taken = []
    checks = [(name, settings.port(name), socket.SOCK_STREAM) for name in CONTRACT_PORTS]
    checks.append(("STATSD_PORT", settings.port("STATSD_PORT"), socket.SOCK_DGRAM))
    for name, port, kind in checks:
        with socket.socket(socket.AF_INET, kind) as sock:
            if kind == socket.SOCK_STREAM:
                # As the servers do: a TIME_WAIT left by the last pod's probes is no clash; a listener is.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((CONTROL_HOST if name.endswith("CONTROL_PORT") else settings.host, port))
            except OSError:
                taken.append(f"{name}={port}{'/udp' if kind == socket.SOCK_DGRAM else ''}")
    return taken


# --------------------------------------------------------------------------- supervision


class PodStartError(Exception):
    """A container exited or never answered its startup probe while the pod was starting."""

    def __init__(self, container: str, reason: str) -> None:
        super().__init__(f"{container}: {reason}")
        self.container = container
        self.reason = reason


@dataclass
class Running:
    """A started container: its process and restart bookkeeping."""

    container: Container
    colour: str
    process: subprocess.Popen[bytes]
    started_at: float
    restarts: int = 0
    restart_at: float | None = None  # set while waiting out the restart back-off


class Pod:
    """Start, watch, restart and stop the containers, printing their output with honcho.

    honcho's own Manager would do the multiplexing, but on Ctrl-C it terminates
    every process at once; a pod stops the app first and its sidecars after, in
    reverse start order, so the log sidecar still ships the app's last lines.
    So each container runs in its own session (the terminal's Ctrl-C reaches only
    this runner) and the runner does the ordered stop itself.
    """

    def __init__(self, containers: list[Container], volumes: Volumes, printer: Printer, raw_output: bool) -> None:
        self.containers = containers
        self.raw_output = raw_output
        self.volumes = volumes
        self.printer = printer
        self.printer.width = max(len(SYSTEM), len(KUBELET), *(len(c.name) for c in containers))
        self.lines: queue.Queue[Message] = queue.Queue()
        self.running: dict[str, Running] = {}
        self.stop_requested = threading.Event()
        self.force = threading.Event()
        self._colours: Iterator[str] = get_colours()

    # Signals ----------------------------------------------------------------
    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        # Only set events here; the main loop does the work (printing from a handler can deadlock).
        if self.stop_requested.is_set():
            self.force.set()
        self.stop_requested.set()

    # Output -----------------------------------------------------------------
    def say(self, text: str, name: str = SYSTEM) -> None:
        self.printer.write(Message("line", text, datetime.datetime.now(), name, None))

    def pump(self, seconds: float) -> None:
        """Print queued output for up to ``seconds`` (returns early on a stop request)."""
        deadline = time.monotonic() + seconds
        while True:
            remaining = deadline - time.monotonic()
            try:
                message = self.lines.get(timeout=max(0.0, min(remaining, 0.1)))
            except queue.Empty:
                if remaining <= 0 or self.stop_requested.is_set():
                    return
                continue
            self.printer.write(message)

    def _read_output(self, name: str, colour: str, stream: IO[bytes]) -> None:
        for line in iter(stream.readline, b""):
            shown = line if self.raw_output else short_line(line)
            self.lines.put(Message("line", shown, datetime.datetime.now(), name, colour))
        stream.close()

    # Lifecycle --------------------------------------------------------------
    def spawn(self, container: Container, restarts: int = 0) -> Running:
        colour = self.running[container.name].colour if container.name in self.running else next(self._colours)
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **container.env}
        process = subprocess.Popen(
            container.argv,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C in the terminal must not reach it: we stop it in order
        )
        assert process.stdout is not None
        threading.Thread(target=self._read_output, args=(container.name, colour, process.stdout), daemon=True).start()
        (self.volumes.run / f"{container.name}.pid").write_text(f"{process.pid}\n")
        self.say(f"{container.name} started (pid {process.pid})")
        running = Running(container, colour, process, time.monotonic(), restarts)
        self.running[container.name] = running
        return running

    def start_all(self, timeout: float) -> None:
        """Start each container once the previous one passed its startup probe."""
        for container in self.containers:
            running = self.spawn(container)
            deadline = time.monotonic() + timeout
            while not probe(container.url + container.startup_path):
                if self.stop_requested.is_set():
                    return
                if running.process.poll() is not None:
                    self.pump(0.3)  # print its last words before the error
                    raise PodStartError(container.name, f"exited with status {running.process.returncode}")
                if time.monotonic() > deadline:
                    raise PodStartError(container.name, f"{container.startup_path} not 200 after {timeout:.0f}s")
                self.pump(0.2)

    def wait_ready(self, timeout: float) -> list[str]:
        """Poll every container's /readyz; return the names still not ready at the deadline."""
        deadline = time.monotonic() + timeout
        pending = list(self.containers)
        while pending and time.monotonic() < deadline and not self.stop_requested.is_set():
            pending = [c for c in pending if not probe(c.url + "/readyz")]
            self.pump(0.2)
        return [c.name for c in pending]

    def supervise(self) -> None:
        """Print output and restart exited containers with back-off until a stop is requested."""
        while not self.stop_requested.is_set():
            self.pump(0.2)
            now = time.monotonic()
            for running in list(self.running.values()):
                if running.restart_at is None and running.process.poll() is not None:
                    self._schedule_restart(running, now)
                elif running.restart_at is not None and now >= running.restart_at and not self.stop_requested.is_set():
                    self.spawn(running.container, running.restarts + 1)

    def _schedule_restart(self, running: Running, now: float) -> None:
        # kubelet's restartPolicy: Always, with its doubling back-off (from 1 s here, not 10 s: a dev loop).
        kill_group(running.process)
        self.pump(0.2)
        uptime = now - running.started_at
        if uptime > 2 * RESTART_BACKOFF_MAX_SECONDS:
            running.restarts = 0
        delay = min(RESTART_BACKOFF_MAX_SECONDS, 2.0**running.restarts)
        running.restart_at = now + delay
        self.say(
            f"{running.container.name} exited (status {running.process.returncode}); "
            f"restarting in {delay:.0f}s (restart #{running.restarts + 1}, like kubelet)"
        )

    def stop_all(self) -> bool:
        """Stop the containers in reverse start order; return False if one had to be killed."""
        clean = True
        for container in reversed(self.containers):
            running = self.running.pop(container.name, None)
            if running is None:
                continue
            clean = self._stop(running) and clean
            (self.volumes.run / f"{container.name}.pid").unlink(missing_ok=True)
        self.pump(0.1)
        return clean

    def _stop(self, running: Running) -> bool:
        process, name = running.process, running.container.name
        if process.poll() is not None:
            kill_group(process)
            return True
        self.say(f"stopping {name} (SIGTERM)")
        # The leader only: gunicorn's master drains its own workers.
        process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        while process.poll() is None and time.monotonic() < deadline and not self.force.is_set():
            self.pump(0.1)
        killed = process.poll() is None
        if killed:
            self.say(f"{name} did not stop in time: SIGKILL")
        kill_group(process)
        self.pump(0.2)
        self.say(f"{name} stopped (status {process.returncode})")
        return not killed


def kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL whatever is left of the container's process group (e.g. orphaned gunicorn workers)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(5)


# --------------------------------------------------------------------------- main


def populate_config_source(settings: Settings, volumes: Volumes, pod: Pod) -> None:
    """Write ./config into config-source the way kubelet writes a ConfigMap volume (``..data`` swap)."""
    swap = ("kubelet-swap", "--from", str(settings.config_dir), "--to", str(volumes.config_source))
    result = subprocess.run(
        [sys.executable, "-m", "config_sidecar", *swap],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    for line in (result.stdout + result.stderr).splitlines():
        pod.say(line, KUBELET)
    # A Ctrl-C right now reaches the child too (same process group): that is a stop, not a failure.
    if result.returncode != 0 and not pod.stop_requested.is_set():
        raise PodStartError(KUBELET, f"could not write {volumes.config_source} from {settings.config_dir}")


def another_pod_pid(volumes: Volumes) -> int | None:
    """The pid of a runner already using this state directory, if it is alive."""
    try:
        pid = int((volumes.run / "local-pod.pid").read_text())
        os.kill(pid, 0)
    except (FileNotFoundError, ValueError, ProcessLookupError):
        return None
    except PermissionError:
        return pid
    return pid


def print_ready(pod: Pod, settings: Settings, volumes: Volumes, seconds: float) -> None:
    pod.say(f"local pod ready in {seconds:.1f}s; volumes in {volumes.root}/")
    for container in reversed(pod.containers):
        pod.say(f"  {container.name:<15} {container.url}{container.show}")
    pod.say(f"  {'statsd':<15} {settings.host}:{settings.port('STATSD_PORT')}/udp")
    pod.say(f"  {'app control':<15} {CONTROL_HOST}:{settings.port('APP_CONTROL_PORT')} (POST /-/reload)")
    pod.say(f"  {'exporter ctl':<15} {CONTROL_HOST}:{settings.port('EXPORTER_CONTROL_PORT')} (POST /-/reload)")
    where = f"Elasticsearch at {settings.es_url}" if settings.es_url else str(volumes.shipped_logs)
    pod.say(f"  {'shipped logs':<15} {where}")
    pod.say(f"edit {settings.config_dir}/app.yaml, then run `make config-push`; Ctrl-C stops the pod")


def run(settings: Settings) -> int:
    volumes = Volumes(settings.state_dir.absolute())
    pod = Pod(pod_containers(settings, volumes), volumes, Printer(sys.stdout), settings.raw_output)
    other = another_pod_pid(volumes)
    if other is not None:
        pod.say(f"a local pod (pid {other}) already runs in {volumes.root}/; stop it first")
        return 1
    taken = busy_ports(settings)
    if taken:
        pod.say(f"ports in use on {settings.host}: {', '.join(taken)} (is `make up` or another pod running?)")
        pod.say("set LOCAL_POD_PORT_OFFSET=100 (or APP_PORT=... etc.) to run on other ports")
        return 1
    volumes.recreate()
    (volumes.run / "local-pod.pid").write_text(f"{os.getpid()}\n")
    pod.install_signal_handlers()
    began = time.monotonic()
    status = 0
    try:
        populate_config_source(settings, volumes, pod)
        if not pod.stop_requested.is_set():
            pod.start_all(settings.startup_timeout)
        late = [] if pod.stop_requested.is_set() else pod.wait_ready(settings.startup_timeout)
        if late:
            pod.say(f"not ready yet: {', '.join(late)} (see their output above); still running")
        if not pod.stop_requested.is_set():
            print_ready(pod, settings, volumes, time.monotonic() - began)
            pod.supervise()
        pod.say("stopping the pod: the app first, then the sidecars in reverse start order")
    except PodStartError as exc:
        pod.say(f"the pod did not start: {exc}")
        status = 1
    finally:
        clean = pod.stop_all()
        (volumes.run / "local-pod.pid").unlink(missing_ok=True)
    pod.say("local pod stopped" if clean else "local pod stopped (some containers had to be killed)")
    return status


def main(argv: list[str] | None = None) -> int:
    settings, _ = parse_cli(Settings, prog="local_pod.py", description=DESCRIPTION, argv=argv)
    return run(settings)


if __name__ == "__main__":
    sys.exit(main())
