"""metrics_exporter — statsd and JSON stats in, Prometheus metrics out (see services/exporter/README.md)."""

from metrics_exporter.config import ConfigError, ExporterConfig, load_config, parse_config
from metrics_exporter.exposition import Exposition
from metrics_exporter.json_source import HttpJsonFetcher, JsonSource
from metrics_exporter.mapping import Mapper
from metrics_exporter.service import Exporter
from metrics_exporter.settings import Settings
from metrics_exporter.statsd.ingest import Ingestor
from metrics_exporter.statsd.parser import StatsdParseError, parse_line
from metrics_exporter.store import SeriesStore

__all__ = [
    "ConfigError",
    "Exporter",
    "ExporterConfig",
    "Exposition",
    "HttpJsonFetcher",
    "Ingestor",
    "JsonSource",
    "Mapper",
    "SeriesStore",
    "Settings",
    "StatsdParseError",
    "load_config",
    "parse_config",
    "parse_line",
]
