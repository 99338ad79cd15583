"""Exit codes shared by every sidecar-lab service (sidecar_common.lifecycle will own them)."""

EXIT_OK = 0  # stopped cleanly (or a command succeeded)
EXIT_RUNTIME_FAILURE = 1  # failed while running (or check-policy found a problem)
EXIT_CONFIG_ERROR = 2  # a variable or a config file is wrong
EXIT_UNAVAILABLE = 3  # a resource is unavailable at start: a directory, a file, the Envoy binary
