"""log_sidecar — see services/log-sidecar/README.md."""
