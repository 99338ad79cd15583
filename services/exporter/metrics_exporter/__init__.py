"""metrics_exporter — see services/exporter/README.md."""
