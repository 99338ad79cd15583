#!/usr/bin/env bash
# Unpack Debian's syslog-ng (core, HTTP module, SCL) into DEST without installing it.
#
# syslog-ng-core conflicts with rsyslog, and the log-sidecar benchmark runs both next to
# each other, so syslog-ng is not installed: its .debs (and the few libraries it needs that
# a slim Debian lacks) are fetched with `apt-get download` and unpacked with `dpkg-deb -x`
# into DEST/root. Nothing outside DEST changes. bench/peers.py runs
# DEST/root/usr/sbin/syslog-ng with LD_LIBRARY_PATH and --module-path pointing into DEST.
#
# Usage: scripts/syslog-ng-scratch.sh DEST   (idempotent: an existing, working DEST is kept)
set -euo pipefail

dest=$(realpath -m "${1:?usage: $0 DEST}")
packages=(syslog-ng-core syslog-ng-mod-http syslog-ng-scl libivykis0 libnet1 libpcre3 libwrap0)
root="$dest/root"
libs="$root/usr/lib/x86_64-linux-gnu:$root/lib/x86_64-linux-gnu:$root/usr/lib/aarch64-linux-gnu:$root/lib/aarch64-linux-gnu:$root/usr/lib/syslog-ng"

works() {
    [[ -x "$root/usr/sbin/syslog-ng" ]] && LD_LIBRARY_PATH="$libs" "$root/usr/sbin/syslog-ng" --version >/dev/null 2>&1
}

if works; then
    exit 0
fi

rm -rf "$dest"
mkdir -p "$dest/debs" "$root"
cd "$dest/debs"
# The package lists may be missing or stale on a fresh machine: refresh once and retry.
if ! apt-get download -qq "${packages[@]}" 2>/dev/null; then
    apt-get update -qq
    apt-get download -qq "${packages[@]}"
fi
for deb in ./*.deb; do
    dpkg-deb -x "$deb" "$root"
done
cd - >/dev/null
rm -rf "$dest/debs"

modules=$(find "$root/usr/lib/syslog-ng" -name libhttp.so -printf '%h\n' | head -n 1)
missing=$(LD_LIBRARY_PATH="$libs" ldd "$root/usr/sbin/syslog-ng" "$modules"/*.so | awk '/not found/ {print $1}' | sort -u)
if [[ -n "$missing" ]]; then
    echo "syslog-ng in $dest needs libraries this machine lacks: $missing" >&2
    echo "add their Debian packages to the list in $0" >&2
    exit 1
fi
works || { echo "syslog-ng unpacked into $dest does not start" >&2; exit 1; }
echo "syslog-ng $(LD_LIBRARY_PATH="$libs" "$root/usr/sbin/syslog-ng" --version | head -n 1) unpacked into $dest"
