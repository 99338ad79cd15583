"""Unit tests of the metrics exporter (package metrics_exporter)."""
