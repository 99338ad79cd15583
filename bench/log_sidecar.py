"""The log sidecar's own numbers: throughput, write→acknowledged latency, and RSS (steady and in an outage).

Run with ``.venv/bin/python -m bench.log_sidecar`` (``BENCH_QUICK=1`` for a short pass).
The sidecar runs as a real process (``python -m log_sidecar``) shipping to the Bulk-API
emulator in this process, the way it runs in a pod.

1. Throughput: a pre-written file of ~200-byte JSON lines is renamed into LOG_PATHS and
   timed until the emulator stored every line. CPU seconds come from /proc/<pid>/stat.
   The emulator (also Python) competes for the same two shared cores, so the sidecar's
   own capacity, lines per CPU-second of the sidecar, is reported next to the wall rate.
2. Latency at 1,000 lines/s: each line's write time is kept; the emulator's document
   count is polled every few ms, so line n is acknowledged when the count passes n.
3. RSS: sampled every half second while writing at 1,000 lines/s, first with the
   emulator up, then with it ``down`` (connections closed) for as long again. The
   backlog must stay in the file, not in memory: RSS stays flat. Afterwards every line
   must arrive exactly once.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.processes import cpu_seconds, rss_mib
from bench.results import Figure, Target, write_results
from sink_emulators.elasticsearch import BulkEmulator, Faults
from tests.support import ServiceProcess, free_tcp_port

QUICK = os.environ.get("BENCH_QUICK") == "1"
THROUGHPUT_LINES = 100_000 if QUICK else 300_000
THROUGHPUT_REPEATS = 2 if QUICK else 3
PHASE_SECONDS = 10.0 if QUICK else 60.0
RATE = 1000  # lines per second for the latency and RSS phases
INDEX = "bench-logs"
PAD = "x" * 120
TIMEOUT = 300.0
RSS_INTERVAL = 0.5
BUFFER_BYTES = (2 if QUICK else 8) * 1024 * 1024  # the sidecar's in-memory cap during the outage phase


def line(seq: int) -> str:
    """One JSON line of about 200 bytes, like an app's structured log line."""
    return json.dumps({"@timestamp": "2026-11-26T09:00:00.000Z", "log.level": "info", "seq": seq, "message": PAD})


def start_sidecar(workdir: Path, es_url: str, extra_env: dict[str, str] | None = None) -> ServiceProcess:
    env = {
        "LOG_PATHS": str(workdir / "logs" / "*.log"),
        "LOG_STATE_DIR": str(workdir / "state"),
        "LOG_SINK": "elasticsearch",
        "ES_URL": es_url,
        "ES_INDEX": INDEX,
        "ADMIN_HOST": "127.0.0.1",
        "ADMIN_PORT": str(free_tcp_port()),
        "LOG_SCAN_INTERVAL_SECONDS": "0.1",
        "LOG_RETRY_MAX_SECONDS": "1",
        **(extra_env or {}),
    }
    return ServiceProcess.python_module("log_sidecar", env, workdir / "sidecar.out").start()


def wait_for_count(es: BulkEmulator, expected: int, proc: ServiceProcess, poll: float = 0.02) -> float:
    started = time.monotonic()
    while es.count(INDEX) < expected:
        if not proc.running():
            raise RuntimeError(proc.failure(f"exited with {proc.returncode()}"))
        if time.monotonic() - started > TIMEOUT:
            raise RuntimeError(f"only {es.count(INDEX)} of {expected} documents after {TIMEOUT:.0f} s")
        time.sleep(poll)
    return time.monotonic()


# 1. Throughput ------------------------------------------------------------------------------
def throughput_run(lines: int = THROUGHPUT_LINES, batch_docs: int | None = None) -> dict[str, float]:
    extra = {"LOG_BATCH_MAX_DOCS": str(batch_docs)} if batch_docs else None
    with tempfile.TemporaryDirectory(prefix="bench-log-sidecar-") as tmp:
        workdir = Path(tmp)
        (workdir / "logs").mkdir()
        staged = workdir / "input.staged"
        with staged.open("w") as out:
            for seq in range(lines):
                out.write(line(seq) + "\n")
        size = staged.stat().st_size
        with BulkEmulator() as es:
            proc = start_sidecar(workdir, es.url, extra)
            try:
                time.sleep(1.5)  # started and scanning
                sidecar_cpu = cpu_seconds(proc.pid)
                emulator_cpu = time.process_time()
                started = time.monotonic()
                os.rename(staged, workdir / "logs" / "app.log")
                peak = 0.0
                sampler_stop = threading.Event()

                def sample() -> None:
                    nonlocal peak
                    while not sampler_stop.wait(0.1):
                        peak = max(peak, rss_mib(proc.pid))

                sampler = threading.Thread(target=sample, daemon=True)
                sampler.start()
                finished = wait_for_count(es, lines, proc)
                sampler_stop.set()
                sampler.join()
                elapsed = finished - started
                used = cpu_seconds(proc.pid) - sidecar_cpu
                emulator_used = time.process_time() - emulator_cpu
            finally:
                proc.stop(30)
    return {
        "lines_per_s": lines / elapsed,
        "mb_per_s": size / elapsed / 1e6,
        "cpu_per_10k": used / lines * 10_000,
        "lines_per_cpu_s": lines / used,
        "emulator_cpu_per_10k": emulator_used / lines * 10_000,
        "rss_peak": peak,
        "bytes_per_line": size / lines,
    }


# 2 + 3. Latency and RSS, steady and through an outage ------------------------------------------
class PacedWriter:
    """Write lines at RATE per second in 10 ms ticks, remembering when each was written."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.written_at: list[float] = []
        self.stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        per_tick = RATE // 100
        with self.path.open("a") as out:
            next_tick = time.monotonic()
            while not self.stop.is_set():
                for _ in range(per_tick):
                    seq = len(self.written_at)
                    out.write(line(seq) + "\n")
                    out.flush()
                    self.written_at.append(time.monotonic())
                next_tick += 0.01
                time.sleep(max(0.0, next_tick - time.monotonic()))

    def finish(self) -> int:
        self.stop.set()
        self._thread.join(5)
        return len(self.written_at)


class AckWatcher:
    """Poll the emulator's count; line n is acknowledged the first time the count exceeds n."""

    def __init__(self, es: BulkEmulator, writer: PacedWriter) -> None:
        self.es = es
        self.writer = writer
        self.latencies_ms: list[float] = []
        self.stop = threading.Event()
        self.measuring = True
        self._seen = 0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self.stop.wait(0.003):
            count = self.es.count(INDEX)
            if count > self._seen:
                now = time.monotonic()
                if self.measuring:
                    written = self.writer.written_at
                    self.latencies_ms.extend((now - written[n]) * 1000 for n in range(self._seen, count))
                self._seen = count

    def finish(self) -> None:
        self.stop.set()
        self._thread.join(5)


def sample_rss(pid: int, seconds: float) -> list[float]:
    samples = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        samples.append(rss_mib(pid))
        time.sleep(RSS_INTERVAL)
    return samples


def steady_and_outage_run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-log-sidecar-") as tmp:
        workdir = Path(tmp)
        (workdir / "logs").mkdir()
        with BulkEmulator() as es:
            # The cap must fill early in the outage for "flat" to be measurable: at 1,000
            # lines/s the default 8 MiB takes ~20 s, longer than the quick pass's outage.
            caps = {"LOG_BUFFER_MAX_BYTES": str(BUFFER_BYTES), "LOG_BATCH_MAX_BYTES": str(BUFFER_BYTES // 2)}
            proc = start_sidecar(workdir, es.url, caps)
            try:
                time.sleep(1.5)
                writer = PacedWriter(workdir / "logs" / "app.log")
                watcher = AckWatcher(es, writer)
                writer.start()
                watcher.start()
                time.sleep(2.0)  # warm-up, not sampled
                watcher.latencies_ms.clear()
                rss_steady = sample_rss(proc.pid, PHASE_SECONDS)
                watcher.measuring = False  # latency during an outage measures the outage
                latencies = list(watcher.latencies_ms)
                es.set_faults(Faults(down=True))
                rss_outage = sample_rss(proc.pid, PHASE_SECONDS)
                es.clear_faults()
                backlog_at_recovery = len(writer.written_at) - es.count(INDEX)
                recovered_at = time.monotonic()
                written = writer.finish()
                wait_for_count(es, written, proc)
                recovery_seconds = time.monotonic() - recovered_at
                watcher.finish()
                stored = es.documents(INDEX)
                seqs = sorted(int(doc["seq"]) for doc in stored.values())
            finally:
                proc.stop(30)
    return {
        "latencies_ms": latencies,
        "rss_steady": rss_steady,
        "rss_outage": rss_outage,
        "written": written,
        "exactly_once": seqs == list(range(written)),
        "backlog_at_recovery": backlog_at_recovery,
        "recovery_seconds": recovery_seconds,
    }


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main() -> int:
    runs = []
    for attempt in range(THROUGHPUT_REPEATS):
        run = throughput_run()
        runs.append(run)
        print(
            f"throughput run {attempt + 1}: {run['lines_per_s']:,.0f} lines/s, {run['mb_per_s']:.1f} MB/s, "
            f"sidecar {run['cpu_per_10k']:.3f} CPU s/10k lines ({run['lines_per_cpu_s']:,.0f} lines per CPU-s), "
            f"emulator {run['emulator_cpu_per_10k']:.3f} CPU s/10k, peak RSS {run['rss_peak']:.1f} MiB",
            flush=True,
        )
    # Throughput against the batch size cap (one run each): where bigger batches stop paying.
    sweep = [100, 500, 2000, 5000]
    sweep_lines = 50_000 if QUICK else 100_000
    sweep_rates, sweep_cpu = [], []
    for docs in sweep:
        run = throughput_run(sweep_lines, docs)
        sweep_rates.append(run["lines_per_s"])
        sweep_cpu.append(run["lines_per_cpu_s"])
        print(f"batch of {docs} docs: {run['lines_per_s']:,.0f} lines/s, {run['lines_per_cpu_s']:,.0f} per CPU-s")
    steady = steady_and_outage_run()
    latencies = steady["latencies_ms"]
    p50, p99 = percentile(latencies, 0.50), percentile(latencies, 0.99)
    rss_steady, rss_outage = steady["rss_steady"], steady["rss_outage"]
    growth = max(rss_outage) - rss_outage[0]
    # Flat = once the buffer cap is reached, the outage's second half adds nothing.
    second_half = rss_outage[len(rss_outage) // 2 :]
    late_growth = max(second_half) - second_half[0]
    print(
        f"latency at {RATE} lines/s: p50 {p50:.0f} ms, p99 {p99:.0f} ms (n={len(latencies)}); "
        f"RSS steady {statistics.median(rss_steady):.1f} MiB (max {max(rss_steady):.1f}), "
        f"outage max {max(rss_outage):.1f} MiB (+{growth:.1f} in the outage, +{late_growth:.1f} in its 2nd half); "
        f"{steady['written']} lines, exactly once: {steady['exactly_once']}, backlog of "
        f"{steady['backlog_at_recovery']} lines shipped {steady['recovery_seconds']:.1f} s after recovery",
        flush=True,
    )
    line_bytes = runs[0]["bytes_per_line"]
    figures = [
        Figure(
            "throughput file → emulator",
            "lines/s",
            [r["lines_per_s"] for r in runs],
            Target(">=", 50_000),
            note=f"{THROUGHPUT_LINES:,} JSON lines of {line_bytes:.0f} B; wall clock; the emulator shares the 2 cores",
        ),
        Figure("throughput file → emulator (bytes)", "MB/s", [r["mb_per_s"] for r in runs]),
        Figure(
            "sidecar capacity on one core",
            "lines/CPU-s",
            [r["lines_per_cpu_s"] for r in runs],
            Target(">=", 50_000),
            note="lines shipped per CPU-second of the sidecar process (/proc/<pid>/stat)",
        ),
        Figure("sidecar CPU per 10k lines", "CPU s", [r["cpu_per_10k"] for r in runs]),
        Figure(
            "emulator CPU per 10k lines",
            "CPU s",
            [r["emulator_cpu_per_10k"] for r in runs],
            note="the receiving end's cost; it bounds the wall-clock rate here",
        ),
        Figure("sidecar peak RSS while shipping at full speed", "MiB", [r["rss_peak"] for r in runs]),
        Figure("write → acknowledged latency p50", "ms", [p50], note=f"{RATE} lines/s, n={len(latencies)}"),
        Figure("write → acknowledged latency p99", "ms", [p99], Target("<=", 1000), note=f"{RATE} lines/s"),
        Figure("RSS steady", "MiB", [statistics.median(rss_steady)], Target("<=", 60)),
        Figure(
            "RSS during a sink outage (max)",
            "MiB",
            [max(rss_outage)],
            Target("<=", 60),
            note=f"{PHASE_SECONDS:.0f} s of Elasticsearch down while writing {RATE} lines/s",
        ),
        Figure(
            "RSS growth during the outage",
            "MiB",
            [growth],
            note=f"bounded by LOG_BUFFER_MAX_BYTES ({BUFFER_BYTES >> 20} MiB); the backlog waits in the log file",
        ),
        Figure(
            "RSS growth in the second half of the outage",
            "MiB",
            [late_growth],
            Target("<=", 1),
            note="flat once the buffer is full, however long the outage lasts",
        ),
        Figure(
            "lines delivered exactly once after the outage",
            "%",
            [100.0 if steady["exactly_once"] else 0.0],
            Target(">=", 100),
            note=f"{steady['written']:,} lines; backlog shipped in {steady['recovery_seconds']:.1f} s",
        ),
    ]
    thinned = latencies[:: max(1, len(latencies) // 5000)]
    series = {
        "latency_ms (1,000 lines/s)": thinned,
        "rss_mib steady": rss_steady,
        "rss_mib sink outage": rss_outage,
    }
    series["batch size (docs)"] = [float(d) for d in sweep]
    series["lines/s (wall clock)"] = sweep_rates
    series["lines per sidecar CPU-s"] = sweep_cpu
    plots = [
        {
            "file": "batch-size",
            "title": "log-sidecar throughput vs LOG_BATCH_MAX_DOCS",
            "x": "batch size (docs)",
            "xlabel": "LOG_BATCH_MAX_DOCS",
            "ylabel": "lines/s",
            "series": ["lines/s (wall clock)", "lines per sidecar CPU-s"],
        }
    ]
    path = write_results("log_sidecar", figures, series, plots=plots)
    print(f"wrote {path}")
    return 0 if steady["exactly_once"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
