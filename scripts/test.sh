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
# the VM's and the tests' own, with their packages), the same list `lab up --install-deps` uses,
# while the test binaries build (downloads and unpacking beside a compiler; the build needs
# none of those packages).
cargo build --release --locked
./target/release/lvslab lab deps --tests --install >/dev/null &
installing=$!

# The lab's sshd and nginx run inside the nodes; the host's own daemons are not needed.
# Release: the VM tier runs the binary under an emulated CPU, where a debug build is ~3x slower.
# Every test binary is built before any runs, as two groups run at once:
#  1. the unit tests and the namespace tests (tests/*.rs but vm_*), and beside them, in the
#     background, tests/vm_tier.rs (the VM's untimed scenarios and the demos; one test at a time,
#     so a demo takes the labs' turn only when the VM is its own). Measured here: the namespace
#     tests took 501 s beside a VM scenario against 461 s alone, and passed;
#  2. then tests/vm_timed.rs alone: drills, failovers and reboots measured against their limits
#     (a restarted keepalived beside a VM once missed its 40 s to retake the VIP, and with the VM
#     at nice 10 a NAT failover took 18.8 s against 2.8 s).
# The output is kept to print, at the end, how long each test binary and each VM scenario took
# (the suite must stay well inside CI's time).
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export LVSLAB_TEST_TIMINGS="$work/scenarios"
started=$(date +%s)
cargo test --release --locked --no-run
wait "$installing"
namespace_tests=""
for file in tests/*.rs; do
    name=$(basename "$file" .rs)
    case $name in vm_*) ;; *) namespace_tests="$namespace_tests --test $name" ;; esac
done
{ cargo test --release --locked --no-fail-fast --test vm_tier "$@" -- --test-threads=1 \
    >"$work/vm_tier.log" 2>&1; echo $? >"$work/vm_tier.rc"; } &
background=$!
# shellcheck disable=SC2086 # one word per --test and name
{ cargo test --release --locked --no-fail-fast --bins $namespace_tests "$@"; echo $? >"$work/rc"; } \
    2>&1 | tee "$work/log"
echo "(tests/vm_tier.rs ran beside them; waiting for it to end)"
wait "$background" || true
tee -a "$work/log" <"$work/vm_tier.log"
{ cargo test --release --locked --no-fail-fast --test vm_timed "$@" -- --test-threads=1; \
    echo $? >"$work/vm_timed.rc"; } 2>&1 | tee -a "$work/log"
rc=0
for part in rc vm_tier.rc vm_timed.rc; do
    part_rc=$(cat "$work/$part" 2>/dev/null || echo 1)
    [ "$part_rc" = 0 ] || rc=$part_rc
done

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
