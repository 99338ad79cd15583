"""Reload the app over HTTP: POST the version and changed keys, read back the version it loaded.

Standard-library ``http.client`` rather than requests: one POST per publish does
not need a session pool, and requests' import alone costs ~6 MiB of RSS.
"""

from __future__ import annotations

import http.client
import json
import ssl
from urllib.parse import urlsplit

from config_sidecar.notifier import ReloadError, ReloadRequest

MAX_RESPONSE = 64 * 1024


class HttpReloader:
    """``POST <url>`` with ``{"version", "changed"}``; a 2xx whose body carries the version is an ack."""

    def __init__(self, url: str, timeout: float, verify_version: bool = True) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self.url = url
        self.timeout = timeout
        self.verify_version = verify_version
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")

    def describe(self) -> str:
        return f"POST {self.url}"

    def reload(self, request: ReloadRequest) -> str:
        body = json.dumps({"version": request.version, "changed": list(request.changed)}).encode()
        connection = self._connect()
        try:
            connection.request(
                "POST",
                self._target,
                body,
                {"Content-Type": "application/json", "User-Agent": "config-sidecar"},
            )
            response = connection.getresponse()
            payload = response.read(MAX_RESPONSE)
            status = response.status
        except TimeoutError:
            raise ReloadError(f"no answer within {self.timeout:g}s") from None
        except ConnectionRefusedError:
            raise ReloadError("connection refused (app not listening yet?)") from None
        except (OSError, http.client.HTTPException) as exc:
            raise ReloadError(f"{type(exc).__name__}: {exc}") from None
        finally:
            connection.close()
        if not 200 <= status < 300:
            raise ReloadError(f"HTTP {status}: {_detail(payload)}", status)
        if not self.verify_version:
            return request.version
        try:
            answer = json.loads(payload)
        except ValueError:
            raise ReloadError(f"HTTP {status} without a JSON body (set CONFIG_RELOAD_VERIFY=false?)", status) from None
        version = answer.get("version") if isinstance(answer, dict) else None
        if not isinstance(version, str):
            raise ReloadError(f"HTTP {status} without a version in the body", status)
        return version

    def _connect(self) -> http.client.HTTPConnection:
        if self._https:
            return http.client.HTTPSConnection(
                self._host, self._port, timeout=self.timeout, context=ssl.create_default_context()
            )
        return http.client.HTTPConnection(self._host, self._port, timeout=self.timeout)


def _detail(payload: bytes) -> str:
    """The app's error detail (its 422 names file and line), else the start of the body."""
    try:
        answer = json.loads(payload)
    except ValueError:
        return payload[:200].decode(errors="replace").strip() or "(empty body)"
    if isinstance(answer, dict):
        return str(answer.get("detail") or answer.get("error") or answer)[:200]
    return str(answer)[:200]
