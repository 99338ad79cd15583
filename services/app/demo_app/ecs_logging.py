"""JSON log lines with Elastic Common Schema names, to APP_LOG_FILE and stdout.

One JSON object per line, flat dotted ECS keys (``log.level``, ``http.request.method``,
...), which Elasticsearch maps like nested objects. Fields come from ``extra=`` with
their ECS name as key: ``logger.info("...", extra={"url.path": "/api/greeting"})``.
gunicorn's own messages (worker boots, timeouts) go through the same handler, so the
log sidecar ships one format.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import logging.config
import os
from pathlib import Path
from typing import Any

from demo_app.log_file import LogFile
from demo_app.settings import Settings

ECS_VERSION = "8.11.0"
STDOUT_FD = 1
# Attributes every LogRecord has; anything else was passed with ``extra=`` and is a field.
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime", "taskName"}


class EcsFormatter(logging.Formatter):
    """Format a record as one line of ECS JSON (never containing a raw newline)."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "@timestamp": dt.datetime.fromtimestamp(record.created, dt.UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "log.level": record.levelname.lower(),
            "message": record.getMessage(),
            "service.name": self.service,
            "log.logger": record.name,
            "process.pid": record.process,
            "process.thread.name": record.threadName,
            "ecs.version": ECS_VERSION,
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                doc[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            doc["error.type"] = record.exc_info[0].__name__
            doc["error.message"] = str(record.exc_info[1])
            doc["error.stack_trace"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str, ensure_ascii=False, separators=(",", ":"))


class EcsLogHandler(logging.Handler):
    """Write each formatted record, as one write() each, to the log file (if any) and stdout."""

    def __init__(self, service: str, log_file: Path | str | None, stdout_fd: int | None = STDOUT_FD) -> None:
        super().__init__()
        self.setFormatter(EcsFormatter(service))
        self.stdout_fd = stdout_fd
        self.file = LogFile(Path(log_file), self._notice) if log_file else None

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = (self.format(record) + "\n").encode("utf-8", errors="replace")
        except Exception:  # a record that cannot be formatted must not kill the request
            self.handleError(record)
            return
        if self.file is not None:
            self.file.write(line)
        self._stdout(line)

    def _stdout(self, line: bytes) -> None:
        if self.stdout_fd is None:
            return
        # One syscall: atomic on a pipe up to PIPE_BUF. A closed stdout (no reader) loses
        # nothing the log file does not still have.
        with contextlib.suppress(OSError):
            os.write(self.stdout_fd, line)

    def _notice(self, message: str, error: OSError | None) -> None:
        """Tell stdout (the log of last resort) that the file stopped or resumed taking lines."""
        record = logging.LogRecord(__name__, logging.WARNING if error else logging.INFO, __file__, 0, message, (), None)
        record.__dict__["event.action"] = "log-file-unavailable" if error else "log-file-recovered"
        if error is not None:
            record.__dict__["error.type"] = type(error).__name__
            record.__dict__["error.message"] = str(error)
        self._stdout((self.format(record) + "\n").encode("utf-8", errors="replace"))

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
        super().close()


def build_handler(service: str, log_file: str | None) -> EcsLogHandler:
    """Factory for logging.config.dictConfig (gunicorn's ``logconfig_dict``)."""
    return EcsLogHandler(service, log_file)


def logging_config(settings: Settings) -> dict[str, Any]:
    """A dictConfig that sends the root logger and gunicorn's error log through one EcsLogHandler.

    gunicorn's access log is switched off: the app logs every request itself, with ECS fields.
    """
    level = settings.log_level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {
            "ecs": {
                "()": "demo_app.ecs_logging.build_handler",
                "service": settings.name,
                "log_file": str(settings.log_file) if settings.log_file else None,
            }
        },
        "formatters": {},
        "root": {"level": level, "handlers": ["ecs"]},
        "loggers": {
            "gunicorn.error": {"level": level, "handlers": ["ecs"], "propagate": False},
            "gunicorn.access": {"level": "CRITICAL", "handlers": [], "propagate": False},
        },
    }


def configure_logging(settings: Settings) -> None:
    """Install the ECS handler for this process (entry points only; gunicorn does it via logconfig_dict)."""
    logging.config.dictConfig(logging_config(settings))
