"""The Bulk-API emulator's own ceiling, so the log-sidecar benchmark can show it is not the bottleneck.

The emulator runs as its own process (``python -m sink_emulators.elasticsearch``), as in a
container. Clients on keep-alive ``requests`` sessions post pre-built bulk bodies of
200-byte JSON documents (``create`` with deterministic ids, like the log sidecar) and check
each answer's ``errors`` flag without parsing the rest, so the client spends as little as
possible. Reported per scenario: documents/s and MB/s of request bodies (wall clock), and
documents per CPU-second of the emulator process — its ceiling at one full core, the figure
that is least sensitive to a noisy machine.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from bench.processes import cpu_seconds, rss_mib
from bench.results import Figure, write_results
from tests.support import ServiceProcess, free_tcp_port

QUICK = os.environ.get("BENCH_QUICK") == "1"
DOCS_PER_RUN = 60_000 if QUICK else 300_000
REPEATS = 1 if QUICK else 3
SCENARIOS = ((1000, 1), (5000, 1), (1000, 2), (5000, 2))  # (documents per bulk request, client threads)
SHIPPER_TARGET = 50_000  # the log sidecar's throughput target (lines/s), for the note
HEADERS = {"Content-Type": "application/x-ndjson"}
TIMEOUT = 60.0


@dataclass(frozen=True)
class Run:
    docs: int
    body_bytes: int
    seconds: float
    emulator_cpu: float

    @property
    def docs_per_second(self) -> float:
        return self.docs / self.seconds

    @property
    def mb_per_second(self) -> float:
        return self.body_bytes / self.seconds / 1e6

    @property
    def docs_per_cpu_second(self) -> float:
        return self.docs / self.emulator_cpu if self.emulator_cpu > 0 else float("nan")


def document(n: int) -> str:
    """A JSON log line of about 200 bytes, like the log-sidecar benchmark's input after enrichment."""
    return json.dumps(
        {
            "@timestamp": "2026-11-26T09:00:00.000Z",
            "log.level": "info",
            "log.offset": n * 200,
            "message": f"GET /api/orders/{n} 200",
            "pad": "x" * 90,
        },
        separators=(",", ":"),
    )


def bulk_bodies(total: int, per_request: int, prefix: str) -> list[bytes]:
    bodies = []
    for start in range(0, total, per_request):
        lines = []
        for n in range(start, min(start + per_request, total)):
            lines.append(f'{{"create":{{"_index":"bench-{prefix}","_id":"{prefix}-{n}"}}}}')
            lines.append(document(n))
        bodies.append(("\n".join(lines) + "\n").encode())
    return bodies


def post_all(url: str, bodies: list[bytes], failures: list[str]) -> None:
    with requests.Session() as session:
        for body in bodies:
            response = session.post(url + "/_bulk", data=body, headers=HEADERS, timeout=TIMEOUT)
            # The response starts with the errors flag: check it without decoding thousands of items.
            if response.status_code != 200 or not response.content.startswith(b'{"errors":false'):
                failures.append(f"{response.status_code}: {response.content[:200]!r}")
                return


def run_scenario(url: str, pid: int, per_request: int, threads: int, tag: str) -> Run:
    per_thread = DOCS_PER_RUN // threads
    work = [bulk_bodies(per_thread, per_request, f"{tag}-t{t}") for t in range(threads)]
    failures: list[str] = []
    workers = [threading.Thread(target=post_all, args=(url, bodies, failures)) for bodies in work]
    cpu_before = cpu_seconds(pid, include_children=False)
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - started
    cpu_used = cpu_seconds(pid, include_children=False) - cpu_before
    if failures:
        raise RuntimeError(f"the emulator refused a bulk request: {failures[0]}")
    stored = requests.get(url + "/_emulator/stats", timeout=TIMEOUT).json()["documents"]
    if stored != per_thread * threads:
        raise RuntimeError(f"expected {per_thread * threads} documents stored, found {stored}")
    return Run(per_thread * threads, sum(len(body) for bodies in work for body in bodies), elapsed, cpu_used)


def main() -> int:
    port = free_tcp_port()
    url = f"http://127.0.0.1:{port}"
    argv = ["--port", str(port), "--log-level", "WARNING"]
    workdir = Path(tempfile.mkdtemp(prefix="bench-es-emulator-"))
    proc = ServiceProcess.python_module("sink_emulators.elasticsearch", {}, workdir / "emulator.out", *argv)
    runs: dict[tuple[int, int], list[Run]] = {scenario: [] for scenario in SCENARIOS}
    peak_rss = 0.0
    try:
        proc.start().wait_for(lambda: requests.get(url, timeout=1).status_code, "GET / to answer")
        for repeat in range(REPEATS):
            for per_request, threads in SCENARIOS:
                requests.post(url + "/_emulator/reset", timeout=TIMEOUT)
                run = run_scenario(url, proc.pid, per_request, threads, f"r{repeat}")
                peak_rss = max(peak_rss, rss_mib(proc.pid, include_children=False))
                runs[(per_request, threads)].append(run)
                print(
                    f"{per_request} docs/request, {threads} client thread(s): {run.docs_per_second:,.0f} docs/s, "
                    f"{run.mb_per_second:.1f} MB/s, {run.docs_per_cpu_second:,.0f} docs per emulator CPU-second",
                    flush=True,
                )
    finally:
        proc.stop(30)
        shutil.rmtree(workdir, ignore_errors=True)
    figures: list[Figure] = []
    for (per_request, threads), samples in runs.items():
        label = f"{per_request}-doc bulks, {threads} client thread{'s' if threads > 1 else ''}"
        figures.append(Figure(f"emulator ingest rate, {label}", "docs/s", [r.docs_per_second for r in samples]))
        figures.append(Figure(f"emulator ingest volume, {label}", "MB/s", [r.mb_per_second for r in samples]))
    ceiling = [r.docs_per_cpu_second for samples in runs.values() for r in samples]
    figures.append(
        Figure(
            "emulator ceiling at one full core (all scenarios)",
            "docs per CPU-s",
            ceiling,
            note=f"the log sidecar's target is {SHIPPER_TARGET:,} lines/s; the emulator must stay well above it",
        )
    )
    figures.append(
        Figure(
            "emulator RSS with one run's documents stored",
            "MiB",
            [peak_rss],
            note=f"{DOCS_PER_RUN:,} documents of ~{len(document(0))} bytes",
        )
    )
    write_results("es_emulator", figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
