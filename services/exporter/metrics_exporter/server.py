"""The exporter's HTTP endpoints on the shared admin server: /metrics (with the scrape timeout), /-/reload.

``/metrics`` is our own route rather than AdminServer's built-in one because the
JSON source needs Prometheus' ``X-Prometheus-Scrape-Timeout-Seconds`` header at
collect time; encoding (text or OpenMetrics) and gzip stay the shared ones.
``POST /-/reload`` changes state, so it is served only on the loopback control
port (CONTROL_PORT): Prometheus, which reaches ADMIN_PORT from outside the pod,
gets a 404 there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry

from metrics_exporter.exposition import Exposition, parse_scrape_timeout
from metrics_exporter.reloader import ConfigReloader
from metrics_exporter.settings import Settings
from sidecar_common import AdminServer, Endpoint, Heartbeat, Response, json_response
from sidecar_common.admin import Request

SCRAPE_TIMEOUT_HEADER = "x-prometheus-scrape-timeout-seconds"


def build_admin_server(
    settings: Settings,
    exposition: Exposition,
    reloader: ConfigReloader,
    heartbeats: Sequence[Heartbeat],
    ready: Callable[[], bool],
) -> AdminServer:
    """Create the admin server with the exporter's routes; ``start()`` (the caller's) binds it."""
    # The registry is unused: our /metrics route replaces the built-in one.
    server = AdminServer(
        Endpoint(settings.admin_host, settings.admin_port),
        CollectorRegistry(),
        heartbeats=list(heartbeats),
        ready=ready,
        control=Endpoint.control(settings.control_port),
    )

    def metrics(request: Request) -> Response:
        timeout = parse_scrape_timeout(request.headers.get(SCRAPE_TIMEOUT_HEADER))
        body, content_type = exposition.render(request.headers.get("accept", ""), timeout)
        return Response(200, body, content_type)

    def reload(request: Request) -> Response:
        outcome = reloader.reload("http")
        status = reloader.status()
        if not outcome.ok:
            return json_response(
                {"error": "invalid config", "detail": outcome.detail, "config": status.source, "digest": status.digest},
                422,
            )
        return json_response(
            {
                "status": "reloaded",
                "config": status.source,
                "digest": status.digest,
                "changed": outcome.changed,
                "loaded_at": datetime.fromtimestamp(status.last_success_time, UTC).isoformat(timespec="seconds"),
            }
        )

    server.route("GET", "/metrics", metrics)
    server.route("POST", "/-/reload", reload, control=True)
    return server
