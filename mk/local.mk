# The lab's two pods as local processes, no Docker: `make local` runs the api pod (the app and its
# four sidecars, mesh proxy included) and the web pod (web + config sidecar, log sidecar, mesh proxy).
# After editing a pod's config, `make config-push` (the api pod's ./config) or `make config-push pod=web`
# (web's deploy/compose/web/config). Both honour LOCAL_POD_DIR (the state directory holding the volume
# stand-ins, default .local-pod); `make local` takes the runner's variables too (LOCAL_POD_MESH=0, ...).
LOCAL_POD_DIR ?= .local-pod
# Which pod `make config-push` updates, and from where (from=DIR overrides the pod's directory).
pod ?= api
LOCAL_POD_CONFIG_api := config
LOCAL_POD_CONFIG_web := deploy/compose/web/config
LOCAL_POD_SOURCE_api := $(LOCAL_POD_DIR)/config-source
LOCAL_POD_SOURCE_web := $(LOCAL_POD_DIR)/web/config-source
from ?= $(LOCAL_POD_CONFIG_$(pod))

.PHONY: local config-push

local: install ## Run the api pod and the web pod as local processes on 127.0.0.1 with the mesh between them (Ctrl-C stops them)
	LOCAL_POD_DIR="$(LOCAL_POD_DIR)" LOCAL_POD_CONFIG="$(LOCAL_POD_CONFIG_api)" \
		LOCAL_POD_WEB_CONFIG="$(LOCAL_POD_CONFIG_web)" $(BIN)/python scripts/local_pod.py

config-push: install ## Kubelet-style ..data swap of ./config (pod=web: web's config; from=DIR) into the running local pod
	@case "$(pod)" in api|web) ;; *) echo "pod=$(pod): the local pods are api and web" >&2; exit 2;; esac
	@test -d "$(LOCAL_POD_SOURCE_$(pod))" || { \
		echo "no $(pod) pod in $(LOCAL_POD_DIR)/: run 'make local' in another terminal first" >&2; exit 1; }
	$(BIN)/python -m config_sidecar kubelet-swap --from "$(from)" --to "$(LOCAL_POD_SOURCE_$(pod))"
