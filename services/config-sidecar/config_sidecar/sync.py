"""One sync pass: read the source, skip if unchanged, validate, publish, hand the version to the notifier."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from enum import StrEnum

from config_sidecar.notifier import ReloadNotifier, ReloadRequest
from config_sidecar.publisher import Publisher, PublishError
from config_sidecar.source import ConfigSet, SourceMissingError, SourceReader, SourceUnstableError
from config_sidecar.status import SyncState
from config_sidecar.validate import ConfigError, Validator

logger = logging.getLogger(__name__)


class SyncResult(StrEnum):
    """The ``result`` label of ``config_sidecar_syncs_total``."""

    PUBLISHED = "published"
    UNCHANGED = "unchanged"
    INVALID = "invalid"
    ERROR = "error"


class Syncer:
    """Bring the target directory to the source's content, if that content is valid."""

    def __init__(
        self,
        reader: SourceReader,
        validator: Validator,
        publisher: Publisher,
        state: SyncState,
        notifier: ReloadNotifier | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.reader = reader
        self.validator = validator
        self.publisher = publisher
        self.state = state
        self.notifier = notifier
        self._clock = clock
        self._published: ConfigSet | None = None
        self._refused: tuple[str, list[ConfigError]] | None = None
        self._last_problem: str | None = None

    def restore(self) -> None:
        """Adopt the set a previous run left in the target, and ask the app to confirm it runs it.

        After a sidecar restart the emptyDir still holds the last publish; the app
        may or may not have applied it (we may have died before it acknowledged).
        """
        published = self.publisher.published()
        if published is None:
            return
        try:
            self.publisher.repair(published)
        except PublishError as exc:
            self._problem("publish", str(exc))
            return  # not adopted: the first pass publishes anew, which rewrites the links
        self._published = published
        self.state.record_published(published, [], restored=True)
        logger.info("found version %s already published", published.version, extra={"version": published.version})
        if self.notifier is not None:
            self.notifier.submit(ReloadRequest(published.version))

    def sync(self, trigger: str, detected_at: float | None = None) -> SyncResult:
        """Run one pass; ``trigger`` ("event", "resync", "start") is logged, ``detected_at`` is monotonic."""
        detected = self._clock() if detected_at is None else detected_at
        result = self._sync(trigger, detected)
        self.state.record_synced(result)
        return result

    def _sync(self, trigger: str, detected_at: float) -> SyncResult:
        try:
            config = self.reader.read()
        except (SourceMissingError, SourceUnstableError, OSError) as exc:
            self._problem("read", str(exc))
            return SyncResult.ERROR
        self.state.record_source(config)
        if self._published is not None and config.fingerprint == self._published.fingerprint:
            self._last_problem = None
            return SyncResult.UNCHANGED

        if self._refused is not None and config.fingerprint == self._refused[0]:
            # Already validated and reported: re-state it (a read error may have replaced it) but
            # neither re-validate nor re-count nor re-log it; the last good set stays published.
            self.state.record_invalid(config, self._refused[1], first_seen=False)
            return SyncResult.INVALID
        errors = self.validator.validate(config.contents)
        if errors:
            self._refused = (config.fingerprint, errors)
            self.state.record_invalid(config, errors, first_seen=True)
            logger.error(
                "refusing version %s: %s",
                config.version,
                errors[0],
                extra={
                    "version": config.version,
                    "errors": [str(e) for e in errors[:20]],
                    "kept_version": self._published.version if self._published else None,
                },
            )
            return SyncResult.INVALID

        try:
            self.publisher.publish(config)
        except PublishError as exc:
            self._problem("publish", str(exc))
            return SyncResult.ERROR
        changed = config.changed_names(self._published)
        self._published = config
        self._refused = None
        self._last_problem = None
        if self.notifier is not None:
            # Before /status shows the new version, so whoever sees it published knows no older one is sent.
            self.notifier.submit(ReloadRequest(config.version, tuple(changed), detected_at))
        self.state.record_published(config, changed)
        logger.info(
            "published version %s",
            config.version,
            extra={"version": config.version, "changed": changed, "trigger": trigger, "layout": config.layout},
        )
        return SyncResult.PUBLISHED

    def _problem(self, stage: str, reason: str) -> None:
        """Record a read/publish failure; log it once, not at every retry of the same failure."""
        self.state.record_error(stage, reason)
        if reason != self._last_problem:
            logger.error("sync failed at %s: %s", stage, reason, extra={"stage": stage})
            self._last_problem = reason
