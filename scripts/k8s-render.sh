#!/usr/bin/env bash
# Render a k8s/overlays/<name> kustomization to stdout with the sidecar-lab images
# retagged to IMAGE_TAG, so `make deploy IMAGE_TAG=x` applies exactly the images it
# built and loaded into kind.
#
#   scripts/k8s-render.sh OVERLAY [IMAGE_TAG]      (IMAGE_TAG defaults to 0.1.0)
#
# kustomize accepts only relative paths to other kustomizations, so the wrapper
# kustomization lives in a temporary directory under build/ inside the repository.
set -euo pipefail

usage() {
    local overlays=("$root"/k8s/overlays/*/)
    overlays=("${overlays[@]%/}")
    echo "usage: $0 OVERLAY [IMAGE_TAG]   (overlays: ${overlays[*]##*/})" >&2
    exit 2
}

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
overlay=${1:-}
tag=${2:-0.1.0}
[[ -n $overlay && -f $root/k8s/overlays/$overlay/kustomization.yaml ]] || usage
[[ $tag =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]] || { echo "$0: not a valid image tag: $tag" >&2; exit 2; }

mkdir -p "$root/build/k8s-render"
work=$(mktemp -d "$root/build/k8s-render/$overlay.XXXXXX")
trap 'rm -rf "$work"' EXIT

{
    echo "apiVersion: kustomize.config.k8s.io/v1beta1"
    echo "kind: Kustomization"
    echo "resources:"
    echo "  - ../../../k8s/overlays/$overlay"
    echo "images:"
    for image in app config-sidecar log-sidecar exporter mesh-proxy; do
        echo "  - name: sidecar-lab/$image"
        echo "    newTag: \"$tag\""
    done
} >"$work/kustomization.yaml"

"${KUBECTL:-kubectl}" kustomize "$work"
