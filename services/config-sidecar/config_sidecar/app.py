"""The config sidecar as one service: reader, validator, publisher, notifier, loop and admin, wired once."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from prometheus_client import CollectorRegistry

from config_sidecar.debounce import Debouncer
from config_sidecar.http_reload import HttpReloader
from config_sidecar.loop import SyncLoop
from config_sidecar.metrics import SidecarMetrics
from config_sidecar.notifier import Reloader, ReloadNotifier
from config_sidecar.publisher import Publisher
from config_sidecar.settings import Settings, parse_signal
from config_sidecar.signal_reload import SignalReloader
from config_sidecar.source import NameFilter, SourceReader
from config_sidecar.status import SyncState
from config_sidecar.sync import Syncer, SyncResult
from config_sidecar.validate import SchemaLoadError, TargetSchema, Validator, load_schema
from config_sidecar.watcher import DirectoryWatcher
from sidecar_common import AdminServer, Backoff, Endpoint, Heartbeat, SettingsError, StartupError, json_response
from sidecar_common.admin import Request, Response

logger = logging.getLogger(__name__)


def build_reloader(settings: Settings) -> Reloader | None:
    """The configured way to tell the app, or None when the app watches files itself."""
    if settings.reload_signal and settings.reload_process:
        return SignalReloader(parse_signal(settings.reload_signal), settings.reload_process)
    if settings.reload_mode == "http":
        return HttpReloader(settings.reload_url, settings.reload_timeout_seconds, settings.reload_verify)
    return None


def load_schemas(settings: Settings) -> dict[str, TargetSchema]:
    """Every schema target with its checker; each schema file is read once; a bad one is a SettingsError."""
    loaded: dict[Path, TargetSchema] = {}
    schemas: dict[str, TargetSchema] = {}
    for target, (path, variable) in settings.schema_map().items():
        if path not in loaded:
            try:
                loaded[path] = TargetSchema(load_schema(path))
            except SchemaLoadError as exc:
                raise SettingsError(variable, str(exc)) from None
        schemas[target] = TargetSchema(loaded[path].checker, variable)
    return schemas


class ConfigSidecar:
    """The running sidecar: a sync loop thread, a reload notifier thread and the admin server.

    Built without side effects (a bad CONFIG_SCHEMA_FILE is a SettingsError); ``start()``
    binds the admin port and starts the threads; ``close()`` stops them in order.
    """

    def __init__(self, settings: Settings, registry: CollectorRegistry | None = None) -> None:
        self.settings = settings
        self.registry = registry if registry is not None else CollectorRegistry()
        self.metrics = SidecarMetrics(self.registry)
        reloader = None if settings.oneshot else build_reloader(settings)
        self.state = SyncState(self.metrics, reload_mode="none" if reloader is None else settings.reload_mode)
        schemas = load_schemas(settings)
        name_filter = NameFilter(settings.ignore_patterns)
        # The loop wakes to beat at least every CONFIG_HEARTBEAT_SECONDS; a sync pass between
        # two beats reads and writes a few small files.
        heartbeats = [Heartbeat("config-watcher", settings.heartbeat_seconds)]
        self.notifier: ReloadNotifier | None = None
        if reloader is not None:
            # The notifier also blocks in one reload request for up to its timeout.
            beat = Heartbeat("reload-notifier", max(settings.heartbeat_seconds, settings.reload_timeout_seconds))
            heartbeats.append(beat)
            backoff = Backoff(settings.reload_backoff_seconds, settings.reload_backoff_max_seconds)
            self.notifier = ReloadNotifier(reloader, self.state, backoff, beat, settings.heartbeat_seconds)
        self.syncer = Syncer(
            SourceReader(settings.source_dir, name_filter),
            Validator(schemas),
            Publisher(settings.target_dir),
            self.state,
            self.notifier,
        )
        self.debouncer = Debouncer(settings.debounce_seconds, settings.debounce_max_seconds)
        self.watcher = (
            DirectoryWatcher(settings.source_dir, name_filter, self.debouncer.poke) if settings.watch else None
        )
        self.loop = SyncLoop(
            self.syncer,
            self.debouncer,
            self.watcher,
            heartbeats[0],
            settings.resync_seconds,
            settings.heartbeat_seconds,
        )
        self._heartbeats = heartbeats
        self.admin = AdminServer(
            Endpoint(settings.admin_host, settings.admin_port), self.registry, heartbeats, self.state.ready
        )
        self.admin.route("GET", "/status", self._status)
        self._started = False

    def start(self) -> None:
        """Serve the admin port, restore what a previous run published, then start the threads."""
        for heartbeat in self._heartbeats:
            heartbeat.beat()  # the threads beat from their first turn on; this covers the moment before
        self.admin.start()
        self._started = True
        self.syncer.restore()
        if self.notifier is not None:
            self.notifier.start()
        self.loop.start()
        logger.info(
            "config sidecar started",
            extra={
                "source": str(self.settings.source_dir),
                "target": str(self.settings.target_dir),
                "reload": self.state.reload_mode,
                "watch": self.settings.watch,
                "admin_port": self.admin.port,
            },
        )

    def run(self, stop: threading.Event) -> None:
        """Serve until ``stop``; nothing to drain (a pending reload is sent again by the next start)."""
        stop.wait()

    def close(self) -> None:
        """Stop in order: input (watch, loop) first, then the notifier, then the admin port; idempotent."""
        if self.watcher is not None:
            self.watcher.stop()
        self.loop.close()
        if self.notifier is not None:
            self.notifier.close()
        self.admin.close()
        if self._started:
            self._started = False
            logger.info("config sidecar stopped")

    def sync_once(self) -> None:
        """CONFIG_ONESHOT: sync once without telling anybody (an init container runs before the app).

        An invalid source is a configuration error (exit 2, fix the ConfigMap); a source
        that cannot be read or a target that cannot be written is unavailable (exit 3).
        """
        self.syncer.restore()
        result = self.syncer.sync("oneshot")
        if result in (SyncResult.PUBLISHED, SyncResult.UNCHANGED):
            return
        error = self.state.snapshot()["last_error"] or {}
        where = error.get("file") or ""
        if error.get("line") is not None:
            where += f": line {error['line']}"
        reason = f"{where + ': ' if where else ''}{error.get('reason', result)}"
        if result is SyncResult.INVALID:
            raise SettingsError("CONFIG_SOURCE_DIR", f"invalid config: {reason}")
        variable = "CONFIG_TARGET_DIR" if error.get("stage") == "publish" else "CONFIG_SOURCE_DIR"
        raise StartupError(variable, reason)

    def _status(self, request: Request) -> Response:
        document = self.state.snapshot()
        document["watch"] = {
            "inotify": self.watcher is not None,
            "watching": self.watcher.watching if self.watcher is not None else False,
            "resync_seconds": self.settings.resync_seconds,
            "source_dir": str(self.settings.source_dir),
            "target_dir": str(self.settings.target_dir),
        }
        return json_response(document)
