# The app pod as local processes, no Docker: `make local`, then `make config-push` after editing ./config.
# Both honour LOCAL_POD_DIR (the state directory holding the volume stand-ins, default .local-pod).
LOCAL_POD_DIR ?= .local-pod
from ?= config

.PHONY: local config-push

local: install ## Run the app pod as local processes on 127.0.0.1, no Docker (Ctrl-C stops it, app first)
	LOCAL_POD_DIR="$(LOCAL_POD_DIR)" LOCAL_POD_CONFIG="$(from)" $(BIN)/python scripts/local_pod.py

config-push: install ## Kubelet-style ..data swap of ./config (or from=DIR) into the running local pod's config-source
	@test -d "$(LOCAL_POD_DIR)/config-source" || { \
		echo "no local pod in $(LOCAL_POD_DIR)/: run 'make local' in another terminal first" >&2; exit 1; }
	$(BIN)/python -m config_sidecar kubelet-swap --from "$(from)" --to "$(LOCAL_POD_DIR)/config-source"
