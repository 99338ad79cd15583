"""The call to an upstream demo app's /api/greeting: bounded in time, traced, measured, clearly failed."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests

from demo_app.statsd import StatsdClient


class UpstreamError(Exception):
    """The upstream call failed; ``status`` is what we answer, ``upstream_status`` what the upstream did (if it did)."""

    def __init__(self, status: int, error: str, detail: str, outcome: str, upstream_status: int | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.error = error
        self.detail = detail
        self.outcome = outcome
        self.upstream_status = upstream_status


def relayed_status(upstream_status: int) -> int:
    """What we answer when the upstream answered ``upstream_status`` instead of 200.

    A 5xx is the upstream's own failure (or its mesh proxy's: an injected 503, a 504 timeout)
    and is relayed as is, so the caller and every histogram see what really failed; anything
    else (3xx, 4xx) means our call was wrong, a bad gateway from the caller's side: 502.
    """
    return upstream_status if 500 <= upstream_status <= 599 else 502


class UpstreamClient:
    """GET ``<base_url>/api/greeting`` with a timeout, forwarding the caller's trace headers."""

    def __init__(self, base_url: str, timeout_seconds: float, statsd: StatsdClient) -> None:
        self._request_url = base_url.rstrip("/") + "/api/greeting"
        # What errors, logs and answers show: the URL without any user:password (requests still sends it).
        self.url = _without_credentials(self._request_url)
        self.timeout_seconds = timeout_seconds
        self._statsd = statsd
        # One session (keep-alive pool) per thread: requests.Session is not documented thread-safe.
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._sessions_lock = threading.Lock()

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            self._local.session = session
            with self._sessions_lock:
                self._sessions.append(session)
        return session

    def close(self) -> None:
        """Close every thread's keep-alive connections."""
        with self._sessions_lock:
            sessions, self._sessions = self._sessions, []
        for session in sessions:
            session.close()

    def greeting(self, headers: Mapping[str, str]) -> dict[str, Any]:
        """Return the upstream's JSON answer, or raise UpstreamError; count and time every call."""
        started = time.perf_counter()
        outcome = "error"
        try:
            response = self._session().get(self._request_url, headers=dict(headers), timeout=self.timeout_seconds)
            outcome = str(response.status_code)
            if response.status_code != 200:
                status = relayed_status(response.status_code)
                raise UpstreamError(
                    status,
                    "upstream error" if status == response.status_code else "bad gateway",
                    f"upstream {self.url} answered {response.status_code}",
                    outcome,
                    upstream_status=response.status_code,
                )
            body = response.json()
            if not isinstance(body, dict):
                raise UpstreamError(
                    502, "bad gateway", f"upstream {self.url} answered JSON that is not an object", outcome, 200
                )
            return body
        except requests.Timeout:
            outcome = "timeout"
            raise UpstreamError(
                504, "gateway timeout", f"upstream {self.url} did not answer within {self.timeout_seconds:g} s", outcome
            ) from None
        except requests.JSONDecodeError:
            raise UpstreamError(
                502, "bad gateway", f"upstream {self.url} answered with invalid JSON", outcome, 200
            ) from None
        except requests.RequestException as exc:
            outcome = "error"
            raise UpstreamError(
                502, "bad gateway", f"upstream {self.url} unreachable: {type(exc).__name__}", outcome
            ) from None
        finally:
            self._statsd.increment("app.upstream.calls", tags={"status": outcome})
            self._statsd.timing("app.upstream.duration", (time.perf_counter() - started) * 1000)


def _without_credentials(url: str) -> str:
    """Drop ``user:password@`` from a URL, so it can appear in answers and logs."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
