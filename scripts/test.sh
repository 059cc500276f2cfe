#!/bin/sh
# Every test of lvslab, on a Linux machine as root: installs the packages the tests need when
# they are missing (Debian/Ubuntu, apt), then runs the unit tests, the end-to-end tests against
# the namespace lab, and the VM tier (a stock Debian kernel with IPVS under qemu).
#
#   sudo scripts/test.sh            everything
#   sudo scripts/test.sh engine     only tests whose name matches "engine" (cargo test filter)
set -eu
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
    echo "scripts/test.sh: the lab tests need root (network namespaces, sshd); run it with sudo" >&2
    exit 1
fi

# Build lvslab first: it installs what the tests need from its one list of programs (the lab's,
# the VM's and the tests' own, with their packages), the same list `lab up --install-deps` uses.
cargo build --release --locked
./target/release/lvslab lab deps --tests --install >/dev/null

# The lab's sshd and nginx run inside the nodes; the host's own daemons are not needed.
# Release: the VM tier runs the binary under an emulated CPU, where a debug build is ~3x slower.
exec cargo test --release --locked --no-fail-fast "$@"
