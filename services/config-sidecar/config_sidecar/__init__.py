"""config_sidecar — see services/config-sidecar/README.md."""
