# Kubernetes: `make deploy` runs the lab on a local kind cluster (K8S_OVERLAY=kind-mesh: with
# our own Envoy as the mesh), `make istio` adds Istio's mesh instead, `make test-manifests`
# validates every rendering offline (docs/kubernetes.md).
# deploy needs kind, kubectl and docker; istio needs istioctl; test-manifests and
# k8s-render need only the dev venv (its pinned kubectl renders with the built-in kustomize).
# `make -n deploy` prints every step without touching a cluster.
IMAGE_TAG ?= 0.1.0
KIND ?= kind
KUBECTL ?= kubectl
ISTIOCTL ?= istioctl
KIND_CLUSTER ?= sidecar-lab
KUBE_CONTEXT ?= kind-$(KIND_CLUSTER)
# Which k8s/overlays/<name> deploy applies (kind, kind-lite, kind-classic, kind-agent,
# kind-mesh, kind-mesh-fault-abort).
K8S_OVERLAY ?= kind
# Which overlay `make istio` applies (kind-istio, kind-istio-fault-delay, kind-istio-fault-abort).
ISTIO_OVERLAY ?= kind-istio
# Kubernetes version k8s-render validates against: the node image k8s/kind-cluster.yaml
# pins (the default of kind v0.33).
K8S_VERSION ?= 1.37
# The oldest Kubernetes deploy accepts: native sidecars are on by default from 1.29;
# kind-classic (ordinary sidecar containers) is for older clusters (validated for 1.28).
K8S_MIN_VERSION ?= $(if $(filter kind-classic,$(K8S_OVERLAY)),1.28,1.29)
# How long each Deployment may take to become ready: on a first deploy that includes the
# kind node pulling an image it has not got (Elasticsearch is about 1.3 GB; deploy loads
# the ones this machine's Docker has, scripts/kind-preload.sh) and a JVM starting on a laptop.
ROLLOUT_TIMEOUT ?= 600s
K8S_NAMESPACE := sidecar-lab
# The overlays with components/mesh-envoy: their pods run our Envoy (image mesh-proxy) and
# mount certificates that deploy issues from the lab CA on this machine (scripts/mesh-certs.sh,
# with .venv's mesh_proxy; a test keeps this list equal to the overlays that mount them).
K8S_MESH_OVERLAYS := kind-mesh kind-mesh-fault-abort
K8S_MESH := $(filter $(K8S_OVERLAY),$(K8S_MESH_OVERLAYS))
K8S_IMAGES := app config-sidecar log-sidecar exporter $(if $(K8S_MESH),mesh-proxy)
# Where the lab CA lives (gitignored; keep it: a new CA is a new trust root for every pod) and
# how many days each workload certificate is valid (re-run `make mesh-certs` to rotate).
MESH_CA_DIR ?= build/mesh-ca
MESH_CERT_DAYS ?= 7
# The Jobs' pod templates are immutable: deploy deletes them so a re-apply with new
# images recreates (and re-runs) them instead of failing. (observability-setup: the setup
# Job of earlier versions, now a sidecar of Elasticsearch; deleted if a cluster has it.)
K8S_JOBS := log-once observability-setup
# The workloads that join the mesh: the app pods. `make istio` restarts only these; never
# Elasticsearch, whose data (its users included) lives on an emptyDir of its pod.
MESH_SELECTOR := app.kubernetes.io/part-of=sidecar-lab

.PHONY: deploy istio undeploy kind-down k8s-render mesh-certs test-manifests

# A mesh overlay needs .venv first (the lab CA is mesh_proxy's); the others do not.
deploy: $(if $(K8S_MESH),install) ## Run the lab on kind: create the cluster if absent, build + load images, apply the overlay (K8S_OVERLAY=kind), issue mesh certificates, wait, print URLs
	@command -v $(KIND) >/dev/null || { echo "deploy: '$(KIND)' not found; install kind (https://kind.sigs.k8s.io)" >&2; exit 1; }
	@command -v $(KUBECTL) >/dev/null || { echo "deploy: '$(KUBECTL)' not found; install kubectl" >&2; exit 1; }
	$(KIND) get clusters 2>/dev/null | grep -qx '$(KIND_CLUSTER)' || $(KIND) create cluster --name $(KIND_CLUSTER) --config k8s/kind-cluster.yaml --wait 120s
	KUBECTL=$(KUBECTL) scripts/k8s-server-version.sh $(KUBE_CONTEXT) $(K8S_MIN_VERSION)
	$(MAKE) images IMAGE_TAG=$(IMAGE_TAG)
	$(foreach image,$(K8S_IMAGES),$(KIND) load docker-image --name $(KIND_CLUSTER) sidecar-lab/$(image):$(IMAGE_TAG) &&) true
	KIND=$(KIND) KUBECTL=$(KUBECTL) scripts/kind-preload.sh $(KIND_CLUSTER) $(K8S_OVERLAY) $(IMAGE_TAG)
	$(KUBECTL) --context $(KUBE_CONTEXT) --namespace $(K8S_NAMESPACE) delete job $(K8S_JOBS) --ignore-not-found
	scripts/k8s-render.sh $(K8S_OVERLAY) $(IMAGE_TAG) | $(KUBECTL) --context $(KUBE_CONTEXT) apply -f -
	$(if $(K8S_MESH),$(MESH_CERTS))
	KUBECTL=$(KUBECTL) scripts/k8s-wait.sh $(KUBE_CONTEXT) $(ROLLOUT_TIMEOUT)

# Right after the apply: the pods wait for their certificate Secrets (the kubelet retries the
# volume mount), and the namespace exists by then. Every run is a rotation.
MESH_CERTS = KUBECTL=$(KUBECTL) MESH_PYTHON=$(BIN)/python MESH_CA_DIR=$(MESH_CA_DIR) MESH_CERT_DAYS=$(MESH_CERT_DAYS) \
	scripts/mesh-certs.sh $(KUBE_CONTEXT) $(K8S_OVERLAY)

mesh-certs: install ## Issue or rotate the mesh certificates of K8S_OVERLAY=kind-mesh's pods from the lab CA in MESH_CA_DIR (no restart)
	$(MESH_CERTS)

# The rollout restart: app pods created before the namespace got istio-injection=enabled
# have no Envoy yet. Only MESH_SELECTOR's Deployments: the observability backends opt out
# of injection, and a restart would empty Elasticsearch. ENABLE_NATIVE_SIDECARS is the
# default from Istio 1.27 on; set here so older istioctl releases inject Envoy as a
# native sidecar too.
istio: ## Install Istio on the kind cluster (demo profile, CNI, native sidecars), deploy ISTIO_OVERLAY=kind-istio, inject
	@command -v $(ISTIOCTL) >/dev/null || { echo "istio: '$(ISTIOCTL)' not found; install istioctl >= 1.27 (https://istio.io)" >&2; exit 1; }
	$(ISTIOCTL) install --context $(KUBE_CONTEXT) --skip-confirmation \
		--set profile=demo \
		--set components.cni.enabled=true \
		--set values.pilot.env.ENABLE_NATIVE_SIDECARS=true
	$(MAKE) deploy K8S_OVERLAY=$(ISTIO_OVERLAY)
	$(KUBECTL) --context $(KUBE_CONTEXT) --namespace $(K8S_NAMESPACE) rollout restart deployment --selector $(MESH_SELECTOR)
	KUBECTL=$(KUBECTL) scripts/k8s-wait.sh $(KUBE_CONTEXT) $(ROLLOUT_TIMEOUT)

undeploy: ## Delete everything the lab created on the kind cluster (the sidecar-lab namespace); Istio stays
	$(KUBECTL) --context $(KUBE_CONTEXT) delete namespace $(K8S_NAMESPACE) --ignore-not-found --wait=true

kind-down: ## Delete the kind cluster
	$(KIND) delete cluster --name $(KIND_CLUSTER)

# install runs inside the recipe with its output on stderr: stdout carries only the YAML,
# so `make k8s-render > file` stays valid even on a fresh clone that builds .venv first.
k8s-render: ## Print an overlay (K8S_OVERLAY=kind) as deploy applies it, schema-checked for Kubernetes K8S_VERSION
	@$(MAKE) --no-print-directory install >&2
	@mkdir -p build/k8s
	@out=$$(mktemp build/k8s/$(K8S_OVERLAY).XXXXXX.yaml) && trap 'rm -f "$$out"' EXIT && \
	KUBECTL=$(BIN)/kubectl scripts/k8s-render.sh $(K8S_OVERLAY) $(IMAGE_TAG) > "$$out" && \
	$(BIN)/kubernetes-validate --strict --quiet -k $(K8S_VERSION) "$$out" >&2 && \
	cat "$$out"

test-manifests: install ## Validate every overlay and component combination offline (kustomize, schemas, policies, promtool, linters)
	$(BIN)/pytest -m manifests $(PYTEST_ARGS)
