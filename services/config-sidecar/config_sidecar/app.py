"""Wire the sidecar together from its settings: reader, validator, publisher, notifier, loop, admin."""

from __future__ import annotations

import logging
import sys
import threading
from typing import TextIO

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
from config_sidecar.validate import Validator, load_schema
from config_sidecar.watcher import DirectoryWatcher
from sidecar_common import AdminServer, Backoff, Endpoint, Heartbeat, json_response
from sidecar_common.admin import Request, Response

logger = logging.getLogger(__name__)

EXIT_INVALID = 1
EXIT_IO_ERROR = 3


def build_reloader(settings: Settings) -> Reloader | None:
    """The configured way to tell the app, or None when the app watches files itself."""
    if settings.reload_signal and settings.reload_process:
        return SignalReloader(parse_signal(settings.reload_signal), settings.reload_process)
    if settings.reload_mode == "http":
        return HttpReloader(settings.reload_url, settings.reload_timeout_seconds, settings.reload_verify)
    return None


class ConfigSidecar:
    """The running sidecar: a sync loop thread, a reload notifier thread and the admin server."""

    def __init__(self, settings: Settings, registry: CollectorRegistry | None = None) -> None:
        self.settings = settings
        self.registry = registry if registry is not None else CollectorRegistry()
        self.metrics = SidecarMetrics(self.registry)
        reloader = None if settings.oneshot else build_reloader(settings)
        self.state = SyncState(self.metrics, reload_mode="none" if reloader is None else settings.reload_mode)
        checker = load_schema(settings.schema_file) if settings.schema_file is not None else None
        name_filter = NameFilter(settings.ignore_patterns)
        self.watch_heartbeat = Heartbeat("config-watcher", settings.heartbeat_seconds)
        self.notifier: ReloadNotifier | None = None
        heartbeats = [self.watch_heartbeat]
        if reloader is not None:
            self.notify_heartbeat = Heartbeat("reload-notifier", settings.heartbeat_seconds)
            heartbeats.append(self.notify_heartbeat)
            backoff = Backoff(settings.reload_backoff_seconds, settings.reload_backoff_max_seconds)
            self.notifier = ReloadNotifier(
                reloader, self.state, backoff, self.notify_heartbeat, settings.heartbeat_seconds
            )
        self.syncer = Syncer(
            SourceReader(settings.source_dir, name_filter),
            Validator(checker, settings.schema_targets),
            Publisher(settings.target_dir),
            self.state,
            self.notifier,
        )
        self.debouncer = Debouncer(settings.debounce_seconds, settings.debounce_max_seconds)
        watcher = DirectoryWatcher(settings.source_dir, name_filter, self.debouncer.poke) if settings.watch else None
        self.watcher = watcher
        self.loop = SyncLoop(
            self.syncer,
            self.debouncer,
            watcher,
            self.watch_heartbeat,
            settings.resync_seconds,
            settings.heartbeat_seconds,
        )
        self.admin: AdminServer | None = None
        self._heartbeats = heartbeats

    def start(self) -> None:
        """Serve the admin port, restore what a previous run published, then start the threads."""
        for heartbeat in self._heartbeats:
            heartbeat.beat()  # the threads beat from their first turn on; this covers the moment before
        self.admin = AdminServer(
            Endpoint(self.settings.admin_host, self.settings.admin_port),
            self.registry,
            self._heartbeats,
            self.state.ready,
        )
        self.admin.route("GET", "/status", self._status)
        self.admin.start()
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

    def stop(self) -> None:
        """Stop in order: input (watch, loop) first, then the notifier, then the admin port."""
        if self.watcher is not None:
            self.watcher.stop()
        self.loop.close()
        if self.notifier is not None:
            self.notifier.close()
        if self.admin is not None:
            self.admin.close()
        logger.info("config sidecar stopped")

    def run(self, stop: threading.Event) -> int:
        self.start()
        try:
            stop.wait()
        finally:
            self.stop()
        return 0

    def run_once(self, err: TextIO = sys.stderr) -> int:
        """Sync once without telling anybody (an init container runs before the app); return the exit code."""
        self.syncer.restore()
        result = self.syncer.sync("oneshot")
        if result in (SyncResult.PUBLISHED, SyncResult.UNCHANGED):
            return 0
        error = self.state.snapshot()["last_error"] or {}
        where = error.get("file") or ""
        if error.get("line") is not None:
            where += f": line {error['line']}"
        what = "invalid config" if result is SyncResult.INVALID else "sync failed"
        print(f"config-sidecar: {what}: {where + ': ' if where else ''}{error.get('reason', result)}", file=err)
        return EXIT_INVALID if result is SyncResult.INVALID else EXIT_IO_ERROR

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
