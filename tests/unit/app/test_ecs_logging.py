"""ECS JSON log lines: field names, one line per record, file plus stdout, and a file that fails."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from demo_app.ecs_logging import EcsFormatter, EcsLogHandler, logging_config
from demo_app.settings import Settings


def record(message: str, *args: object, **fields: Any) -> logging.LogRecord:
    made = logging.LogRecord("demo_app.test", logging.INFO, __file__, 1, message, args, None)
    made.__dict__.update(fields)
    return made


def test_record_becomes_one_ecs_json_line() -> None:
    line = EcsFormatter("demo-app").format(
        record("GET %s %d\nsecond line", "/api/greeting", 200, **{"url.path": "/api/greeting", "event.duration": 5})
    )
    assert "\n" not in line
    doc = json.loads(line)
    assert doc["message"] == "GET /api/greeting 200\nsecond line"
    assert doc["log.level"] == "info"
    assert doc["service.name"] == "demo-app"
    assert doc["process.pid"] == os.getpid()
    assert doc["url.path"] == "/api/greeting"
    assert doc["event.duration"] == 5
    assert doc["@timestamp"].endswith("Z")
    assert doc["log.logger"] == "demo_app.test"


def test_exceptions_become_ecs_error_fields() -> None:
    try:
        raise KeyError("missing")
    except KeyError:
        failed = logging.LogRecord("x", logging.ERROR, __file__, 1, "boom", (), sys.exc_info())
    doc = json.loads(EcsFormatter("demo-app").format(failed))
    assert doc["error.type"] == "KeyError"
    assert "missing" in doc["error.message"]
    assert "Traceback" in doc["error.stack_trace"]


def test_handler_writes_each_line_to_file_and_stdout(tmp_path: Path) -> None:
    stdout = tmp_path / "stdout"
    fd = os.open(stdout, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    handler = EcsLogHandler("web", tmp_path / "logs" / "app.log", stdout_fd=fd)
    try:
        handler.handle(record("first"))
        handler.handle(record("second"))
    finally:
        handler.close()
        os.close(fd)
    in_file = [json.loads(line) for line in (tmp_path / "logs" / "app.log").read_text().splitlines()]
    on_stdout = [json.loads(line) for line in stdout.read_text().splitlines()]
    assert [doc["message"] for doc in in_file] == ["first", "second"]
    assert on_stdout == in_file
    assert in_file[0]["service.name"] == "web"


def test_unwritable_log_file_falls_back_to_stdout_and_says_so(tmp_path: Path) -> None:
    (tmp_path / "blocked").write_text("not a directory")
    stdout = tmp_path / "stdout"
    fd = os.open(stdout, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    handler = EcsLogHandler("demo-app", tmp_path / "blocked" / "app.log", stdout_fd=fd)
    try:
        handler.handle(record("still visible"))
        handler.handle(record("this too"))
    finally:
        handler.close()
        os.close(fd)
    docs = [json.loads(line) for line in stdout.read_text().splitlines()]
    assert [doc["message"] for doc in docs[1:]] == ["still visible", "this too"]
    assert docs[0]["event.action"] == "log-file-unavailable"
    assert "logging to stdout only" in docs[0]["message"]
    assert docs[0]["log.level"] == "warning"


@pytest.mark.parametrize(
    ("log_file", "expected"), [(Path("/var/log/app/app.log"), "/var/log/app/app.log"), (None, None)]
)
def test_gunicorn_and_app_records_share_the_ecs_handler(log_file: Path | None, expected: str | None) -> None:
    config = logging_config(Settings(log_file=log_file, name="web", log_level="debug"))
    assert config["handlers"]["ecs"] == {
        "()": "demo_app.ecs_logging.build_handler",
        "service": "web",
        "log_file": expected,
    }
    assert config["root"] == {"level": "DEBUG", "handlers": ["ecs"]}
    assert config["loggers"]["gunicorn.error"]["handlers"] == ["ecs"]
    assert config["loggers"]["gunicorn.access"]["handlers"] == []
