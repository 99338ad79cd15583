"""The exporter as one service: statsd receiver, series store, JSON source, HTTP server and reloads, wired once."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.metrics_core import Metric

from metrics_exporter.config import ConfigError, ExporterConfig
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
from sidecar_common import AdminServer, SettingsError, startup_error

logger = logging.getLogger(__name__)

# How soon a SIGHUP's reload request is picked up by the main loop.
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
    """The running exporter: statsd receiver, series store, JSON source, HTTP server and reloads.

    Built without side effects; ``start()`` loads the mapping (a bad one is a SettingsError
    naming EXPORTER_CONFIG) and binds the UDP, admin and control ports (StartupError).
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.reload_requested = threading.Event()
        self.store = SeriesStore(settings.max_series_per_metric, settings.max_metrics)
        self.ingestor = Ingestor(self.store, Mapper())
        self.json_source = JsonSource(HttpJsonFetcher(settings.json_url)) if settings.json_url else None
        self.reloader = ConfigReloader(settings.config_file, self._apply_config)
        self.receiver = StatsdReceiver(
            settings.statsd_host,
            settings.statsd_port,
            sink=self.ingestor.ingest,
            read_buffer_bytes=settings.statsd_read_buffer_bytes,
            housekeeping=self._expire,
        )
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
            settings, self.exposition, self.reloader, heartbeats=[self.receiver.heartbeat], ready=self.ready
        )
        self._started = False

    def ready(self) -> bool:
        """Ready once the statsd socket is bound, the mapping loaded and the receiver loop running."""
        return self.receiver.bound and self.reloader.loaded and self.receiver.alive()

    def request_reload(self) -> None:
        """SIGHUP: the main loop reloads (a signal handler only sets a flag)."""
        self.reload_requested.set()

    def start(self) -> None:
        """Load the mapping, bind the statsd socket and the HTTP ports, start receiving."""
        try:
            self.reloader.load_initial()
        except ConfigError as exc:
            raise SettingsError("EXPORTER_CONFIG", str(exc)) from None
        try:
            self.receiver.bind()
        except OSError as exc:
            address = f"{self.settings.statsd_host}:{self.settings.statsd_port}/udp"
            raise startup_error("STATSD_PORT", address, exc) from None
        self.admin.start()
        self._started = True
        self.receiver.start()
        logger.info(
            "exporter started",
            extra={
                "http": f"{self.settings.admin_host}:{self.admin.port}",
                "control": f"127.0.0.1:{self.admin.control_port}",
                "statsd_port": self.receiver.port,
            },
        )

    def run(self, stop: threading.Event) -> None:
        """Serve until ``stop`` is set, reloading the mapping when SIGHUP asked for it."""
        while not stop.wait(MAIN_LOOP_INTERVAL_SECONDS):
            if self.reload_requested.is_set():
                self.reload_requested.clear()
                try:
                    self.reloader.reload("SIGHUP")
                except Exception:  # a bad reload must never stop the exporter; the old mapping stays
                    logger.exception("mapping reload failed; keeping the running mapping")

    def close(self) -> None:
        """Stop input first (the UDP socket), then the HTTP server; join with a deadline; idempotent."""
        self.receiver.close(SHUTDOWN_JOIN_SECONDS)
        self.admin.close()
        if self._started:
            self._started = False
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
