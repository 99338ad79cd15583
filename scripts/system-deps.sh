#!/usr/bin/env bash
# Install the Debian packages of mk/system-packages.txt whose programs are missing, when
# this runs as root or with passwordless sudo on an apt system. Anywhere else, say which
# are missing and the command that installs them, and succeed: the tests that need them
# skip with the same command (they fail instead when SIDECAR_LAB_REQUIRE_TOOLS=1, and
# so does this script).
#
# Usage: scripts/system-deps.sh            (make install runs it; make system-deps alone)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
list="$root/mk/system-packages.txt"
require="${SIDECAR_LAB_REQUIRE_TOOLS:-0}"

missing=()
while read -r package programs; do
    [[ -z $package || $package == \#* ]] && continue
    for program in $programs; do
        if ! command -v "$program" >/dev/null; then
            missing+=("$package")
            break
        fi
    done
done <"$list"
((${#missing[@]})) || exit 0

command="apt-get install -y --no-install-recommends ${missing[*]}"
sudo=()
if [[ $EUID -ne 0 ]] && command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    sudo=(sudo)
fi
if command -v apt-get >/dev/null && { [[ $EUID -eq 0 ]] || ((${#sudo[@]})); }; then
    echo "system-deps: ${sudo[*]:+sudo }$command" >&2
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    # Debian's prometheus starts a server on :9090 where an init system runs; the tests
    # start their own on free ports, so one more does no harm.
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    exit 0
fi

echo "system-deps: missing ${missing[*]} (mk/system-packages.txt); the tests that need them skip." >&2
echo "system-deps: install them (Debian, Ubuntu) with: sudo $command" >&2
if [[ $require == 1 ]]; then
    echo "system-deps: SIDECAR_LAB_REQUIRE_TOOLS=1, so that is an error" >&2
    exit 1
fi
