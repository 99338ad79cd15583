#!/usr/bin/env bash
# Load the third-party images an overlay runs (Elasticsearch, Kibana, Prometheus) into the
# kind node when this machine's Docker already has them, so the node does not pull them
# again over the network: Elasticsearch alone is about 1.3 GB, and a pull inside the node
# counts against `make deploy`'s ROLLOUT_TIMEOUT. Images not present here are left to the
# node to pull, with a message saying so. Our own images are loaded by `make deploy`.
#
#   scripts/kind-preload.sh KIND_CLUSTER OVERLAY [IMAGE_TAG]
#
# Environment: KIND (kind), DOCKER (docker), KUBECTL (kubectl, for rendering).
set -euo pipefail

cluster=${1:?usage: $0 KIND_CLUSTER OVERLAY [IMAGE_TAG]}
overlay=${2:?usage: $0 KIND_CLUSTER OVERLAY [IMAGE_TAG]}
tag=${3:-0.1.0}
kind=${KIND:-kind}
docker=${DOCKER:-docker}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# Every image the rendered overlay names, ours (sidecar-lab/...) excepted.
mapfile -t images < <(
    "$root/scripts/k8s-render.sh" "$overlay" "$tag" |
        sed -n 's/^[[:space:]]*image:[[:space:]]*["'\'']\{0,1\}\([^"'\''[:space:]]*\).*/\1/p' |
        grep -v '^sidecar-lab/' | sort -u
)

missing=()
for image in "${images[@]}"; do
    if "$docker" image inspect "$image" >/dev/null 2>&1; then
        echo "kind-preload: loading $image from this machine's Docker into the kind node"
        "$kind" load docker-image --name "$cluster" "$image"
    else
        missing+=("$image")
    fi
done

if ((${#missing[@]})); then
    echo "kind-preload: not in this machine's Docker, so the kind node pulls them itself:" >&2
    printf 'kind-preload:   %s\n' "${missing[@]}" >&2
    echo "kind-preload: on a slow network that can outlast ROLLOUT_TIMEOUT; 'docker pull' them once" >&2
    echo "kind-preload: here and every later 'make deploy' loads them from this machine instead." >&2
fi
