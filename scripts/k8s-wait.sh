#!/usr/bin/env bash
# Wait until the sidecar-lab rollout is complete, then print where to find things.
#
#   scripts/k8s-wait.sh [KUBE_CONTEXT] [TIMEOUT]     (defaults: kind-sidecar-lab, 300s)
#
# Waits for every Deployment in the namespace (the app pods, and the observability
# backends when the overlay has them), then for the log-once Job: with native sidecars
# it completes; with classic ones (overlays/kind-classic) it cannot, which is the lab.
set -euo pipefail

context=${1:-kind-sidecar-lab}
timeout=${2:-300s}
namespace=sidecar-lab
kubectl=("${KUBECTL:-kubectl}" --context "$context" --namespace "$namespace")

mapfile -t deployments < <("${kubectl[@]}" get deployments --output name)
if ((${#deployments[@]} == 0)); then
    echo "no Deployments in namespace $namespace: was the overlay applied?" >&2
    exit 1
fi
# Why a rollout is stuck, in words: the pods' waiting reasons, and what to do about each.
explain_stuck_rollout() {
    local deployment=$1 waiting
    echo "k8s-wait: $deployment is not ready after $timeout. Its namespace's pods:" >&2
    "${kubectl[@]}" get pods >&2 || true
    waiting=$("${kubectl[@]}" get pods --output \
        jsonpath='{range .items[*]}{range .status.initContainerStatuses[*]}{.state.waiting.reason}{" "}{end}{range .status.containerStatuses[*]}{.state.waiting.reason}{" "}{end}{end}' ||
        true)
    if [[ $waiting == *ErrImagePull* || $waiting == *ImagePullBackOff* ]]; then
        echo "k8s-wait: the kind node cannot pull an image (ErrImagePull/ImagePullBackOff): 'docker pull' it" >&2
        echo "k8s-wait: on this machine and run 'make deploy' again; it loads local images into kind." >&2
    elif [[ $waiting == *ContainerCreating* || $waiting == *PodInitializing* || -z ${waiting// /} ]]; then
        echo "k8s-wait: still pulling or starting (a first Elasticsearch pull is ~1.3 GB, its JVM is slow on" >&2
        echo "k8s-wait: a laptop): wait, or run again with a longer timeout: make deploy ROLLOUT_TIMEOUT=1200s" >&2
    else
        echo "k8s-wait: containers waiting with: $waiting -- see kubectl --context $context -n $namespace describe pods" >&2
    fi
}

for deployment in "${deployments[@]}"; do
    if ! "${kubectl[@]}" rollout status "$deployment" --timeout "$timeout"; then
        explain_stuck_rollout "$deployment"
        exit 1
    fi
done

if "${kubectl[@]}" get job log-once --output name >/dev/null 2>&1; then
    if "${kubectl[@]}" get job log-once --output jsonpath='{.spec.template.spec.initContainers[*].name}' | grep -qw log-sidecar; then
        "${kubectl[@]}" wait --for=condition=complete job/log-once --timeout "$timeout"
    else
        echo "job/log-once runs classic sidecars: it will not complete (see docs/kubernetes.md)"
    fi
fi

has_service() { "${kubectl[@]}" get service "$1" --output name >/dev/null 2>&1; }
node_port() { "${kubectl[@]}" get service "$1" --output jsonpath='{.spec.ports[0].nodePort}'; }

# What to open on each NodePort: web's / is a 404 (the app serves /api/*), so never print a bare port.
entry_points=(web:/api/greeting kibana:/app/discover prometheus:/targets)

echo
echo "sidecar-lab is up (context $context, namespace $namespace):"
for entry in "${entry_points[@]}"; do
    service=${entry%%:*}
    path=${entry#*:}
    if has_service "$service"; then
        port=$(node_port "$service")
        if [[ -n $port ]]; then
            printf '  %-11s http://127.0.0.1:%s%s\n' "$service" "$port" "$path"
        fi
    fi
done
# deploy/, not svc/: with components/mesh-envoy the Service has no 8080 any more and the app
# listens on the pod's loopback, which a port-forward still reaches (the kubelet connects inside the pod).
echo "  demo-app    internal only: kubectl --context $context -n $namespace port-forward deploy/demo-app 8080"
echo "  try         curl -s http://127.0.0.1:30080/api/config"
