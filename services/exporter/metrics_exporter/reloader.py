"""Hot reload of the mapping file (SIGHUP or ``POST /-/reload``): a bad file is refused, the running one stays."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from metrics_exporter.config import ConfigError, ExporterConfig, load_config

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReloadStatus:
    """What the self-metrics and the reload endpoint report."""

    last_successful: bool
    successes: int
    failures: int
    last_success_time: float
    source: str
    digest: str


@dataclass(frozen=True)
class ReloadOutcome:
    ok: bool
    changed: bool
    detail: str
    config: ExporterConfig


class ConfigReloader:
    """Own the active config; ``apply(config, changed)`` installs a new one into the running exporter."""

    def __init__(
        self,
        path: Path | None,
        apply: Callable[[ExporterConfig, bool], None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self._apply = apply
        self._clock = clock
        self._lock = threading.Lock()
        self._config: ExporterConfig | None = None
        self._last_successful = True
        self._successes = 0
        self._failures = 0
        self._last_success_time = 0.0

    @property
    def config(self) -> ExporterConfig:
        if self._config is None:
            raise RuntimeError("no config loaded yet")
        return self._config

    @property
    def loaded(self) -> bool:
        return self._config is not None

    def load_initial(self) -> ExporterConfig:
        """Load the config at start; a ConfigError here stops the exporter (nothing to fall back on)."""
        config = load_config(self.path)
        with self._lock:
            self._config = config
            self._last_success_time = self._clock()
        self._apply(config, True)
        logger.info(
            "mapping loaded",
            extra={"config": config.source, "digest": config.digest, "rules": len(config.mappings)},
        )
        return config

    def reload(self, trigger: str) -> ReloadOutcome:
        """Load the file again; install it if valid, otherwise keep the running config and say why."""
        with self._lock:
            current = self.config
            try:
                config = load_config(self.path)
            except ConfigError as exc:
                self._last_successful = False
                self._failures += 1
                logger.error(
                    "mapping reload refused; keeping the running mapping",
                    extra={"trigger": trigger, "reason": str(exc)},
                )
                return ReloadOutcome(False, False, str(exc), current)
            changed = config.digest != current.digest
            self._apply(config, changed)
            self._config = config
            self._last_successful = True
            self._successes += 1
            self._last_success_time = self._clock()
        logger.info(
            "mapping reloaded",
            extra={"trigger": trigger, "config": config.source, "digest": config.digest, "changed": changed},
        )
        return ReloadOutcome(True, changed, "", config)

    def status(self) -> ReloadStatus:
        with self._lock:
            config = self._config
            return ReloadStatus(
                last_successful=self._last_successful,
                successes=self._successes,
                failures=self._failures,
                last_success_time=self._last_success_time,
                source=config.source if config else "",
                digest=config.digest if config else "",
            )
