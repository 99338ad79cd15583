"""The cost of the pattern: the app alone versus the app with its three sidecars.

Critics of sidecars cite their memory and CPU. This measures, in one run, the
RSS and idle CPU of each container's process next to the app's, and the app's
request throughput and p99 latency under wrk with and without the sidecars
attached (statsd to the exporter, logs tailed and shipped, config watched).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.processes import cpu_seconds, rss_mib
from bench.results import Figure, Target, write_results
from tests.support import ServiceProcess, free_tcp_port, free_udp_port
from tests.support.processes import http_ready

QUICK = os.environ.get("BENCH_QUICK") == "1"
REPEATS = 2 if QUICK else 3
LOAD_SECONDS = 5 if QUICK else 10
IDLE_SECONDS = 5 if QUICK else 15
CONNECTIONS = 16
APP_CONFIG = "greeting: hello from the benchmark\nchaos:\n  latency_ms: 0\n  error_rate: 0\n"


@dataclass
class Pod:
    """Processes of one run, by container name."""

    workdir: Path
    app_port: int = field(default_factory=free_tcp_port)
    control_port: int = field(default_factory=free_tcp_port)  # the app's, POST /-/reload
    procs: dict[str, ServiceProcess] = field(default_factory=dict)

    def start(self, name: str, module: str, env: dict[str, str]) -> ServiceProcess:
        self.procs[name] = ServiceProcess.python_module(module, env, self.workdir / f"{name}.out").start()
        return self.procs[name]

    def stop(self) -> None:
        # App first, then the sidecars, as in a pod.
        for name in ["app", *[n for n in self.procs if n != "app"]]:
            if name in self.procs:
                self.procs[name].stop(30)


def wait_ready(process: ServiceProcess, url: str) -> None:
    process.wait_for(http_ready(url), f"{url} to answer 200", timeout=60, interval=0.1)


def start_pod(workdir: Path, with_sidecars: bool) -> tuple[Pod, dict[str, int]]:
    pod = Pod(workdir)
    source, config, logs = workdir / "config-source", workdir / "config", workdir / "logs"
    for d in (source, config, logs):
        d.mkdir()
    (source / "app.yaml").write_text(APP_CONFIG)
    statsd_port = free_udp_port()
    admin: dict[str, int] = {}
    if with_sidecars:
        admin = {"config-sidecar": free_tcp_port(), "log-sidecar": free_tcp_port(), "exporter": free_tcp_port()}
        config_sidecar = pod.start(
            "config-sidecar",
            "config_sidecar",
            {
                "CONFIG_SOURCE_DIR": str(source),
                "CONFIG_TARGET_DIR": str(config),
                "CONFIG_RELOAD_URL": f"http://127.0.0.1:{pod.control_port}/-/reload",
                "ADMIN_HOST": "127.0.0.1",
                "ADMIN_PORT": str(admin["config-sidecar"]),
            },
        )
        wait_ready(config_sidecar, f"http://127.0.0.1:{admin['config-sidecar']}/readyz")
        (workdir / "state").mkdir()
        pod.start(
            "log-sidecar",
            "log_sidecar",
            {
                "LOG_PATHS": str(logs / "*.log"),
                "LOG_STATE_DIR": str(workdir / "state"),
                "LOG_SINK": "file",
                "LOG_FILE_SINK_PATH": str(workdir / "shipped.ndjson"),
                "ADMIN_HOST": "127.0.0.1",
                "ADMIN_PORT": str(admin["log-sidecar"]),
            },
        )
        pod.start(
            "exporter",
            "metrics_exporter",
            {
                "ADMIN_HOST": "127.0.0.1",
                "ADMIN_PORT": str(admin["exporter"]),
                "CONTROL_PORT": str(free_tcp_port()),
                "STATSD_HOST": "127.0.0.1",
                "STATSD_PORT": str(statsd_port),
                "EXPORTER_JSON_URL": f"http://127.0.0.1:{pod.app_port}/stats",
            },
        )
    else:
        # Without the config sidecar the app reads the plain directory directly.
        shutil.copy(source / "app.yaml", config / "app.yaml")
    app = pod.start(
        "app",
        "demo_app",
        {
            "APP_HOST": "127.0.0.1",
            "APP_PORT": str(pod.app_port),
            "CONTROL_PORT": str(pod.control_port),
            "APP_CONFIG_DIR": str(config),
            "APP_LOG_FILE": str(logs / "app.log"),
            "STATSD_HOST": "127.0.0.1",
            "STATSD_PORT": str(statsd_port),
            "APP_WORKERS": "2",
        },
    )
    wait_ready(app, f"http://127.0.0.1:{pod.app_port}/readyz")
    for name, port in admin.items():
        wait_ready(pod.procs[name], f"http://127.0.0.1:{port}/readyz")
    return pod, admin


LATENCY = re.compile(r"^\s*99%\s+([\d.]+)(us|ms|s)\s*$", re.MULTILINE)
RATE = re.compile(r"^Requests/sec:\s+([\d.]+)", re.MULTILINE)
SCALE = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def load(port: int) -> tuple[float, float]:
    """Run wrk against /api/greeting; return (requests/s, p99 ms)."""
    out = subprocess.run(
        ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{LOAD_SECONDS}s", "--latency", f"http://127.0.0.1:{port}/api/greeting"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rate, p99 = RATE.search(out), LATENCY.search(out)
    if not rate or not p99:
        raise RuntimeError(f"could not parse wrk output:\n{out}")
    return float(rate.group(1)), float(p99.group(1)) * SCALE[p99.group(2)]


def idle(pod: Pod) -> dict[str, tuple[float, float]]:
    """RSS (MiB) and idle CPU (% of one core) of each process over IDLE_SECONDS."""
    before = {name: cpu_seconds(p.pid) for name, p in pod.procs.items()}
    time.sleep(IDLE_SECONDS)
    return {
        name: (rss_mib(p.pid), (cpu_seconds(p.pid) - before[name]) / IDLE_SECONDS * 100)
        for name, p in pod.procs.items()
    }


def main() -> int:
    if shutil.which("wrk") is None:
        print("wrk not installed: apt-get install wrk", file=sys.stderr)
        return 1
    rss: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}
    rate: dict[str, list[float]] = {"alone": [], "with sidecars": []}
    p99: dict[str, list[float]] = {"alone": [], "with sidecars": []}
    per_request: dict[str, list[float]] = {}
    for _ in range(REPEATS):
        for with_sidecars in (False, True):
            label = "with sidecars" if with_sidecars else "alone"
            with tempfile.TemporaryDirectory(prefix="bench-pod-") as tmp:
                pod, _ = start_pod(Path(tmp), with_sidecars)
                try:
                    for name, (mib, pct) in idle(pod).items():
                        key = f"app ({label})" if name == "app" else name
                        rss.setdefault(key, []).append(mib)
                        cpu.setdefault(key, []).append(pct)
                    sidecars = {n: pr.pid for n, pr in pod.procs.items() if n != "app"}
                    busy_before = {n: cpu_seconds(pid) for n, pid in sidecars.items()}
                    r, p = load(pod.app_port)
                    for name, pid in sidecars.items():
                        # CPU the sidecar spent per 1,000 requests: the pattern's cost that
                        # noise in req/s on a shared 2-core machine cannot hide.
                        used = cpu_seconds(pid) - busy_before[name]
                        per_request.setdefault(name, []).append(used / (r * LOAD_SECONDS) * 1000 * 1000)
                    rate[label].append(r)
                    p99[label].append(p)
                    print(f"{label}: {r:,.0f} req/s, p99 {p:.1f} ms", flush=True)
                finally:
                    pod.stop()
    ratio = [w / a for w, a in zip(rate["with sidecars"], rate["alone"], strict=True)]
    targets = {"config-sidecar": 35.0, "log-sidecar": 60.0, "exporter": 40.0}
    figures = [
        Figure(f"RSS {name}", "MiB", values, Target("<=", targets[name]) if name in targets else None)
        for name, values in rss.items()
    ]
    figures += [Figure(f"idle CPU {name}", "% of a core", values) for name, values in cpu.items()]
    figures += [
        Figure(f"{name} CPU per 1,000 app requests under load", "CPU ms", values, note="statsd, log lines, config idle")
        for name, values in per_request.items()
    ]
    figures += [
        Figure(
            "app throughput alone", "req/s", rate["alone"], note=f"wrk -c{CONNECTIONS}, {LOAD_SECONDS} s, /api/greeting"
        ),
        Figure("app throughput with sidecars", "req/s", rate["with sidecars"]),
        Figure("throughput with / alone", "×", ratio, note="the sidecars share the same 2 cores"),
        Figure("app p99 alone", "ms", p99["alone"]),
        Figure("app p99 with sidecars", "ms", p99["with sidecars"]),
    ]
    write_results("pod_overhead", figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
