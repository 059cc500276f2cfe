#!/bin/sh
# Host packages the VM tier needs (Debian/Ubuntu, apt): qemu to boot the guest, mmdebstrap to build
# its root filesystem, kmod (depmod) for the guest's kernel modules, cpio to pack the initramfs;
# for a lab in a VM (`lvslab lab up --vm`) also ip (the bridge and tap) and the OpenSSH client.
# Idempotent: installs only what is missing; prints what it did.
set -eu

if [ "$(id -u)" != 0 ]; then
    echo "install-deps.sh: run as root (it calls apt-get)" >&2
    exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-deps.sh: no apt-get here; install qemu-system-x86 (qemu-system-x86_64), mmdebstrap, kmod, cpio, iproute2, openssh-client by hand" >&2
    exit 1
fi

installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

missing=""
for pkg in qemu-system-x86 mmdebstrap kmod cpio iproute2 openssh-client; do
    installed "$pkg" || missing="$missing $pkg"
done

# The VM image takes its kernel from the apt lists (linux-image-cloud-amd64 names the current
# one): a machine whose lists were cleaned needs an update even when nothing is missing.
if ! apt-cache show linux-image-cloud-amd64 >/dev/null 2>&1; then
    echo "install-deps.sh: apt lists do not know linux-image-cloud-amd64; apt-get update"
    apt-get update -q
fi

if [ -z "$missing" ]; then
    echo "install-deps.sh: qemu-system-x86 mmdebstrap kmod cpio iproute2 openssh-client already installed"
    exit 0
fi

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
echo "install-deps.sh: installing$missing${extra:+ (and $extra)}"
# shellcheck disable=SC2086 # word splitting of the package lists is intended
if ! apt-get install -y --no-install-recommends $missing $extra; then
    # Package lists can be missing or stale on a fresh CI machine.
    apt-get update
    extra=$(qemu_utils_pin)
    apt-get install -y --no-install-recommends $missing $extra
fi
