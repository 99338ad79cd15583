"""``check``: run a mapping against sample statsd lines (and a JSON sample) and diff the exposition with a golden file.

Golden-file testing of a mapping: commit the sample and the expected output
next to the mapping, run ``check`` in CI, and a rule change that renames a
metric or loses a label shows up as a unified diff instead of a broken dashboard.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import Metric

from metrics_exporter.config import ConfigError, load_config
from metrics_exporter.exposition import MetricList
from metrics_exporter.json_source import FileJsonFetcher, JsonSource
from metrics_exporter.service import build_mapper
from metrics_exporter.settings import Settings
from metrics_exporter.sources import SourceError
from metrics_exporter.statsd.ingest import Ingestor
from metrics_exporter.store import SeriesStore

EXIT_MATCH = 0
EXIT_DIFFERENT = 1
EXIT_UNUSABLE = 2
# A sample file is not real time: nothing expires while it is replayed.
_FROZEN_CLOCK = 0.0


@dataclass(frozen=True)
class CheckRequest:
    config: Path | None
    input: Path
    expect: Path
    json: Path | None = None
    write: bool = False


def render_sample(settings: Settings, request: CheckRequest, report: TextIO) -> str:
    """Replay the samples through a fresh store and return the text exposition of what they produce.

    Each non-empty line of the input is one packet; lines starting with ``#`` are comments.
    Raises ConfigError, SourceError or OSError when an input is unusable.
    """
    config = load_config(request.config or settings.config_file)
    store = SeriesStore(settings.max_series_per_metric, settings.max_metrics, clock=lambda: _FROZEN_CLOCK)
    ingestor = Ingestor(store, build_mapper(config, settings))
    for raw in request.input.read_bytes().split(b"\n"):
        if raw.strip() and not raw.startswith(b"#"):
            ingestor.ingest([raw])
    families: list[Metric] = store.collect()
    json_source = None
    if request.json is not None:
        json_source = JsonSource(FileJsonFetcher(request.json), config.json_rules)
        families += json_source.collect(timeout=0.0)
    stats = ingestor.stats_snapshot()
    errors = {reason.value: count for reason, count in stats.parse_errors.items() if count}
    print(
        f"config: {config.source} ({len(config.mappings)} statsd rules, {len(config.json_rules)} json rules)",
        file=report,
    )
    print(f"statsd lines: {stats.lines}, unmapped: {stats.unmapped}, dropped: {stats.dropped}", file=report)
    if errors:
        print(f"statsd errors: {errors}", file=report)
    if json_source is not None:
        rule_errors = {f"{rule}/{reason.value}": n for (rule, reason), n in json_source.rule_errors().items()}
        if rule_errors:
            print(f"json rule errors: {rule_errors}", file=report)
    return generate_latest(MetricList(families)).decode("utf-8")


def run_check(settings: Settings, request: CheckRequest, out: TextIO, report: TextIO) -> int:
    """Compare (or with ``write``, regenerate) the golden file; return the process exit status."""
    try:
        actual = render_sample(settings, request, report)
    except (ConfigError, SourceError) as exc:
        print(f"check: {exc}", file=report)
        return EXIT_UNUSABLE
    except OSError as exc:
        print(f"check: {exc.filename}: {exc.strerror}", file=report)
        return EXIT_UNUSABLE
    if request.write:
        request.expect.write_text(actual, encoding="utf-8")
        print(f"wrote {request.expect}", file=report)
        return EXIT_MATCH
    try:
        expected = request.expect.read_text(encoding="utf-8")
    except FileNotFoundError:
        print(f"check: {request.expect} does not exist (run with --write to create it)", file=report)
        return EXIT_DIFFERENT
    if expected == actual:
        print(f"ok: exposition matches {request.expect}", file=report)
        return EXIT_MATCH
    out.writelines(
        difflib.unified_diff(
            expected.splitlines(keepends=True),
            actual.splitlines(keepends=True),
            fromfile=str(request.expect),
            tofile="actual",
        )
    )
    print(f"mismatch: exposition differs from {request.expect}", file=report)
    return EXIT_DIFFERENT
