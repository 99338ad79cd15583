"""Destinations for documents, chosen by LOG_SINK; each implements the ``Sink`` protocol."""

from __future__ import annotations

from log_sidecar.settings import Settings
from log_sidecar.sinks.base import ItemFailure, PayloadRejectedError, SendResult, Sink, SinkUnavailableError

__all__ = ["ItemFailure", "PayloadRejectedError", "SendResult", "Sink", "SinkUnavailableError", "create_sink"]


def create_sink(settings: Settings) -> Sink:
    """Build the sink LOG_SINK names (settings were validated: required variables are present).

    Each sink is imported only when chosen: its client library costs memory otherwise.
    """
    if settings.sink == "elasticsearch":
        from log_sidecar.sinks.elasticsearch import ElasticsearchSink

        assert settings.es_url is not None
        return ElasticsearchSink(
            settings.es_url,
            settings.es_index,
            settings.sink_timeout_seconds,
            username=settings.es_username,
            password=settings.es_password,
            api_key=settings.es_api_key,
            ca_cert=settings.es_ca_cert,
        )
    if settings.sink == "fluentd":
        from log_sidecar.sinks.fluentd import FluentdSink

        return FluentdSink(
            settings.fluentd_host, settings.fluentd_port, settings.fluentd_tag, settings.sink_timeout_seconds
        )
    if settings.sink == "stdout":
        from log_sidecar.sinks.stdout import StdoutSink

        return StdoutSink()
    from log_sidecar.sinks.file import FileSink

    return FileSink(settings.file_sink_target)
