"""Endpoints for the platform, not the API's users: probes, /stats and the config sidecar's /-/reload.

Everything under ``/-/`` changes state, so it answers only on the control port, which
gunicorn binds to 127.0.0.1: the pod's shared localhost (the config sidecar) reaches
it, nothing outside the pod does. Elsewhere it is a 404 like any unknown path.
"""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Any

from flask import Blueprint, Response, g, jsonify, request
from werkzeug.exceptions import NotFound

from demo_app.config_snapshot import ConfigError
from demo_app.http_errors import ApiError, error_response
from demo_app.state import app_state
from sidecar_common.admin_settings import CONTROL_HOST

logger = logging.getLogger(__name__)

operations = Blueprint("operations", __name__)
CONTROL_PATHS = "/-/"


def arrived_on_control_port() -> bool:
    """Whether gunicorn accepted this request on the control listener: the socket's own address says so."""
    connection = request.environ.get("gunicorn.socket")
    if connection is None:  # another WSGI server (or a test client): never the control port
        return False
    return bool(connection.getsockname()[:2] == (CONTROL_HOST, app_state().settings.control_port))


@operations.before_app_request
def control_paths_only_on_the_control_port() -> None:
    # Before routing errors too: a GET on the public port must not reveal the route with a 405.
    if request.path.startswith(CONTROL_PATHS) and not arrived_on_control_port():
        raise NotFound()


@operations.get("/livez")
def livez() -> Response:
    # This worker answered, so it is alive; a hung worker is gunicorn's timeout's job.
    return jsonify({"status": "ok", "worker": os.getpid()})


@operations.get("/readyz")
def readyz() -> Response:
    """Ready only once a config snapshot is loaded (the config sidecar may still be publishing)."""
    snapshot = g.get("snapshot")
    if snapshot is None:
        error = app_state().live_config.last_error
        return error_response(
            503, "not ready", error.detail if error else "no config loaded yet", status="not ready", version=None
        )
    return jsonify({"status": "ready", "version": snapshot.version, "worker": os.getpid()})


@operations.get("/stats")
def stats() -> Response:
    """Plain JSON for the exporter: uptime, config version, reloads, requests in flight per worker."""
    state = app_state()
    snapshot = g.get("snapshot")
    workers = state.shared.workers()
    body: dict[str, Any] = {
        "service": state.settings.name,
        "uptime_seconds": round(time.monotonic() - state.shared.started_at, 3),
        "config": {
            "version": snapshot.version if snapshot else None,
            "loaded_at": snapshot.loaded_at_iso if snapshot else None,
            "reloads_total": state.shared.reload_counts(),
        },
        "requests_in_flight": sum(worker["requests_in_flight"] for worker in workers.values()),
        "workers": workers,
        "worker": os.getpid(),
        "statsd": {"sent": state.statsd.sent, "dropped": state.statsd.dropped},
    }
    return jsonify(body)


@operations.post("/-/reload")
def reload() -> Response:
    """Re-read the config directory and make every worker serve it; 422 keeps the previous snapshot."""
    state = app_state()
    hint = _reload_hint(request.get_data(cache=False))
    try:
        result = state.live_config.reload()
    except ConfigError as exc:
        current = state.live_config.current()
        return error_response(422, "invalid config", exc.detail, version=current.version if current else None)
    snapshot = result.snapshot
    expected = hint.get("version")
    if isinstance(expected, str) and expected != snapshot.version:
        # The directory moved on (or not yet) since the caller published; it compares versions and retries.
        logger.info(
            "reload asked for version %s, loaded %s",
            expected,
            snapshot.version,
            extra={"event.action": "config-version-mismatch", "config.version": snapshot.version},
        )
    return jsonify(
        {
            "version": snapshot.version,
            "previous": result.previous_version,
            "changed": result.changed,
            "loaded_at": snapshot.loaded_at_iso,
        }
    )


def _reload_hint(body: bytes) -> dict[str, Any]:
    """The optional ``{"version": ..., "changed": [...]}`` body; malformed input is a 400, not ignored."""
    if not body.strip():
        return {}
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        raise ApiError(
            400, "bad request", 'reload body must be JSON like {"version": "...", "changed": [...]}'
        ) from None
    if not isinstance(document, dict):
        raise ApiError(400, "bad request", "reload body must be a JSON object")
    version = document.get("version")
    if version is not None and not isinstance(version, str):
        raise ApiError(400, "bad request", "version must be a string")
    changed = document.get("changed")
    if changed is not None and not (isinstance(changed, list) and all(isinstance(name, str) for name in changed)):
        raise ApiError(400, "bad request", "changed must be a list of file names")
    return document
