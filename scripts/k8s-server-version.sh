#!/usr/bin/env bash
# Refuse to deploy to a Kubernetes older than the lab needs, with a message that says why
# and what to do, instead of an API server rejecting every Pod with native sidecars.
#
#   scripts/k8s-server-version.sh KUBE_CONTEXT MIN_VERSION     (e.g. kind-sidecar-lab 1.29)
#
# Native sidecars (init containers with restartPolicy: Always) are on by default from
# Kubernetes 1.29. kind older than v0.21 creates 1.28 or older clusters, and a cluster
# created once keeps its version: `make deploy` reuses it. Environment: KUBECTL (kubectl).
set -euo pipefail

context=${1:?usage: $0 KUBE_CONTEXT MIN_VERSION}
minimum=${2:?usage: $0 KUBE_CONTEXT MIN_VERSION}
kubectl=${KUBECTL:-kubectl}

if ! json=$("$kubectl" --context "$context" version --output json 2>/dev/null) ||
    [[ $json != *'"serverVersion"'* ]]; then
    echo "k8s-server-version: cannot read the server version of context $context" >&2
    echo "k8s-server-version: (kubectl --context $context version); is the cluster running?" >&2
    exit 1
fi

# "1.37" from {"serverVersion": {"major": "1", "minor": "37", ...}}; providers may write "29+".
server=$(python3 -c '
import json, re, sys
version = json.load(sys.stdin)["serverVersion"]
print(re.sub(r"\D", "", version["major"]) + "." + re.sub(r"\D", "", version["minor"]))
' <<<"$json")

older() { # A B: true when version A is below B
    local a_major=${1%%.*} a_minor=${1#*.} b_major=${2%%.*} b_minor=${2#*.}
    ((a_major < b_major || (a_major == b_major && a_minor < b_minor)))
}

if older "$server" "$minimum"; then
    echo "k8s-server-version: context $context runs Kubernetes $server; the lab needs $minimum or newer" >&2
    echo "k8s-server-version: (native sidecars, on by default from 1.29). A kind cluster keeps the version" >&2
    echo "k8s-server-version: it was created with: 'make kind-down' and 'make deploy' recreate it from" >&2
    echo "k8s-server-version: k8s/kind-cluster.yaml's pinned node image (needs kind v0.33.0 or newer)." >&2
    echo "k8s-server-version: For Kubernetes before 1.29: make deploy K8S_OVERLAY=kind-classic." >&2
    exit 1
fi
echo "k8s-server-version: context $context runs Kubernetes $server (>= $minimum)"
