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
# The output is kept to print, at the end, how long each test binary and each VM scenario took
# (the suite must stay well inside CI's time). The VM tier runs after the others, alone: run
# beside the namespace tests it saved ~8 minutes, but a restarted keepalived there failed to
# retake its VIP within 40 s (2 runs of 2), and with the VM at nice 10 instead the VM's NAT
# failover measured 18.8 s against 2.8 s.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export LVSLAB_TEST_TIMINGS="$work/scenarios"
started=$(date +%s)
{ cargo test --release --locked --no-fail-fast "$@"; echo $? >"$work/rc"; } 2>&1 | tee "$work/log"
rc=$(cat "$work/rc" 2>/dev/null || echo 1)

echo
echo "Time per test binary (s):"
awk '/^ *Running /{ name = $2 }
     /^test result:/{ for (i = 1; i <= NF; i++) if ($i == "in") t = $(i + 1);
                      sub(/s$/, "", t); printf "  %8.1f  %s  %s\n", t, name, $3 }' "$work/log"
if [ -s "$LVSLAB_TEST_TIMINGS" ]; then
    echo "Time per VM scenario (s):"
    sed 's/^/  /' "$LVSLAB_TEST_TIMINGS"
fi
echo "All: $(($(date +%s) - started)) s, exit $rc"
exit "$rc"
