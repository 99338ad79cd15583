"""Wire the exporter together from its settings, run it until stopped, and shut it down in order."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.metrics_core import Metric

from metrics_exporter.config import ExporterConfig
from metrics_exporter.exposition import Exposition
from metrics_exporter.json_source import HttpJsonFetcher, JsonSource
from metrics_exporter.mapping import Mapper
from metrics_exporter.reloader import ConfigReloader
from metrics_exporter.self_metrics import SourceResult, self_metrics
from metrics_exporter.server import build_admin_server
from metrics_exporter.settings import Settings, UnmappedPolicy
from metrics_exporter.sources import Source
from metrics_exporter.statsd.ingest import Ingestor
from metrics_exporter.statsd.receiver import StatsdReceiver
from metrics_exporter.statsd.source import StatsdSource
from metrics_exporter.store import SeriesStore
from sidecar_common import AdminServer, Heartbeat, StartupError

logger = logging.getLogger(__name__)

# The receiver beats at least every poll interval (0.5 s); this much silence means it is stuck.
HEARTBEAT_INTERVAL_SECONDS = 10.0 / 3
MAIN_LOOP_INTERVAL_SECONDS = 0.2
# Below the pod's default 30 s grace period, with room for the app's own shutdown.
SHUTDOWN_JOIN_SECONDS = 5.0


def build_mapper(config: ExporterConfig, settings: Settings) -> Mapper:
    return Mapper(
        config.mappings,
        config.defaults,
        unmapped=UnmappedPolicy(settings.unmapped),
        default_ttl=settings.default_ttl_seconds,
    )


class Exporter:
    """The running exporter: statsd receiver, series store, JSON source, HTTP server and reloads."""

    def __init__(self, settings: Settings, stop: threading.Event | None = None) -> None:
        """Load the mapping (ConfigError if invalid) and bind both ports (OSError if taken)."""
        self.settings = settings
        self.stop = stop or threading.Event()
        self.reload_requested = threading.Event()
        self.store = SeriesStore(settings.max_series_per_metric, settings.max_metrics)
        self.ingestor = Ingestor(self.store, Mapper())
        self.json_source = JsonSource(HttpJsonFetcher(settings.json_url)) if settings.json_url else None
        self.reloader = ConfigReloader(settings.config_file, self._apply_config)
        self.reloader.load_initial()
        self.heartbeat = Heartbeat("statsd-receiver", HEARTBEAT_INTERVAL_SECONDS)
        self.receiver = StatsdReceiver(
            settings.statsd_host,
            settings.statsd_port,
            sink=self.ingestor.ingest,
            heartbeat=self.heartbeat,
            stop=self.stop,
            read_buffer_bytes=settings.statsd_read_buffer_bytes,
            housekeeping=self._expire,
        )
        self.receiver.bind()
        sources: list[Source] = [StatsdSource(self.store, healthy=self.receiver.alive)]
        if self.json_source is not None:
            sources.append(self.json_source)
        process = CollectorRegistry()
        ProcessCollector(registry=process)
        self.exposition = Exposition(
            sources,
            self._self_metrics,
            timeout_seconds=settings.json_timeout_seconds,
            margin_seconds=settings.scrape_timeout_margin_seconds,
            extra=[process],
        )
        self.admin: AdminServer = build_admin_server(
            settings.host,
            settings.port,
            self.exposition,
            self.reloader,
            heartbeats=[self.heartbeat],
            ready=self.ready,
        )

    def ready(self) -> bool:
        """Ready once the statsd socket is bound, the mapping loaded and the receiver loop running."""
        return self.receiver.bound and self.reloader.loaded and self.receiver.alive()

    def start(self) -> None:
        try:
            self.admin.start()
        except StartupError:
            self.receiver.close()
            raise
        self.receiver.start()
        logger.info(
            "exporter started",
            extra={"http": f"{self.settings.host}:{self.admin.port}", "statsd_port": self.receiver.port},
        )

    def run(self) -> None:
        """Start, serve until ``stop`` is set (reloading when asked), then shut down."""
        self.start()
        try:
            while not self.stop.wait(MAIN_LOOP_INTERVAL_SECONDS):
                if self.reload_requested.is_set():
                    self.reload_requested.clear()
                    try:
                        self.reloader.reload("SIGHUP")
                    except Exception:  # a bad reload must never stop the exporter; the old mapping stays
                        logger.exception("mapping reload failed; keeping the running mapping")
        finally:
            self.shutdown()

    def shutdown(self) -> None:
        """Stop input first, then the HTTP server; join with a deadline."""
        self.stop.set()
        self.receiver.close(SHUTDOWN_JOIN_SECONDS)
        self.admin.close()
        stats = self.ingestor.stats_snapshot()
        logger.info("exporter stopped", extra={"packets": stats.packets, "lines": stats.lines})

    def _apply_config(self, config: ExporterConfig, changed: bool) -> None:
        self.ingestor.set_mapper(build_mapper(config, self.settings), clear_series=changed)
        if self.json_source is not None:
            self.json_source.set_rules(config.json_rules)

    def _expire(self) -> None:
        with self.store.lock:
            self.store.expire()

    def _self_metrics(self, sources: list[SourceResult], collisions: Mapping[str, int]) -> list[Metric]:
        return self_metrics(
            sources,
            self.ingestor.stats_snapshot(),
            self.store.counts(),
            self.reloader.status(),
            self.json_source.rule_errors() if self.json_source else {},
            collisions,
        )
