"""Ship documents to Elasticsearch with the Bulk API over one keep-alive HTTP session."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import requests

from log_sidecar.bulk import (
    ACTION_END,
    FILTER_PATH,
    BulkFraming,
    IndexNamer,
    action_head,
    check_status,
    parse_response,
)
from log_sidecar.sinks.base import SendResult, SinkUnavailableError

CONNECT_TIMEOUT = 5.0
USER_AGENT = "sidecar-lab-log-sidecar/0.1.0"


class ElasticsearchSink:
    """``create`` every document with its deterministic ``_id``: a resend is refused (409), never stored twice.

    ``create`` is also what data streams require, so ES_INDEX may name one.
    """

    name = "elasticsearch"

    def __init__(
        self,
        url: str,
        index_pattern: str,
        timeout: float,
        username: str | None = None,
        password: str | None = None,
        api_key: str | None = None,
        ca_cert: Path | None = None,
        session: requests.Session | None = None,
    ) -> None:
        self._bulk_url = url.rstrip("/") + "/_bulk"
        self._timeout = (min(CONNECT_TIMEOUT, timeout), timeout)
        self._namer = IndexNamer(index_pattern)
        self._session = session or requests.Session()
        self._session.headers.update(
            {"Content-Type": "application/x-ndjson", "Accept": "application/json", "User-Agent": USER_AGENT}
        )
        if username:
            self._session.auth = (username, password or "")
        if api_key:
            self._session.headers["Authorization"] = f"ApiKey {api_key}"
        if ca_cert is not None:
            self._session.verify = str(ca_cert)
        # Session.post works out again, for every request, what cannot change while we run: the
        # URL with its query, the session's headers and auth (netrc included), the environment's
        # proxies and CA bundle. Done once here; a batch copies the prepared request and adds its body.
        self._prepared = self._session.prepare_request(
            requests.Request("POST", self._bulk_url, params={"filter_path": FILTER_PATH})
        )
        self._send_options = self._session.merge_environment_settings(self._prepared.url, {}, None, None, None)

    def framing(self, key: str) -> BulkFraming:
        return BulkFraming(self._namer, key)

    def encode(self, doc_id: str, timestamp: str, source: bytes) -> bytes:
        return b"%s%s%s%s\n" % (action_head(self._namer(timestamp)), doc_id.encode(), ACTION_END, source)

    def send(self, items: Sequence[bytes]) -> SendResult:
        request = self._prepared.copy()
        request.prepare_body(b"".join(items), None)
        request.prepare_cookies(self._session.cookies)  # what a proxy set since (sticky sessions)
        try:
            response = self._session.send(request, timeout=self._timeout, **self._send_options)
        except requests.Timeout as exc:
            raise SinkUnavailableError("timeout", type(exc).__name__) from None
        except requests.exceptions.SSLError as exc:
            raise SinkUnavailableError("tls", str(exc)[:300]) from None
        except requests.ConnectionError as exc:
            raise SinkUnavailableError("connection", str(exc)[:300]) from None
        except requests.RequestException as exc:
            raise SinkUnavailableError("request_failed", str(exc)[:300]) from None
        content = response.content
        check_status(response.status_code, content, response.headers.get("Retry-After"))
        return parse_response(content, len(items))

    def describe(self, item: bytes) -> dict[str, Any]:
        action, _, source = item.partition(b"\n")
        meta = json.loads(action).get("create", {})
        text = source.rstrip(b"\n").decode("utf-8", "replace")
        try:
            document: Any = json.loads(text)
        except ValueError:
            document = text
        return {"id": meta.get("_id"), "index": meta.get("_index"), "document": document}

    def open(self) -> None:
        pass  # one HTTP session, connections made per request

    def close(self) -> None:
        self._session.close()
