"""Where the log sidecar's CPU goes while shipping: py-spy samples of a real run, summed per function.

Run with ``.venv/bin/python -m bench.profile_log_sidecar [LINES [RAW]]`` (default 300,000
lines; RAW keeps py-spy's collapsed stacks for a flame graph or a closer look). The
sidecar runs as a process (``python -m log_sidecar``, every thread sampled) against the
Bulk-API emulator in this process, on the same input as ``bench.peers``. Sampling starts
once the sidecar is up and idle, so interpreter start-up is left out, as in the benchmark.
Only samples holding the GIL count (``--gil``): py-spy's idle detection misses threads
blocked in a socket read or a condition wait, which would otherwise look busy; the cost
left out is C code that releases the GIL (reads, writes, fsync). C functions called from
Python (orjson, bytes methods) count as their caller's self time. Prints the top functions
by self time (where the CPU is spent) and by inclusive time (which call paths cost most),
each as a share of the samples, plus the CPU-seconds the run took from /proc. Not part of
``make bench``: a tool for reading the hot path.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from bench.peers import write_input
from bench.processes import CLOCK_TICKS, cpu_seconds
from sink_emulators.elasticsearch import BulkEmulator
from tests.support import ServiceProcess, free_tcp_port

INDEX = "profile"
RATE = 250  # samples per second
TOP = 25
TIMEOUT = 300.0


def summarize(raw: Path, top: int = TOP) -> str:
    """Self and inclusive sample shares per function from py-spy's collapsed-stack (raw) output."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    if not total:
        return "no samples"
    out = [f"{total} samples"]
    for title, counter in (("self", own), ("inclusive", inclusive)):
        out.append(f"\ntop {top} by {title} time:")
        out += [f"{100 * n / total:6.1f}%  {frame}" for frame, n in counter.most_common(top)]
    return "\n".join(out)


def user_system(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of one process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) / CLOCK_TICKS, int(fields[12]) / CLOCK_TICKS


def main() -> int:
    lines = int(sys.argv[1]) if len(sys.argv) > 1 else 300_000
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    with tempfile.TemporaryDirectory(prefix="profile-log-sidecar-") as tmp:
        workdir = Path(tmp)
        (workdir / "logs").mkdir()
        staged = workdir / "input.staged"
        write_input(staged, lines)
        with BulkEmulator() as es:
            env = {
                "LOG_PATHS": str(workdir / "logs" / "*.log"),
                "LOG_STATE_DIR": str(workdir / "state"),
                "LOG_SINK": "elasticsearch",
                "ES_URL": es.url,
                "ES_INDEX": INDEX,
                "ADMIN_HOST": "127.0.0.1",
                "ADMIN_PORT": str(free_tcp_port()),
                "LOG_SCAN_INTERVAL_SECONDS": "0.1",
            }
            proc = ServiceProcess.python_module("log_sidecar", env, workdir / "sidecar.out").start()
            raw = workdir / "profile.txt"
            try:
                time.sleep(1.5)  # started and idle
                argv = [spy, "record", "-p", str(proc.pid), "-r", str(RATE), "-f", "raw", "-F", "--gil", "-o", str(raw)]
                sampler = ServiceProcess(argv, {}, workdir / "py-spy.out").start()
                time.sleep(1.0)  # attached
                before = cpu_seconds(proc.pid)
                user_before, system_before = user_system(proc.pid)
                started = time.monotonic()
                os.rename(staged, workdir / "logs" / "app.log")
                while es.count(INDEX) < lines:
                    if time.monotonic() - started > TIMEOUT or not proc.running():
                        raise RuntimeError(f"only {es.count(INDEX)} of {lines} documents")
                    time.sleep(0.02)
                elapsed = time.monotonic() - started
                used = cpu_seconds(proc.pid) - before
                user_after, system_after = user_system(proc.pid)
                sampler.signal(signal.SIGINT)  # py-spy writes the profile on SIGINT
                sampler.wait(30)
            finally:
                proc.stop(30)
            print(
                f"{lines:,} lines in {elapsed:.2f} s wall, {used:.2f} CPU s "
                f"(user {user_after - user_before:.2f}, system {system_after - system_before:.2f}): "
                f"{lines / used:,.0f} lines per CPU-s"
            )
            print(summarize(raw))
            if len(sys.argv) > 2:
                shutil.copy(raw, sys.argv[2])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
