"""rsyslog (imfile -> omelasticsearch) next to our log sidecar on the same input and emulator.

rsyslog is the real peer that runs on this machine (Debian's rsyslog and
rsyslog-elasticsearch). Both shippers read the same pre-written file of
200-byte JSON lines and deliver to the same Bulk-API emulator; the ratio of
their throughputs is measured in one run, so machine noise mostly cancels.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.processes import cpu_seconds, rss_mib
from bench.results import Figure, write_results
from sink_emulators.elasticsearch import BulkEmulator
from tests.support import free_tcp_port

QUICK = os.environ.get("BENCH_QUICK") == "1"
LINES = 100_000 if QUICK else 300_000
REPEATS = 2 if QUICK else 3
TIMEOUT = 300.0

RSYSLOG_CONF = """
global(workDirectory="{work}" maxMessageSize="64k")
module(load="imfile")
module(load="omelasticsearch")
template(name="line" type="string" string="%msg%")
input(type="imfile" File="{path}" Tag="app" ruleset="ship" freshStartTail="off" reopenOnTruncate="on")
ruleset(name="ship" queue.type="LinkedList" queue.size="200000" queue.dequeueBatchSize="5000") {{
  action(type="omelasticsearch" server="127.0.0.1" serverport="{port}" searchIndex="rsyslog-bench"
         template="line" bulkmode="on" maxbytes="10m" esVersion.major="8"
         queue.type="LinkedList" queue.size="200000" queue.dequeueBatchSize="5000"
         action.resumeRetryCount="-1" errorFile="{work}/es-errors.json")
}}
"""


def write_input(path: Path, lines: int) -> int:
    """Write ``lines`` JSON lines of about 200 bytes; return the byte count."""
    pad = "x" * 120
    with path.open("w") as out:
        for i in range(lines):
            out.write(
                json.dumps({"@timestamp": "2026-11-26T09:00:00.000Z", "log.level": "info", "seq": i, "message": pad})
                + "\n"
            )
    return path.stat().st_size


def wait_for_count(emulator: BulkEmulator, index: str, expected: int, proc: subprocess.Popen[bytes]) -> float:
    started = time.monotonic()
    while emulator.count(index) < expected:
        if proc.poll() is not None:
            raise RuntimeError(f"shipper exited with {proc.returncode} before delivering {expected} documents")
        if time.monotonic() - started > TIMEOUT:
            raise RuntimeError(f"only {emulator.count(index)} of {expected} documents after {TIMEOUT:.0f} s")
        time.sleep(0.05)
    return time.monotonic() - started


def run_rsyslog(workdir: Path, input_path: Path, port: int, emulator: BulkEmulator) -> tuple[float, float, float]:
    work = workdir / "rsyslog-work"
    work.mkdir()
    conf = workdir / "rsyslog.conf"
    conf.write_text(RSYSLOG_CONF.format(work=work, path=input_path, port=port))
    proc = subprocess.Popen(
        ["rsyslogd", "-n", "-f", str(conf), "-i", str(workdir / "rsyslog.pid")],
        stdout=subprocess.DEVNULL,
        stderr=(workdir / "rsyslog.out").open("wb"),
    )
    try:
        cpu_before = cpu_seconds(proc.pid)
        elapsed = wait_for_count(emulator, "rsyslog-bench", LINES, proc)
        return elapsed, cpu_seconds(proc.pid) - cpu_before, rss_mib(proc.pid)
    finally:
        proc.terminate()
        proc.wait(10)


def run_log_sidecar(workdir: Path, input_path: Path, port: int, emulator: BulkEmulator) -> tuple[float, float, float]:
    state = workdir / "state"
    state.mkdir()
    env = {
        **os.environ,
        "LOG_PATHS": str(input_path),
        "LOG_STATE_DIR": str(state),
        "LOG_SINK": "elasticsearch",
        "ES_URL": f"http://127.0.0.1:{port}",
        "ES_INDEX": "sidecar-bench",
        "ADMIN_PORT": str(free_tcp_port()),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "log_sidecar"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        cpu_before = cpu_seconds(proc.pid)
        elapsed = wait_for_count(emulator, "sidecar-bench", LINES, proc)
        return elapsed, cpu_seconds(proc.pid) - cpu_before, rss_mib(proc.pid)
    finally:
        proc.terminate()
        proc.wait(30)


def main() -> int:
    if shutil.which("rsyslogd") is None:
        print("rsyslogd not installed: apt-get install rsyslog rsyslog-elasticsearch", file=sys.stderr)
        return 1
    rates: dict[str, list[float]] = {"rsyslog": [], "log-sidecar": []}
    cpu: dict[str, list[float]] = {"rsyslog": [], "log-sidecar": []}
    rss: dict[str, list[float]] = {"rsyslog": [], "log-sidecar": []}
    ratios: list[float] = []
    size = 0
    for _ in range(REPEATS):
        per_run: dict[str, float] = {}
        for name, runner in (("log-sidecar", run_log_sidecar), ("rsyslog", run_rsyslog)):
            with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as tmp:
                workdir = Path(tmp)
                input_path = workdir / "app.log"
                size = write_input(input_path, LINES)
                emulator = BulkEmulator(host="127.0.0.1", port=0)
                emulator.start()
                try:
                    elapsed, cpu_used, rss_now = runner(workdir, input_path, emulator.port, emulator)
                finally:
                    emulator.stop()
            per_run[name] = LINES / elapsed
            rates[name].append(LINES / elapsed)
            cpu[name].append(cpu_used / LINES * 10_000)
            rss[name].append(rss_now)
            print(f"{name}: {LINES / elapsed:,.0f} lines/s, {cpu_used:.2f} CPU s, RSS {rss_now:.1f} MiB", flush=True)
        ratios.append(per_run["log-sidecar"] / per_run["rsyslog"])
    mb = size / 1e6
    figures = [
        Figure("log-sidecar throughput (same run as rsyslog)", "lines/s", rates["log-sidecar"]),
        Figure("rsyslog imfile→omelasticsearch throughput", "lines/s", rates["rsyslog"]),
        Figure("throughput ratio log-sidecar / rsyslog", "×", ratios, note="> 1 means the log sidecar is faster"),
        Figure("log-sidecar CPU per 10k lines", "CPU s", cpu["log-sidecar"]),
        Figure("rsyslog CPU per 10k lines", "CPU s", cpu["rsyslog"]),
        Figure("log-sidecar RSS after the run", "MiB", rss["log-sidecar"]),
        Figure("rsyslog RSS after the run", "MiB", rss["rsyslog"]),
        Figure("input size", "MB", [mb], note=f"{LINES:,} JSON lines of ~{size // LINES} bytes, pre-written"),
    ]
    write_results("rsyslog", figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
