"""Mesh proxy: what two Envoys with mTLS add to a web → api call, and what each costs.

Real processes on 127.0.0.1: the api app and the web app (the demo app under
gunicorn; web's /api/greeting calls the api's), once calling directly and once
through both proxies (web's app → web's Envoy 127.0.0.1:8001 → mTLS → the api's
Envoy → the api's app), with the shipped policy (retries, outlier detection,
fault filter with 0 %) and JSON access logs on, as deployed.

- Added latency: both stacks run side by side and one client alternates
  requests between them in random order, one at a time (no queueing hides or
  inflates the difference, and the other engineers' load on the shared machine
  hits both arms alike); p50/p90/p99 with the mesh minus without.
- CPU: user+system CPU-seconds of each Envoy from /proc/<pid>/stat divided by
  the requests completed: CPU-seconds per 1,000 requests, which is also vCPU per
  1,000 requests per second. At two load points: ``wrk -c8`` against web's app
  (the rate the two Python apps allow, a few hundred per second on the shared
  2-core machine) and ``wrk -c8`` straight into web's Envoy (the proxy pair in
  front of the api app, near Istio's 1,000 rps measuring point). Envoy's cost
  per request falls as the rate rises (fewer wake-ups per request), so both are
  shown; and its idle CPU.
- Memory: VmRSS of each Envoy after the load, and its anonymous part (RssAnon):
  the rest is the 107 MB binary's file-backed pages, shared by every Envoy on a
  node and reclaimable.

Targets (issue 13): <= 1.0 ms added at p90 (Istio publishes +2.65 ms),
<= 0.2 vCPU per 1,000 rps per proxy (Istio 0.35), <= 40 MiB RSS per proxy.
"""

from __future__ import annotations

import http.client
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.processes import cpu_seconds, rss_mib
from bench.results import Figure, Target, write_results
from mesh_proxy import ca, cert_dir
from tests.support import ServiceProcess, free_tcp_port
from tests.support.processes import http_ready

QUICK = os.environ.get("BENCH_QUICK") == "1"
REPEATS = 2 if QUICK else 3
LATENCY_PAIRS = 1500 if QUICK else 5000
LOAD_SECONDS = 5 if QUICK else 10
LOAD_CONNECTIONS = 8
IDLE_SECONDS = 5 if QUICK else 10
# Envoy worker threads compared in a full run (the default is the first).
CONCURRENCIES = (1,) if QUICK else (1, 2)
ROOT = Path(__file__).resolve().parent.parent
DESCRIPTION = (
    "web → api through two Envoys (mTLS, the shipped policy, JSON access logs) versus direct, against the "
    "real demo app under gunicorn on 127.0.0.1 (bench/mesh.py). Added latency: both stacks side by side, one "
    "client alternating requests between them one at a time. CPU: /proc user+system seconds of each Envoy per "
    "1,000 requests (= vCPU per 1,000 rps), at the rate the two Python apps allow and with wrk straight into "
    "web's Envoy (near Istio's 1,000 rps point). RSS includes the 107 MB binary's shared, file-backed pages; "
    "RssAnon is what each extra Envoy adds."
)
APP_CONFIG = "greeting: hello from the mesh benchmark\nchaos:\n  latency_ms: 0\n  error_rate: 0\n"
NAMESPACE = "sidecar-lab"

PERCENTILE = re.compile(r"^\s*(50|90|99)(?:\.000)?%\s+([\d.]+)(us|ms|s)\s*$", re.MULTILINE)
RATE = re.compile(r"^Requests/sec:\s+([\d.]+)", re.MULTILINE)
COMPLETED = re.compile(r"^\s*(\d+) requests in", re.MULTILINE)
ERRORS = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
SCALE = {"us": 0.001, "ms": 1.0, "s": 1000.0}


@dataclass
class Run:
    """The processes of one arm (direct or mesh), by name."""

    workdir: Path
    procs: dict[str, ServiceProcess] = field(default_factory=dict)

    def start(self, name: str, module: str, env: dict[str, str], ready_url: str) -> None:
        self.procs[name] = ServiceProcess.python_module(module, env, self.workdir / f"{name}.out").start()
        self.procs[name].wait_for(http_ready(ready_url), f"{ready_url} to answer 200", timeout=60, interval=0.1)

    def stop(self) -> None:
        for process in self.procs.values():
            process.stop(30)


def start_app(run: Run, name: str, port: int, upstream: str | None) -> None:
    config = run.workdir / f"{name}-config"
    config.mkdir()
    (config / "app.yaml").write_text(APP_CONFIG)
    env = {
        "APP_HOST": "127.0.0.1",
        "APP_PORT": str(port),
        "CONTROL_PORT": str(free_tcp_port()),  # two apps run here: the default 8079 would clash
        "APP_CONFIG_DIR": str(config),
        "APP_LOG_FILE": "",
        "STATSD_HOST": "",
        "APP_WORKERS": "2",
        "APP_NAME": name,
        "LOG_LEVEL": "WARNING",
    }
    if upstream:
        env["APP_UPSTREAM_URL"] = upstream
    run.start(name, "demo_app", env, f"http://127.0.0.1:{port}/readyz")


def start_proxy(run: Run, name: str, ports: dict[str, int], env: dict[str, str]) -> None:
    root = run.workdir / name
    (root / "logs").mkdir(parents=True)
    policy = root / "policy"
    shutil.copytree(ROOT / "config" / "mesh", policy / "mesh")
    run.start(
        name,
        "mesh_proxy",
        {
            "MESH_INBOUND_HOST": "127.0.0.1",
            "MESH_INBOUND_PORT": str(ports["inbound"]),
            "MESH_OUTBOUND_PORT": str(ports["outbound"]),
            "MESH_ADMIN_PORT": str(ports["admin"]),
            "MESH_STATS_HOST": "127.0.0.1",
            "MESH_STATS_PORT": str(ports["stats"]),
            "MESH_CERT_DIR": str(root / "certs"),
            "MESH_POLICY_DIR": str(policy),
            "MESH_RUN_DIR": str(root / "run"),
            "MESH_ACCESS_LOG": str(root / "logs" / "envoy-access.log"),
            "LOG_LEVEL": "WARNING",
            **env,
        },
        f"http://127.0.0.1:{ports['stats']}/ready",
    )


def start(workdir: Path, mesh: bool, concurrency: int) -> tuple[Run, int, int | None]:
    """Start one arm; return it, web's app port and web's Envoy outbound port (None without the mesh)."""
    run = Run(workdir)
    api_port, web_port = free_tcp_port(), free_tcp_port()
    try:
        start_app(run, "api", api_port, None)
        if not mesh:
            start_app(run, "web", web_port, f"http://127.0.0.1:{api_port}")
            return run, web_port, None
        authority = ca.create_authority(workdir / "ca", timedelta(days=1), datetime.now(UTC))
        ports = {
            pod: {kind: free_tcp_port() for kind in ("inbound", "outbound", "admin", "stats")} for pod in ("api", "web")
        }
        for pod, account in (("api", "demo-app"), ("web", "web")):
            workload = ca.issue(authority, ca.spiffe_id(NAMESPACE, account), timedelta(hours=1), datetime.now(UTC))
            cert_dir.publish(workdir / f"{pod}-proxy" / "certs", workload)
        common = {"MESH_CONCURRENCY": str(concurrency)}
        start_proxy(
            run,
            "api-proxy",
            ports["api"],
            {**common, "MESH_APP_PORT": str(api_port), "MESH_UPSTREAM_ADDRESSES": "127.0.0.1:1"},
        )
        start_proxy(
            run,
            "web-proxy",
            ports["web"],
            {
                **common,
                "MESH_APP_PORT": str(web_port),
                "MESH_UPSTREAM_ADDRESSES": f"127.0.0.1:{ports['api']['inbound']}",
            },
        )
        start_app(run, "web", web_port, f"http://127.0.0.1:{ports['web']['outbound']}")
    except BaseException:
        run.stop()
        raise
    return run, web_port, ports["web"]["outbound"]


def wrk(port: int, connections: int, seconds: int, path: str = "/api/greeting") -> str:
    return subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            "--timeout",
            "5s",
            "--latency",
            f"http://127.0.0.1:{port}{path}",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def percentiles(out: str) -> dict[str, float]:
    found = {f"p{m.group(1)}": float(m.group(2)) * SCALE[m.group(3)] for m in PERCENTILE.finditer(out)}
    if set(found) != {"p50", "p90", "p99"}:
        raise RuntimeError(f"could not parse wrk's latency distribution:\n{out}")
    return found


def completed(out: str) -> tuple[int, float]:
    count, rate = COMPLETED.search(out), RATE.search(out)
    if not count or not rate:
        raise RuntimeError(f"could not parse wrk output:\n{out}")
    errors = ERRORS.search(out)
    if errors and int(errors.group(1)) > 0:
        raise RuntimeError(f"{errors.group(1)} requests failed under load:\n{out}")
    return int(count.group(1)), float(rate.group(1))


def interleaved(ports: dict[str, int], pairs: int) -> dict[str, list[float]]:
    """Latencies (ms) of ``pairs`` requests per arm, alternating arms in random order, one at a time."""
    connections = {arm: http.client.HTTPConnection("127.0.0.1", port, timeout=10) for arm, port in ports.items()}
    latencies: dict[str, list[float]] = {arm: [] for arm in ports}
    arms = list(ports)
    rng = random.Random(13)
    try:
        for _ in range(pairs):
            rng.shuffle(arms)
            for arm in arms:
                started = time.perf_counter()
                connections[arm].request("GET", "/api/greeting")
                response = connections[arm].getresponse()
                response.read()
                if response.status != 200:
                    raise RuntimeError(f"{arm}: /api/greeting answered {response.status}")
                latencies[arm].append((time.perf_counter() - started) * 1000)
    finally:
        for connection in connections.values():
            connection.close()
    return latencies


def quantiles(values: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return {"p50": cuts[49], "p90": cuts[89], "p99": cuts[98]}


def measure(concurrency: int) -> tuple[dict[str, float], dict[str, list[float]]]:
    """One repeat: both stacks side by side; figures and the raw latencies."""
    with tempfile.TemporaryDirectory(prefix="bench-mesh-") as tmp:
        (Path(tmp) / "direct").mkdir()
        (Path(tmp) / "mesh").mkdir()
        direct, direct_port, _ = start(Path(tmp) / "direct", False, concurrency)
        try:
            meshed, mesh_port, outbound_port = start(Path(tmp) / "mesh", True, concurrency)
            try:
                return load(meshed, {"direct": direct_port, "mesh": mesh_port}, outbound_port)
            finally:
                meshed.stop()
        finally:
            direct.stop()


def load(
    meshed: Run, ports: dict[str, int], outbound_port: int | None
) -> tuple[dict[str, float], dict[str, list[float]]]:
    proxies = {name: proc.pid for name, proc in meshed.procs.items() if name.endswith("-proxy")}
    result: dict[str, float] = {}
    before = {name: cpu_seconds(pid) for name, pid in proxies.items()}
    time.sleep(IDLE_SECONDS)
    for name, pid in proxies.items():
        result[f"{name} idle"] = (cpu_seconds(pid) - before[name]) / IDLE_SECONDS * 100
    for port in ports.values():
        wrk(port, 1, 2)  # warm up: connection pools, TLS sessions, gunicorn workers
    latencies = interleaved(ports, LATENCY_PAIRS)
    for arm, values in latencies.items():
        result.update({f"{arm} {k}": v for k, v in quantiles(values).items()})
    result["throughput direct"] = completed(wrk(ports["direct"], LOAD_CONNECTIONS, LOAD_SECONDS))[1]
    before = {name: cpu_seconds(pid) for name, pid in proxies.items()}
    requests, result["throughput mesh"] = completed(wrk(ports["mesh"], LOAD_CONNECTIONS, LOAD_SECONDS))
    for name, pid in proxies.items():
        result[f"{name} cpu per 1000"] = (cpu_seconds(pid) - before[name]) / requests * 1000
    assert outbound_port is not None
    before = {name: cpu_seconds(pid) for name, pid in proxies.items()}
    requests, result["pair throughput"] = completed(wrk(outbound_port, LOAD_CONNECTIONS, LOAD_SECONDS))
    for name, pid in proxies.items():
        result[f"{name} pair cpu per 1000"] = (cpu_seconds(pid) - before[name]) / requests * 1000
    for name, pid in proxies.items():
        result[f"{name} rss"] = rss_mib(pid)
        result[f"{name} anon"] = rss_anon_mib(pid)
        result[f"{name} pss"] = pss_mib(pid)
    return result, latencies


def rss_anon_mib(pid: int) -> float:
    return _kib(Path(f"/proc/{pid}/status"), "RssAnon:") / 1024


def pss_mib(pid: int) -> float:
    """Proportional set size: shared pages (the binary's text) divided among the processes mapping them."""
    return _kib(Path(f"/proc/{pid}/smaps_rollup"), "Pss:") / 1024


def _kib(path: Path, key: str) -> float:
    for line in path.read_text().splitlines():
        if line.startswith(key):
            return int(line.split()[1])
    return float("nan")


def main() -> int:
    if shutil.which("wrk") is None:
        print("wrk not installed: make bench-deps", file=sys.stderr)
        return 1
    samples: dict[str, list[float]] = {}

    def add(key: str, value: float) -> None:
        samples.setdefault(key, []).append(value)

    series: dict[str, list[float]] = {}
    for concurrency in CONCURRENCIES:
        for repeat in range(REPEATS):
            result, latencies = measure(concurrency)
            if concurrency == CONCURRENCIES[0] and repeat == 0:
                series = {
                    "web → api latency without the mesh": latencies["direct"],
                    "web → api latency with the mesh": latencies["mesh"],
                }
            for key in ("p50", "p90", "p99"):
                add(f"c{concurrency} added {key}", result[f"mesh {key}"] - result[f"direct {key}"])
                add(f"c{concurrency} direct {key}", result[f"direct {key}"])
                add(f"c{concurrency} mesh {key}", result[f"mesh {key}"])
            for key in ("throughput direct", "throughput mesh", "pair throughput"):
                add(f"c{concurrency} {key}", result[key])
            for proxy in ("web-proxy", "api-proxy"):
                for measure_key in ("cpu per 1000", "pair cpu per 1000", "rss", "anon", "pss", "idle"):
                    add(f"c{concurrency} {proxy} {measure_key}", result[f"{proxy} {measure_key}"])
            print(
                f"--concurrency {concurrency}: p90 {result['direct p90']:.2f} -> {result['mesh p90']:.2f} ms, "
                f"CPU/1000 web {result['web-proxy cpu per 1000']:.3f} s at {result['throughput mesh']:.0f} rps, "
                f"{result['web-proxy pair cpu per 1000']:.3f} s at {result['pair throughput']:.0f} rps, "
                f"RSS web {result['web-proxy rss']:.1f} MiB",
                flush=True,
            )
    write_results("mesh", figures(samples), series=series, description=DESCRIPTION)
    return 0


def figures(samples: dict[str, list[float]]) -> list[Figure]:
    first = f"c{CONCURRENCIES[0]}"
    sequential = f"{LATENCY_PAIRS} requests per arm, arms interleaved, one at a time; mesh minus direct"
    result = [
        Figure(
            "added latency p50 (two Envoys, mTLS)",
            "ms",
            samples[f"{first} added p50"],
            note=sequential,
        ),
        Figure("added latency p90 (two Envoys, mTLS)", "ms", samples[f"{first} added p90"], Target("<=", 1.0)),
        Figure("added latency p99 (two Envoys, mTLS)", "ms", samples[f"{first} added p99"]),
        Figure("web → api p90 without the mesh", "ms", samples[f"{first} direct p90"]),
        Figure("web → api p90 with the mesh", "ms", samples[f"{first} mesh p90"]),
    ]
    for proxy, label in (("web-proxy", "web's Envoy (outbound)"), ("api-proxy", "api's Envoy (inbound)")):
        result.append(
            Figure(
                f"{label} CPU per 1,000 requests, web app's rate",
                "CPU s",
                samples[f"{first} {proxy} cpu per 1000"],
                Target("<=", 0.2),
                note=(
                    f"= vCPU per 1,000 rps; /proc user+system under wrk -c{LOAD_CONNECTIONS} against web's app. "
                    "At the few hundred rps the Python apps allow each request wakes Envoy on its own, "
                    "so a request costs more than at ~1,000 rps (next row)"
                ),
            )
        )
        result.append(
            Figure(
                f"{label} CPU per 1,000 requests, proxy pair at ~1,000 rps",
                "CPU s",
                samples[f"{first} {proxy} pair cpu per 1000"],
                Target("<=", 0.2),
                note="wrk -c8 straight into web's Envoy → api's Envoy → api app (Istio's load point)",
            )
        )
        result.append(
            Figure(f"{label} idle CPU", "% of a core", samples[f"{first} {proxy} idle"], note=f"{IDLE_SECONDS} s idle")
        )
    for proxy, label in (("web-proxy", "web's Envoy"), ("api-proxy", "api's Envoy")):
        result.append(
            Figure(
                f"{label} RSS",
                "MiB",
                samples[f"{first} {proxy} rss"],
                Target("<=", 40.0),
                note=(
                    "VmRSS after the load. Most of it is the 107 MB binary's file-backed pages, shared by every "
                    "Envoy on a node and reclaimable; the private part and PSS follow"
                ),
            )
        )
        result.append(
            Figure(
                f"{label} private memory (RssAnon)",
                "MiB",
                samples[f"{first} {proxy} anon"],
                note="heap and stacks: what each extra Envoy on a node adds",
            )
        )
        result.append(
            Figure(
                f"{label} PSS (two Envoys on the host)",
                "MiB",
                samples[f"{first} {proxy} pss"],
                note="the binary's shared pages split between the Envoys mapping them",
            )
        )
    result += [
        Figure(
            f"throughput without the mesh (wrk -c{LOAD_CONNECTIONS})", "req/s", samples[f"{first} throughput direct"]
        ),
        Figure(
            f"throughput with the mesh (wrk -c{LOAD_CONNECTIONS})",
            "req/s",
            samples[f"{first} throughput mesh"],
            note="both gunicorn apps, wrk and the Envoys share 2 cores",
        ),
        Figure("proxy pair throughput (api app behind)", "req/s", samples[f"{first} pair throughput"]),
    ]
    for concurrency in CONCURRENCIES[1:]:
        key = f"c{concurrency}"
        result += [
            Figure(f"--concurrency {concurrency}: added latency p90", "ms", samples[f"{key} added p90"]),
            Figure(
                f"--concurrency {concurrency}: web's Envoy CPU per 1,000 requests",
                "CPU s",
                samples[f"{key} web-proxy cpu per 1000"],
            ),
            Figure(f"--concurrency {concurrency}: web's Envoy RSS", "MiB", samples[f"{key} web-proxy rss"]),
        ]
    return result


if __name__ == "__main__":
    raise SystemExit(main())
