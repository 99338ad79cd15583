"""Around every request: ids, the config snapshot it will use, requests in flight, and its log line."""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from flask import Flask, Response, g, request

from demo_app.state import app_state
from demo_app.tracing import request_id, trace_id

logger = logging.getLogger("demo_app.requests")

REQUEST_ID_HEADER = "X-Request-Id"
WORKER_HEADER = "X-Worker-Pid"
CONFIG_VERSION_HEADER = "X-Config-Version"


def register_request_lifecycle(app: Flask) -> None:
    app.before_request(_start)
    app.after_request(_finish)
    app.teardown_request(_leave)


def _start() -> None:
    g.started_ns = time.perf_counter_ns()
    headers = {key.lower(): value for key, value in request.headers.items()}
    g.headers = headers
    g.request_id = request_id(headers)
    g.trace_id = trace_id(headers)
    state = app_state()
    g.snapshot = state.live_config.current()
    state.worker.request_started(g.snapshot.version if g.snapshot else None)
    g.in_flight = True


def _finish(response: Response) -> Response:
    pid = os.getpid()
    snapshot = g.get("snapshot")
    request_id_value: str = g.get("request_id") or ""
    response.headers[REQUEST_ID_HEADER] = request_id_value
    response.headers[WORKER_HEADER] = str(pid)
    if snapshot is not None:
        response.headers[CONFIG_VERSION_HEADER] = snapshot.version
    started: int | None = g.get("started_ns")
    fields: dict[str, Any] = {
        "event.action": "http-request",
        "event.category": "web",
        "http.request.method": request.method,
        "url.path": request.path,
        "http.response.status_code": response.status_code,
        "http.request.id": request_id_value,
        "client.ip": request.remote_addr,
        "user_agent.original": request.user_agent.string or None,
        "config.version": snapshot.version if snapshot is not None else None,
    }
    if started is not None:
        fields["event.duration"] = time.perf_counter_ns() - started
    trace = g.get("trace_id")
    if trace:
        fields["trace.id"] = trace
    level = logging.ERROR if response.status_code >= 500 else logging.INFO
    logger.log(level, "%s %s %s", request.method, request.path, response.status_code, extra=fields)
    return response


def _leave(exc: BaseException | None) -> None:
    if g.pop("in_flight", False):
        app_state().worker.request_finished()
