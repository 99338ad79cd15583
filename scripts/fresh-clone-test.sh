#!/usr/bin/env bash
# The README's promise, checked: a clean clone of the committed HEAD passes `make test`
# on a fresh Debian 12 that has only what the README names. The fresh machine is the
# debootstrap base image (scripts/docker-bootstrap.sh: minbase + python3, python3-venv,
# ca-certificates); this script adds make and git and nothing else, so anything more the
# tests need must come from `make install` itself (.venv, and mk/system-packages.txt as root).
#
# Usage: scripts/fresh-clone-test.sh [host|container]
#   host (default)  bundle the committed HEAD (never the working tree) and run this
#                   script's container step in a throwaway container of $FRESH_IMAGE
#   container       inside the image: apt-get install make git python3-venv, clone the
#                   bundle, `make test`
#
# Environment (default):
#   FRESH_IMAGE (sidecar-lab/python-base:bookworm)   FRESH_PYTEST_ARGS (passed as PYTEST_ARGS)
#   SIDECAR_LAB_REQUIRE_TOOLS (1: a test skipped for a missing tool fails, as in CI)
set -euo pipefail

FRESH_IMAGE="${FRESH_IMAGE:-sidecar-lab/python-base:bookworm}"
FRESH_PYTEST_ARGS="${FRESH_PYTEST_ARGS:-}"
SIDECAR_LAB_REQUIRE_TOOLS="${SIDECAR_LAB_REQUIRE_TOOLS:-1}"
HOST_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
# Where the host step mounts its bundle and this script inside the container.
MOUNT=/fresh-clone-test
# The README's prerequisites besides Python 3.11 (already in the image).
PREREQUISITES=(make git python3-venv)

log() { printf '[fresh-clone-test %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

host() {
    local repo work commit name status=0 started=$SECONDS
    repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
    command -v docker >/dev/null || die "docker not found: run 'make docker-bootstrap' first"
    docker image inspect "$FRESH_IMAGE" >/dev/null 2>&1 ||
        die "image $FRESH_IMAGE not found: run 'make docker-bootstrap' first"
    commit="$(git -C "$repo" rev-parse HEAD)"
    if [[ -n "$(git -C "$repo" status --porcelain --untracked-files=no)" ]]; then
        log "note: the working tree has uncommitted changes; only the committed HEAD is tested"
    fi
    work="$(mktemp -d "${TMPDIR:-/tmp}/sidecar-lab-fresh.XXXXXX")"
    name="sidecar-lab-fresh-$$"
    # shellcheck disable=SC2064  # expand now: remove this very container and directory
    trap "docker rm -f '$name' >/dev/null 2>&1 || true; rm -rf '$work'" EXIT
    git -C "$repo" bundle create --quiet "$work/repo.bundle" HEAD
    cp "${BASH_SOURCE[0]}" "$work/fresh-clone-test.sh"
    log "host: make test on a clean clone of ${commit:0:12} in $FRESH_IMAGE"
    # --network host: apt and pip reach their mirrors only through the host's network
    # here. The host's CA bundle goes over the image's (read-only): this network
    # re-signs TLS, and pip and requests are told to use it. CAP_SYS_ADMIN and CAP_NET_ADMIN:
    # as on a real host, root may create a network namespace and bring its loopback up (the
    # control-port tests run the app bound to 0.0.0.0 inside one; tests/support/netns.py).
    docker run --rm --name "$name" --network host --cap-add SYS_ADMIN --cap-add NET_ADMIN \
        --volume "$work:$MOUNT:ro" \
        --volume "$HOST_CA_BUNDLE:/etc/ssl/certs/ca-certificates.crt:ro" \
        --env PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
        --env REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt \
        --env SIDECAR_LAB_REQUIRE_TOOLS="$SIDECAR_LAB_REQUIRE_TOOLS" \
        --env FRESH_PYTEST_ARGS="$FRESH_PYTEST_ARGS" \
        --env FRESH_COMMIT="$commit" \
        "$FRESH_IMAGE" bash "$MOUNT/fresh-clone-test.sh" container || status=$?
    log "host: finished with status $status after $((SECONDS - started))s"
    return "$status"
}

container() {
    local started=$SECONDS
    [[ $EUID -eq 0 ]] || die "the container step runs as root (it installs the prerequisites)"
    log "container: apt-get install ${PREREQUISITES[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # --no-install-recommends: git recommends ca-certificates, whose reinstall would try
    # to rewrite the mounted bundle.
    apt-get install -y -qq --no-install-recommends "${PREREQUISITES[@]}" >/dev/null
    git -c advice.detachedHead=false clone --quiet "$MOUNT/repo.bundle" /root/sidecar-lab
    cd /root/sidecar-lab
    [[ "$(git rev-parse HEAD)" == "${FRESH_COMMIT:-$(git rev-parse HEAD)}" ]] || die "the clone is not at $FRESH_COMMIT"
    log "container: $(python3 --version), $(make --version | head -n 1), $(git --version); make test"
    make test PYTEST_ARGS="$FRESH_PYTEST_ARGS"
    log "container: make test passed after $((SECONDS - started))s"
}

case "${1:-host}" in
    host) host ;;
    container) container ;;
    *) die "unknown step '$1' (host or container)" ;;
esac
