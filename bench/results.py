"""The results format every benchmark writes, read by bench/report.py.

Each benchmark module writes ``bench/results/<name>.json``::

    {"benchmark": "log-sidecar", "description": "...", "figures": [Figure...], "series": {"name": [numbers]}}

A figure holds the samples of repeated runs (the report shows median and
spread) and, where an issue set one, its target.
"""

from __future__ import annotations

import json
import platform
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"


@dataclass
class Target:
    op: str  # "<=" or ">="
    value: float

    def met(self, measured: float) -> bool:
        return measured <= self.value if self.op == "<=" else measured >= self.value


@dataclass
class Figure:
    name: str
    unit: str
    samples: list[float]
    target: Target | None = None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def write_results(
    benchmark: str,
    figures: list[Figure],
    series: dict[str, list[float]] | None = None,
    directory: Path = RESULTS_DIR,
    plots: list[dict[str, Any]] | None = None,
    description: str = "",
) -> Path:
    """Write one benchmark's results; ``plots`` are explicit x/y charts, ``description`` a paragraph above the table."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{benchmark}.json"
    payload = {
        "benchmark": benchmark,
        "description": description,
        "python": platform.python_version(),
        "figures": [asdict(f) for f in figures],
        "series": series or {},
        "plots": plots or [],
    }
    if description:
        payload["description"] = description
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path
