"""The demo API under /api: greeting (optionally via an upstream), orders, work, config; chaos applies here."""

from __future__ import annotations

import logging
import os
import re
import uuid
from http import HTTPStatus
from typing import Any

from flask import Blueprint, Response, g, jsonify, request

from demo_app.config_snapshot import APP_CONFIG_FILE, thaw
from demo_app.http_errors import ApiError, error_response
from demo_app.orders import InvalidOrderError, parse_order
from demo_app.redaction import redact
from demo_app.state import app_state, request_snapshot
from demo_app.tracing import forwarded_headers
from demo_app.upstream import UpstreamError

logger = logging.getLogger(__name__)

api = Blueprint("api", __name__, url_prefix="/api")

MAX_WORK_MS = 10_000
# Statuses /api/work may answer with: real HTTP codes a WSGI app can send as a final answer.
WORK_STATUSES = frozenset(status.value for status in HTTPStatus if 200 <= status.value <= 599)
BODYLESS_STATUSES = frozenset({204, 205, 304})
JSON_MIMETYPE = "application/json"
# An optional minus and at most 12 ASCII digits: what int() is then certain to accept ("--5" is not an integer).
_INTEGER = re.compile(r"-?[0-9]{1,12}")


@api.before_request
def apply_chaos() -> None:
    """Delay and/or fail /api/* requests as the config's chaos knobs ask (workshop fault injection)."""
    snapshot = g.get("snapshot")
    if snapshot is None:
        return
    state = app_state()
    chaos = snapshot.app
    if chaos.latency_ms > 0:
        state.sleep(chaos.latency_ms / 1000)
    if chaos.error_rate > 0 and state.random_fraction() < chaos.error_rate:
        raise ApiError(
            503, "chaos", f"failure injected by chaos.error_rate={chaos.error_rate:g}", config_version=snapshot.version
        )


@api.get("/greeting")
def greeting() -> Response:
    state = app_state()
    snapshot = request_snapshot()
    body: dict[str, Any] = {
        "greeting": snapshot.app.greeting,
        "db_host": state.settings.db_host,
        "service": state.settings.name,
        "config_version": snapshot.version,
        "worker": os.getpid(),
    }
    if state.upstream is not None:
        try:
            body["upstream"] = state.upstream.greeting(forwarded_headers(g.headers, g.request_id))
        except UpstreamError as exc:
            logger.warning(
                "upstream call failed: %s",
                exc.detail,
                extra={"event.action": "upstream-failed", "error.message": exc.detail, "upstream.outcome": exc.outcome},
            )
            # The upstream's own status, when it answered, next to ours (which relays a 5xx as is).
            answered = {} if exc.upstream_status is None else {"upstream_status": exc.upstream_status}
            raise ApiError(exc.status, exc.error, exc.detail, upstream=state.upstream.url, **answered) from None
    return jsonify(body)


@api.post("/orders")
def create_order() -> tuple[Response, int]:
    state = app_state()
    if not _is_json(request.mimetype):
        raise ApiError(415, "unsupported media type", f"send the order as {JSON_MIMETYPE}, not {request.mimetype!r}")
    body = request.get_data(cache=False)  # beyond MAX_CONTENT_LENGTH this raises 413
    try:
        order = parse_order(body)
    except InvalidOrderError as exc:
        raise ApiError(400, "invalid order", str(exc)) from None
    order_id = str(uuid.uuid4())
    state.statsd.increment("app.orders.created")
    logger.info(
        "order %s created: %d x %s",
        order_id,
        order.quantity,
        order.item,
        extra={"event.action": "order-created", "order.id": order_id, "order.quantity": order.quantity},
    )
    return jsonify({"id": order_id, "item": order.item, "quantity": order.quantity, "note": order.note}), 201


@api.get("/work")
def work() -> Response:
    """Take ``ms`` milliseconds and answer ``status``: latency and failures on demand for load demos."""
    state = app_state()
    ms = _int_param("ms", default=0, low=0, high=MAX_WORK_MS)
    status = _int_param("status", default=200, low=200, high=599)
    if status not in WORK_STATUSES:
        raise ApiError(400, "bad request", f"status {status} is not an HTTP status code")
    if ms:
        state.sleep(ms / 1000)
    if status in BODYLESS_STATUSES:
        return Response(status=status)
    if status >= 400:
        return error_response(
            status, HTTPStatus(status).phrase.lower(), f"requested by /api/work?status={status}", requested=True
        )
    response = jsonify({"status": status, "ms": ms, "worker": os.getpid()})
    response.status_code = status
    return response


@api.get("/config")
def config() -> Response:
    """The effective config with secret-looking values redacted, its version and when it was loaded."""
    snapshot = request_snapshot()
    app_document = snapshot.documents.get(APP_CONFIG_FILE)
    effective = {**(thaw(app_document) if app_document is not None else {}), **snapshot.app.effective()}
    documents = {name: thaw(document) for name, document in snapshot.documents.items() if name != APP_CONFIG_FILE}
    return jsonify(
        {
            "version": snapshot.version,
            "loaded_at": snapshot.loaded_at_iso,
            "config": redact(effective),
            "documents": redact(documents),
            "unparsed_files": list(snapshot.other_files),
        }
    )


def _is_json(mimetype: str) -> bool:
    return mimetype == JSON_MIMETYPE or (mimetype.startswith("application/") and mimetype.endswith("+json"))


def _int_param(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    text = raw.strip()
    if not _INTEGER.fullmatch(text):
        raise ApiError(400, "bad request", f"{name} must be an integer, got {raw[:40]!r}")
    value = int(text)
    if not low <= value <= high:
        raise ApiError(400, "bad request", f"{name} must be between {low} and {high}, got {value}")
    return value
