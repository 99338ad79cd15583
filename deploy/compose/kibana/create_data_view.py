"""Create Kibana's data view for the app's logs, since Kibana has no file provisioning.

Run once by the compose service `kibana-setup` after Kibana is healthy; idempotent
(a data view with the same id is left as it is). Standard library only.
Environment: KIBANA_URL, DATA_VIEW_ID, DATA_VIEW_TITLE (index pattern), DATA_VIEW_NAME,
DATA_VIEW_TIME_FIELD (@timestamp), SETUP_TIMEOUT_SECONDS (120).
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request
from typing import Any

REQUEST_TIMEOUT_SECONDS = 10


def call(method: str, url: str, body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
    """Send one JSON request to Kibana and return (status, parsed body)."""
    data = json.dumps(body).encode() if body is not None else None
    # kbn-xsrf: Kibana refuses state-changing API calls without it.
    headers = {"kbn-xsrf": "sidecar-lab", "Content-Type": "application/json"}
    request = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310 (http(s) checked in main)
    try:
        with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_SECONDS) as response:  # noqa: S310
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def ensure_data_view(kibana: str, view_id: str, title: str, name: str, time_field: str) -> str:
    """Create the data view unless it exists, make it the default, and say what was done."""
    status, _ = call("GET", f"{kibana}/api/data_views/data_view/{view_id}")
    outcome = "exists"
    if status == 404:
        body = {"data_view": {"id": view_id, "title": title, "name": name, "timeFieldName": time_field}}
        status, answer = call("POST", f"{kibana}/api/data_views/data_view", body)
        if status != 200:
            raise RuntimeError(f"creating data view {title!r}: HTTP {status}: {answer}")
        outcome = "created"
    elif status != 200:
        raise RuntimeError(f"reading data view {view_id!r}: HTTP {status}")
    status, answer = call("POST", f"{kibana}/api/data_views/default", {"data_view_id": view_id, "force": True})
    if status != 200:
        raise RuntimeError(f"setting the default data view: HTTP {status}: {answer}")
    return outcome


def main() -> int:
    """Retry until Kibana answers (it may still be migrating its saved objects), then exit."""
    kibana = os.environ.get("KIBANA_URL", "http://kibana:5601").rstrip("/")
    if not kibana.startswith(("http://", "https://")):
        print(f"kibana-setup: KIBANA_URL must be http(s)://..., got {kibana!r}", file=sys.stderr)
        return 2
    view_id = os.environ.get("DATA_VIEW_ID", "logs-app")
    title = os.environ.get("DATA_VIEW_TITLE", "logs-app*")
    name = os.environ.get("DATA_VIEW_NAME", "App logs")
    time_field = os.environ.get("DATA_VIEW_TIME_FIELD", "@timestamp")
    deadline = time.monotonic() + float(os.environ.get("SETUP_TIMEOUT_SECONDS", "120"))
    while True:
        try:
            outcome = ensure_data_view(kibana, view_id, title, name, time_field)
        except (OSError, RuntimeError, ValueError) as error:
            if time.monotonic() > deadline:
                print(f"kibana-setup: giving up: {error}", file=sys.stderr)
                return 1
            print(f"kibana-setup: retrying: {error}", file=sys.stderr)
            time.sleep(3)
            continue
        print(f"kibana-setup: data view {title!r} (id {view_id}) {outcome}; it is the default data view")
        return 0


if __name__ == "__main__":
    sys.exit(main())
