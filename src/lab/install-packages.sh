#!/bin/sh
# Installs the Debian/Ubuntu packages named as arguments with apt (run by `lvslab lab deps
# --install` and `lab up --install-deps`, which take the names from lvslab's one list of
# programs). Idempotent: installs only what is missing; prints what it does.
set -eu

if [ "$(id -u)" != 0 ]; then
    echo "install-packages: run as root (it calls apt-get)" >&2
    exit 1
fi

installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

missing=""
for pkg in "$@"; do
    installed "$pkg" || missing="$missing $pkg"
done
[ -n "$missing" ] || exit 0

# The VM image takes its kernel from the apt lists (linux-image-cloud-amd64 names the current
# one): lists that were cleaned or never fetched are refreshed first.
case "$missing" in
*qemu-system-x86* | *mmdebstrap*)
    if ! apt-cache show linux-image-cloud-amd64 >/dev/null 2>&1; then
        echo "install-packages: apt lists do not know linux-image-cloud-amd64; apt-get update"
        apt-get update -q
    fi
    ;;
esac

# A qemu-utils from backports (8.x and later) conflicts with the distribution's qemu-system (apt
# would remove it): take the qemu-utils of the same version as qemu-system instead.
qemu_utils_pin() {
    case "$missing" in *qemu-system-x86*) ;; *) return 0 ;; esac
    installed qemu-utils || return 0
    utils_version=$(dpkg-query -W -f='${Version}' qemu-utils)
    system_version=$(apt-cache policy qemu-system-x86 2>/dev/null | awk '/Candidate:/ {print $2}')
    if [ -n "$system_version" ] && [ "$system_version" != "(none)" ] &&
        dpkg --compare-versions "$utils_version" gt "$system_version"; then
        echo "qemu-utils=$system_version --allow-downgrades"
    fi
}

export DEBIAN_FRONTEND=noninteractive
extra=$(qemu_utils_pin)
echo "install-packages: installing$missing${extra:+ (and $extra)}"
# shellcheck disable=SC2086 # word splitting of the package lists is intended
if ! apt-get install -y -q --no-install-recommends $missing $extra; then
    # Package lists can be missing or stale on a fresh machine.
    apt-get update -q
    extra=$(qemu_utils_pin)
    apt-get install -y -q --no-install-recommends $missing $extra
fi
