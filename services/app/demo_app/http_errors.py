"""Every error leaves the app as JSON ``{"error": ..., "detail": ...}``, including Flask's own 404/405/413."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

logger = logging.getLogger(__name__)


class ApiError(Exception):
    """A deliberate error answer: status, a short error name and a human detail."""

    def __init__(self, status: int, error: str, detail: str, **fields: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.error = error
        self.detail = detail
        self.fields = fields


def error_response(status_code: int, error: str, detail: str, **fields: Any) -> Response:
    """The one JSON error shape: ``{"error": ..., "detail": ..., **fields}``."""
    response = jsonify({"error": error, "detail": detail, **fields})
    response.status_code = status_code
    return response


def register_error_handlers(app: Flask) -> None:
    """Turn ApiError, werkzeug's HTTP errors and any bug into JSON answers."""

    @app.errorhandler(ApiError)
    def api_error(exc: ApiError) -> Response:
        return error_response(exc.status, exc.error, exc.detail, **exc.fields)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        response = error_response(status, (exc.name or "error").lower(), exc.description or "")
        # Keep what the exception adds for the client, e.g. 405's Allow header.
        for key, value in exc.get_headers():
            if key.lower() != "content-type":
                response.headers[key] = value
        return response

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Response:
        # A bug, not bad input: log it with the stack, answer without leaking internals.
        logger.error(
            "unhandled error in %s %s",
            request.method,
            request.path,
            exc_info=exc,
            extra={"event.action": "unhandled-error", "url.path": request.path},
        )
        return error_response(500, "internal error", f"unexpected {type(exc).__name__}; see the app's log")
