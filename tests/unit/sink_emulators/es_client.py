"""A keep-alive client and bulk-body builders for driving the Bulk-API emulator over real HTTP."""

from __future__ import annotations

import json
from typing import Any

import requests

from sink_emulators.elasticsearch import BulkEmulator

NDJSON = {"Content-Type": "application/x-ndjson"}
TIMEOUT = 10.0


def ndjson(*lines: dict[str, Any] | str) -> bytes:
    """Join action/source objects (or raw strings) into a bulk body with its final newline."""
    return "".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines).encode()


def create(doc_id: str | None, source: dict[str, Any], index: str | None = "logs") -> list[dict[str, Any]]:
    """One ``create`` action and its source."""
    meta: dict[str, Any] = {}
    if index is not None:
        meta["_index"] = index
    if doc_id is not None:
        meta["_id"] = doc_id
    return [{"create": meta}, source]


class EsClient:
    """A keep-alive ``requests`` session aimed at one emulator, as the log sidecar uses it."""

    def __init__(self, emulator: BulkEmulator) -> None:
        self.emulator = emulator
        self.session = requests.Session()

    def bulk(self, body: bytes, path: str = "/_bulk", **kwargs: Any) -> requests.Response:
        kwargs["headers"] = {**NDJSON, **kwargs.get("headers", {})}
        return self.request("POST", path, data=body, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", TIMEOUT)
        return self.session.request(method, self.emulator.url + path, **kwargs)
