"""The exporter's limits: statsd lines/s before UDP loss, scrape latency at 1k and 10k series, RSS.

Ingest: a sender process sends gunicorn-shaped traffic (per request: a duration
timer, the request counter, a status counter; one line per packet as gunicorn
sends it) at increasing rates to the exporter — one Python process, so at most
one core (the GIL); it is not pinned, because pinning to a core other processes
also use measures them, not the exporter. Loss = lines sent - the exporter's ``exporter_statsd_lines_total``
increase; the figure is the highest rate with zero loss. A second series sends
10 lines per packet, as buffering statsd clients do.

Scrape: the exporter holds 1k, then 10k statsd series; /metrics is fetched the
way Prometheus does (OpenMetrics preferred, gzip) and timed from the client.

Run: ``.venv/bin/python -m bench.exporter`` (``BENCH_QUICK=1`` for a fast pass).
"""

from __future__ import annotations

import http.client
import multiprocessing
import os
import random
import socket
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from bench.processes import rss_mib
from bench.results import Figure, Target, write_results
from tests.support import ServiceProcess, free_tcp_port, free_udp_port

QUICK = os.environ.get("BENCH_QUICK") == "1"
REPEATS = 1 if QUICK else 3
STEP_SECONDS = 1.0 if QUICK else 3.0
RATES = [25_000, 50_000, 100_000] if QUICK else [20_000, 35_000, 50_000, 70_000, 100_000, 140_000, 200_000]
SCRAPES = 40 if QUICK else 200
PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
    "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)


@dataclass
class Exporter:
    process: ServiceProcess
    http_port: int
    statsd_port: int

    def get(self, path: str, headers: dict[str, str] | None = None) -> bytes:
        connection = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=30)
        try:
            connection.request("GET", path, headers=headers or {})
            response = connection.getresponse()
            return response.read()
        finally:
            connection.close()

    def value(self, name: str) -> float:
        text = self.get("/metrics").decode()
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name:
                    return float(sample.value)
        raise KeyError(name)


@contextmanager
def exporter(workdir: Path) -> Iterator[Exporter]:
    http_port, statsd_port = free_tcp_port(), free_udp_port()
    env = {
        "ADMIN_HOST": "127.0.0.1",
        "ADMIN_PORT": str(http_port),
        "CONTROL_PORT": str(free_tcp_port()),
        "STATSD_HOST": "127.0.0.1",
        "STATSD_PORT": str(statsd_port),
        "EXPORTER_CONFIG": "",  # the built-in mapping
        "EXPORTER_JSON_URL": "",
        "EXPORTER_MAX_SERIES_PER_METRIC": "20000",
        "LOG_LEVEL": "WARNING",
    }
    with ServiceProcess.python_module("metrics_exporter", env, workdir / "exporter.log") as process:
        running = Exporter(process, http_port, statsd_port)
        process.wait_for(lambda: running.get("/readyz") is not None, "an answer on /readyz")  # raises until then
        yield running


def gunicorn_lines(count: int) -> list[bytes]:
    """What gunicorn sends per request, with varied durations and statuses."""
    rng = random.Random(7)
    lines: list[bytes] = []
    while len(lines) < count:
        status = rng.choice((200, 200, 200, 201, 404, 500))
        lines.append(f"gunicorn.request.duration:{rng.uniform(0.5, 400):.3f}|ms".encode())
        lines.append(b"gunicorn.requests:1|c|@1.0")
        lines.append(f"gunicorn.request.status.{status}:1|c|@1.0".encode())
    return lines[:count]


def send_at_rate(port: int, rate: float, count: int, per_packet: int, results: multiprocessing.Queue[float]) -> None:
    """Send ``count`` lines at ``rate`` lines/s, ``per_packet`` lines per datagram; report the achieved rate."""
    lines = gunicorn_lines(1200)
    packets = [b"\n".join(lines[i : i + per_packet]) for i in range(0, len(lines), per_packet)]
    total_packets = count // per_packet
    plan = (packets * (total_packets // len(packets) + 1))[:total_packets]
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.connect(("127.0.0.1", port))  # a connected socket sends without resolving the address each time
    send = sock.send
    packet_rate = rate / per_packet
    started = time.perf_counter()
    sent = 0
    while sent < total_packets:
        due = min(int((time.perf_counter() - started) * packet_rate) + 1, total_packets)
        if due <= sent:
            time.sleep(0.0005)
            continue
        for packet in plan[sent:due]:
            send(packet)
        sent = due
    elapsed = time.perf_counter() - started
    sock.close()
    results.put(sent * per_packet / elapsed)


def settle(running: Exporter, expected: float, timeout: float = 20.0) -> float:
    """Wait until the exporter has read everything it will ever read; return its line counter."""
    deadline = time.monotonic() + timeout
    last, stable_since = -1.0, time.monotonic()
    while time.monotonic() < deadline:
        seen = running.value("exporter_statsd_lines_total")
        if seen >= expected:
            return seen
        if seen != last:
            last, stable_since = seen, time.monotonic()
        elif time.monotonic() - stable_since > 1.0:
            return seen
        time.sleep(0.1)
    return last


def max_lossless_rate(running: Exporter, per_packet: int) -> tuple[float, list[tuple[float, float, float]]]:
    """Ramp the rate until lines are lost; return the best lossless achieved rate and each step."""
    context = multiprocessing.get_context("fork")
    steps: list[tuple[float, float, float]] = []
    best = 0.0
    for rate in RATES:
        count = int(rate * STEP_SECONDS) // per_packet * per_packet
        before = settle(running, 0)
        results: multiprocessing.Queue[float] = context.Queue()
        sender = context.Process(target=send_at_rate, args=(running.statsd_port, rate, count, per_packet, results))
        sender.start()
        achieved = results.get(timeout=120)
        sender.join(30)
        received = settle(running, before + count) - before
        lost = count - received
        steps.append((rate, achieved, lost))
        print(
            f"  {per_packet} line(s)/packet: asked {rate:,.0f}/s, sent {achieved:,.0f}/s, lost {lost:,.0f}", flush=True
        )
        if lost > 0:
            break
        best = achieved
        if achieved < rate * 0.9:
            print("  the sender cannot go faster: the exporter's limit is above this", flush=True)
            break
    return best, steps


def populate(running: Exporter, series: int) -> None:
    """Make the exporter hold ``series`` counter series (one metric, an ``id`` label)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for start in range(0, series, 50):
            packet = "\n".join(f"bench.series:1|c|#id:{i}" for i in range(start, min(series, start + 50)))
            sock.sendto(packet.encode(), ("127.0.0.1", running.statsd_port))
            if start % 2000 == 0:
                time.sleep(0.01)  # stay far below the loss rate; this is setup, not the test
    deadline = time.monotonic() + 30
    while running.value("exporter_statsd_series") < series:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {running.value('exporter_statsd_series')} of {series} series arrived")
        time.sleep(0.1)


def scrape_latencies(running: Exporter) -> tuple[list[float], int]:
    headers = {"Accept": PROMETHEUS_ACCEPT, "Accept-Encoding": "gzip", "X-Prometheus-Scrape-Timeout-Seconds": "10"}
    running.get("/metrics", headers)  # warm up
    timings = []
    size = 0
    for _ in range(SCRAPES):
        started = time.perf_counter()
        size = len(running.get("/metrics", headers))
        timings.append((time.perf_counter() - started) * 1000)
    return timings, size


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main() -> int:
    lossless_1: list[float] = []
    lossless_10: list[float] = []
    p50: dict[int, list[float]] = {1000: [], 10000: []}
    p99: dict[int, list[float]] = {1000: [], 10000: []}
    rss: dict[str | int, list[float]] = {"idle": [], 1000: [], 10000: []}
    sizes: dict[int, int] = {}
    steps: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-exporter-") as tmp:
        for run in range(REPEATS):
            # Other work on the machine steals the exporter's CPU; the load average puts a run in context.
            steps.setdefault("load average (1 min) at each run's start", []).append(os.getloadavg()[0])
            print(f"run {run + 1}/{REPEATS} (load average {os.getloadavg()[0]:.1f})", flush=True)
            with exporter(Path(tmp)) as running:
                time.sleep(1)
                rss["idle"].append(rss_mib(running.process.pid, include_children=False))
                for series in (1000, 10000):
                    populate(running, series)
                    timings, sizes[series] = scrape_latencies(running)
                    p50[series].append(percentile(timings, 0.5))
                    p99[series].append(percentile(timings, 0.99))
                    rss[series].append(rss_mib(running.process.pid, include_children=False))
                    print(
                        f"  {series} series: p50 {p50[series][-1]:.1f} ms, p99 {p99[series][-1]:.1f} ms, "
                        f"RSS {rss[series][-1]:.1f} MiB, {sizes[series]} bytes gzip",
                        flush=True,
                    )
            with exporter(Path(tmp)) as running:
                best, ramp = max_lossless_rate(running, per_packet=1)
                lossless_1.append(best)
                steps[f"run{run + 1} 1/packet asked,sent,lost"] = [v for step in ramp for v in step]
                best, ramp = max_lossless_rate(running, per_packet=10)
                lossless_10.append(best)
                steps[f"run{run + 1} 10/packet asked,sent,lost"] = [v for step in ramp for v in step]
    figures = [
        Figure(
            "statsd lines/s without loss (1 line/packet, as gunicorn sends)",
            "lines/s",
            lossless_1,
            Target(">=", 50_000),
            note="highest rate of the ramp with zero loss (the exporter is one process: one core at most)",
            extra={"ramp": RATES, "step_seconds": STEP_SECONDS},
        ),
        Figure("statsd lines/s without loss (10 lines/packet)", "lines/s", lossless_10),
        Figure("scrape p50 at 1k series", "ms", p50[1000]),
        Figure("scrape p99 at 1k series", "ms", p99[1000], Target("<=", 50), extra={"gzip_bytes": sizes[1000]}),
        Figure("scrape p50 at 10k series", "ms", p50[10000]),
        Figure("scrape p99 at 10k series", "ms", p99[10000], extra={"gzip_bytes": sizes[10000]}),
        Figure("RSS idle", "MiB", rss["idle"]),
        Figure("RSS at 1k series", "MiB", rss[1000], Target("<=", 40)),
        Figure("RSS at 10k series", "MiB", rss[10000]),
    ]
    path = write_results("exporter", figures, steps)
    for figure in figures:
        shown = statistics.median(figure.samples) if figure.samples else float("nan")
        verdict = "" if figure.target is None else (" (met)" if figure.target.met(shown) else " (MISSED)")
        print(f"{figure.name}: {shown:,.1f} {figure.unit}{verdict}")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
