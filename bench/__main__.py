"""Run every benchmark in one go, then write docs/benchmarks.md.

``BENCH_QUICK=1`` asks each benchmark for a faster pass; ``BENCH_ONLY=a,b``
runs a subset. Each benchmark runs in its own process so one crash cannot
take the others down, and a failure is reported in the document.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from bench.report import ORDER, write_report
from bench.results import RESULTS_DIR


def record_duration(path: Path, seconds: float) -> None:
    """Stamp how long the benchmark ran into its results, so the report states a run's real cost."""
    try:
        result = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return  # no results: the failure is reported instead
    result["seconds"] = round(seconds)
    path.write_text(json.dumps(result, indent=2) + "\n")


def main() -> int:
    quick = os.environ.get("BENCH_QUICK") == "1"
    only = {name.strip() for name in os.environ.get("BENCH_ONLY", "").split(",") if name.strip()}
    names = [n for n in ORDER if not only or n in only]
    failures: dict[str, str] = {}
    for name in names:
        if not only:
            (RESULTS_DIR / f"{name}.json").unlink(missing_ok=True)
        started = time.monotonic()
        print(f"== bench.{name}", flush=True)
        proc = subprocess.run([sys.executable, "-m", f"bench.{name}"], check=False)
        took = time.monotonic() - started
        print(f"== bench.{name}: exit {proc.returncode} after {took:.0f} s", flush=True)
        if proc.returncode != 0:
            failures[name] = f"exited {proc.returncode} after {took:.0f} s (see the `make bench` output)"
        record_duration(RESULTS_DIR / f"{name}.json", took)
    path = write_report(quick=quick, failures=failures)
    print(f"wrote {path}")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
