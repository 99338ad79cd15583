#!/usr/bin/env bash
# Issue, or rotate, the mesh certificates of an overlay's pods (components/mesh-envoy):
# the lab CA lives on THIS machine, and each pod gets only its own certificate, as a Secret.
#
#   scripts/mesh-certs.sh KUBE_CONTEXT OVERLAY      (make deploy runs it; make mesh-certs too)
#
# Which certificates: every pod template of the rendered overlay with a volume named
# `mesh-certs` gets spiffe://sidecar-lab.local/ns/<namespace>/sa/<serviceAccountName> in
# that volume's Secret (kubernetes.io/tls: tls.crt, tls.key, plus ca.crt, the CA to trust).
# The CA (`python -m mesh_proxy ca init`) is created once in MESH_CA_DIR and kept; its key
# never leaves it: nothing in the cluster can issue a certificate. Every run issues new
# certificates and applies the Secrets: that is the rotation. kubelet swaps them into the
# running pods (..data), Envoy's SDS reloads them: no restart, no failed call.
#
# Environment: KUBECTL (kubectl), MESH_PYTHON (.venv/bin/python, which has mesh_proxy),
# MESH_CA_DIR (build/mesh-ca, gitignored), MESH_CERT_DAYS (7: lifetime of each certificate;
# the SidecarLabMeshCertificateExpiring alert fires a day before it ends).
set -euo pipefail

usage() {
    echo "usage: $0 KUBE_CONTEXT OVERLAY" >&2
    exit 2
}

context=${1:-}
overlay=${2:-}
[[ -n $context && -n $overlay ]] || usage
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
kubectl=${KUBECTL:-kubectl}
python=${MESH_PYTHON:-$root/.venv/bin/python}
ca_dir=${MESH_CA_DIR:-$root/build/mesh-ca}
days=${MESH_CERT_DAYS:-7}

# Whole days, at least 2: the expiry alert warns one day ahead, so a shorter lifetime
# would have it firing from the start.
if ! [[ $days =~ ^[0-9]+$ ]] || ((days < 2)); then
    echo "mesh-certs: MESH_CERT_DAYS must be a whole number of days, at least 2 (got '$days')" >&2
    exit 2
fi
if ! "$python" -c 'import mesh_proxy, yaml' 2>/dev/null; then
    echo "mesh-certs: $python cannot import mesh_proxy (the lab CA): run 'make install' first" >&2
    exit 1
fi

# One "namespace service-account secret" line per identity the overlay's pods mount.
identities=$(KUBECTL=$kubectl "$root/scripts/k8s-render.sh" "$overlay" | "$python" -c '
import sys
import yaml

secrets = {}
for doc in yaml.safe_load_all(sys.stdin):
    template = ((doc or {}).get("spec") or {}).get("template") or {}
    pod = template.get("spec") or {}
    for volume in pod.get("volumes") or []:
        if volume.get("name") != "mesh-certs":
            continue
        name = volume["secret"]["secretName"]
        identity = (doc["metadata"]["namespace"], pod.get("serviceAccountName", "default"))
        if secrets.setdefault(name, identity) != identity:
            sys.exit(f"mesh-certs: Secret {name} is mounted by two identities: {secrets[name]} and {identity}")
for name, (namespace, account) in sorted(secrets.items()):
    print(namespace, account, name)
')
if [[ -z $identities ]]; then
    echo "mesh-certs: no pod of overlay $overlay mounts mesh certificates (components/mesh-envoy): nothing to issue"
    exit 0
fi

"$python" -m mesh_proxy ca init --dir "$ca_dir" >/dev/null
echo "mesh-certs: lab CA in $ca_dir (its key stays on this machine)"

# The workload keys exist on this machine only between issuing and applying.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

while read -r namespace account secret; do
    if ! "$kubectl" --context "$context" get namespace "$namespace" --output name >/dev/null 2>&1; then
        echo "mesh-certs: namespace $namespace does not exist in context $context: apply the overlay first (make deploy does)" >&2
        exit 1
    fi
    out=$work/$secret
    # Prints "OUT: ..data -> VERSION: spiffe://..., serial ..., valid until ...".
    issued=$("$python" -m mesh_proxy issue --ca "$ca_dir" --namespace "$namespace" --service-account "$account" \
        --out "$out" --days "$days")
    "$kubectl" --namespace "$namespace" create secret generic "$secret" --type kubernetes.io/tls \
        --from-file=tls.crt="$out/tls.crt" --from-file=tls.key="$out/tls.key" --from-file=ca.crt="$out/ca.crt" \
        --dry-run=client --output yaml |
        "$kubectl" --context "$context" apply -f -
    echo "mesh-certs: $namespace/$secret: ${issued##*: }"
done <<<"$identities"
echo "mesh-certs: running pods take the new certificates within kubelet's sync delay (often 30-90 s), without a restart"
