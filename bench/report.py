"""Turn bench/results/*.json into docs/benchmarks.md with PNG plots.

Each figure is shown as the median of its samples with the spread (min-max)
and the number of runs, next to its target with pass/fail. A missed target is
shown as a miss with the benchmark's note, never hidden.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.results import RESULTS_DIR

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PLOTS = DOCS / "benchmarks"

ORDER = ["log_sidecar", "peers", "es_emulator", "config_sidecar", "exporter", "pod_overhead", "mesh"]


def machine_description() -> list[str]:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kib = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    except OSError:
        pass
    return [
        f"- CPU: {model}, {os.cpu_count()} cores",
        f"- Memory: {mem_kib / 1024 / 1024:.1f} GiB",
        f"- Kernel: {platform.system()} {platform.release()}",
        f"- Python: {platform.python_version()}",
        f"- Date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- Commit: {git_commit()}",
    ]


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return out.stdout.strip()


def fmt(value: float) -> str:
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 0.1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def figure_row(fig: dict[str, Any]) -> str:
    samples = [float(s) for s in fig.get("samples", [])]
    unit = fig.get("unit", "")
    if samples:
        median = statistics.median(samples)
        spread = f"{fmt(min(samples))} – {fmt(max(samples))}" if len(samples) > 1 else "—"
        shown = f"{fmt(median)} {unit}".strip()
    else:
        median, spread, shown = float("nan"), "—", "no result"
    target = fig.get("target")
    if target:
        target_text = f"{target['op']} {fmt(float(target['value']))} {unit}".strip()
        if not samples:
            verdict = "**not measured**"
        else:
            met = median <= target["value"] if target["op"] == "<=" else median >= target["value"]
            verdict = "pass" if met else "**miss**"
    else:
        target_text, verdict = "—", "—"
    note = str(fig.get("note", "")).replace("|", "\\|").replace("\n", " ")
    return f"| {fig['name']} | {shown} | {spread} | {len(samples)} | {target_text} | {verdict} | {note} |"


def plot_series(benchmark: str, series: dict[str, list[float]], explicit: list[dict[str, Any]]) -> list[Path]:
    """Draw explicit x/y plots, latency distributions as CDFs and RSS series as lines over samples."""
    if not series:
        return []
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    PLOTS.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    groups: dict[str, list[str]] = {"latency": [], "rss": [], "other": []}
    for name in series:
        lowered = name.lower()
        key = "latency" if "latency" in lowered else "rss" if "rss" in lowered else "other"
        groups[key].append(name)
    for spec in explicit:
        names = [n for n in spec.get("series", []) if n in series]
        if not names:
            continue
        fig, ax = plt.subplots(figsize=(7, 3.6))
        x_name = spec.get("x")
        for name in names:
            ys = series[name]
            xs = series.get(x_name, list(range(len(ys)))) if x_name else list(range(len(ys)))
            ax.plot(xs[: len(ys)], ys, marker="o", label=name)
        ax.set_title(spec.get("title", benchmark))
        ax.set_xlabel(spec.get("xlabel", x_name or "sample"))
        ax.set_ylabel(spec.get("ylabel", ""))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        path = PLOTS / f"{benchmark}-{spec.get('file', 'plot')}.png"
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
        for name in [*names, x_name]:
            for members in groups.values():
                if name in members:
                    members.remove(name)
    if groups["latency"]:
        fig, ax = plt.subplots(figsize=(7, 3.6))
        for name in groups["latency"]:
            values = sorted(series[name])
            if not values:
                continue
            ys = [(i + 1) / len(values) for i in range(len(values))]
            ax.step(values, ys, where="post", label=f"{name} (n={len(values)})")
        ax.set_xscale("log")
        ax.set_xlabel("latency (ms, log scale)")
        ax.set_ylabel("fraction of samples ≤ x")
        ax.set_title(f"{benchmark}: latency distribution")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
        path = PLOTS / f"{benchmark}-latency.png"
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
    # Other series are raw data kept in the JSON; only an explicit plot spec draws them.
    for key in ("rss",):
        if not groups[key]:
            continue
        fig, ax = plt.subplots(figsize=(7, 3.6))
        for name in groups[key]:
            ax.plot(series[name], label=name)
        ax.set_xlabel("sample")
        ax.set_ylabel("MiB" if key == "rss" else "")
        ax.set_title(f"{benchmark}: {'RSS over time' if key == 'rss' else 'series'}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        path = PLOTS / f"{benchmark}-{key}.png"
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
    return written


def minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def run_duration(results: list[dict[str, Any]]) -> list[str]:
    """The whole run's duration, summed from the benchmarks that stated theirs."""
    timed = [r["seconds"] for r in results if r.get("seconds") is not None]
    if not timed:
        return []
    return [f"- Duration: {minutes(sum(timed))} for {len(timed)} of {len(results)} benchmarks"]


def load_results(directory: Path = RESULTS_DIR) -> list[dict[str, Any]]:
    results = []
    for path in sorted(directory.glob("*.json")):
        try:
            results.append(json.loads(path.read_text()))
        except (OSError, json.JSONDecodeError) as exc:
            results.append({"benchmark": path.stem, "figures": [], "error": f"unreadable result file: {exc}"})
    rank = {name: i for i, name in enumerate(ORDER)}
    results.sort(key=lambda r: (rank.get(str(r.get("benchmark", "")).replace("-", "_"), 99), r.get("benchmark", "")))
    return results


def render(results: list[dict[str, Any]], quick: bool, failures: dict[str, str]) -> str:
    lines = [
        "# Benchmarks",
        "",
        "Written by `make bench` (bench/report.py); do not edit by hand. Every figure is the median of",
        "repeated runs with the spread (min – max) and the number of runs. Targets come from the sidecar",
        "issues; a **miss** is reported with its cause. Ratios against a peer (rsyslog, syslog-ng, the app alone)",
        "are measured in the same run on the same machine, because absolute numbers on a shared 2-core",
        "machine are noisy. `BENCH_QUICK=1 make bench` runs fewer repeats and shorter phases;",
        "`BENCH_ONLY=mesh,exporter` runs a subset. How long each benchmark took is stated with it.",
        "",
        "## Machine",
        "",
        *machine_description(),
        f"- Mode: {'BENCH_QUICK=1 (fewer and shorter runs)' if quick else 'full'}",
        *run_duration(results),
        "",
    ]
    if failures:
        lines += ["## Benchmarks that failed to run", ""]
        for name, why in failures.items():
            lines.append(f"- `{name}`: {why}")
        lines.append("")
    for result in results:
        name = str(result.get("benchmark", "?"))
        lines += [f"## {name}", ""]
        if result.get("description"):
            lines += [str(result["description"]), ""]
        if result.get("seconds") is not None:
            lines += [f"Ran for {minutes(result['seconds'])}.", ""]
        if result.get("error"):
            lines += [f"Error: {result['error']}", ""]
        figures = result.get("figures", [])
        if figures:
            lines += [
                "| figure | median | spread | runs | target | verdict | note |",
                "|---|---|---|---|---|---|---|",
                *[figure_row(f) for f in figures],
                "",
            ]
        for path in plot_series(name.replace(" ", "_"), result.get("series", {}), result.get("plots", [])):
            lines += [f"![{path.stem}](benchmarks/{path.name})", ""]
    return "\n".join(lines).rstrip() + "\n"


def write_report(quick: bool = False, failures: dict[str, str] | None = None) -> Path:
    results = load_results()
    DOCS.mkdir(exist_ok=True)
    for stale in PLOTS.glob("*.png"):  # every plot is drawn anew; none may outlive its data
        stale.unlink()
    path = DOCS / "benchmarks.md"
    path.write_text(render(results, quick, failures or {}))
    return path


if __name__ == "__main__":
    print(write_report(quick=os.environ.get("BENCH_QUICK") == "1"))
