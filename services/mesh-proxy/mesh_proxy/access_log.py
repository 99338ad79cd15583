"""Envoy's access log as JSON lines with Elastic Common Schema names, like the app's own log.

The file sits on the pod's log volume next to ``app.log``, so the log sidecar's
default ``LOG_PATHS`` (``/var/log/app/*.log``) ships it with no extra setting, and
Kibana shows app lines and proxy lines with the same field names. Keys are flat
and dotted (``http.response.status_code``), as the app writes them; fields ECS has
no name for are under ``envoy.``.
"""

from __future__ import annotations

from typing import Any

# Envoy's format commands; numbers (status, bytes, durations) stay numbers in json_format.
ECS_FIELDS: dict[str, str] = {
    "@timestamp": "%START_TIME(%Y-%m-%dT%H:%M:%S.%3fZ)%",
    "message": "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %RESPONSE_CODE% %RESPONSE_FLAGS%",
    "event.dataset": "envoy.access",
    "http.request.method": "%REQ(:METHOD)%",
    "url.original": "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%",
    "http.response.status_code": "%RESPONSE_CODE%",
    "http.request.id": "%REQ(X-REQUEST-ID)%",
    "http.request.bytes": "%BYTES_RECEIVED%",
    "http.response.bytes": "%BYTES_SENT%",
    "network.protocol": "%PROTOCOL%",
    "user_agent.original": "%REQ(USER-AGENT)%",
    "source.address": "%DOWNSTREAM_REMOTE_ADDRESS%",
    "destination.address": "%UPSTREAM_HOST%",
    "tls.client.x509.alternative_names": "%DOWNSTREAM_PEER_URI_SAN%",
    "tls.server.x509.alternative_names": "%UPSTREAM_PEER_URI_SAN%",
    "envoy.duration_ms": "%DURATION%",
    "envoy.upstream_service_time_ms": "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%",
    "envoy.response_flags": "%RESPONSE_FLAGS%",
    "envoy.response_code_details": "%RESPONSE_CODE_DETAILS%",
    "envoy.upstream_cluster": "%UPSTREAM_CLUSTER%",
    "envoy.attempts": "%UPSTREAM_REQUEST_ATTEMPT_COUNT%",
}


def access_log(direction: str, path: str) -> list[dict[str, Any]]:
    """The ``access_log`` block of one listener; ``path`` empty = Envoy's stdout."""
    fields = {**ECS_FIELDS, "network.direction": direction}
    log_format = {"json_format": fields, "omit_empty_values": True}
    if not path:
        return [
            {
                "name": "envoy.access_loggers.stdout",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog",
                    "log_format": log_format,
                },
            }
        ]
    return [
        {
            "name": "envoy.access_loggers.file",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
                "path": path,
                "log_format": log_format,
            },
        }
    ]
