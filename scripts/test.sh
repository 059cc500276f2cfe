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
# (the suite must stay well inside CI's time).
work=$(mktemp -d)
vm_pid=
trap '[ -n "$vm_pid" ] && kill "$vm_pid" 2>/dev/null; rm -rf "$work"' EXIT
export LVSLAB_TEST_TIMINGS="$work/scenarios"
started=$(date +%s)

if [ $# -gt 0 ]; then
    # Some tests (cargo test's filter and options): one cargo run.
    { cargo test --release --locked --no-fail-fast "$@"; echo $? >"$work/rc"; } 2>&1 | tee "$work/log"
    rc=$(cat "$work/rc" 2>/dev/null || echo 1)
else
    # Every test binary built first (a running cargo holds the build directory).
    if ! cargo test --release --locked --no-run >"$work/build.log" 2>&1; then
        cat "$work/build.log"
        exit 1
    fi
    vm_tier=$(sed -n 's|^ *Executable tests/vm_tier.rs (\(.*\))$|\1|p' "$work/build.log")
    # The VM tier runs beside the others. Its scenarios run inside the VM and hold no lab of
    # this machine (the VM's turn is theirs; the demos, whose lab is here, take the labs' turn
    # too), and the namespace tests leave the CPU mostly idle (measured: 6-46 % busy, waiting
    # on the daemons' timers). Beside them run the scenarios that time nothing (lvslab's own
    # and plain IPVS); the ones with drills (modes, drills, reboot) and the demos after, alone:
    # run beside the namespace tests, NAT's failover once measured 18.8 s against 2.8 s.
    first="lvslab_converges ipvs_dr"
    {
        echo "     Running tests/vm_tier.rs ($vm_tier)"
        # shellcheck disable=SC2086
        "$vm_tier" --test-threads=1 $first && a=0 || a=$?
        echo "     Running tests/vm_tier.rs ($vm_tier)"
        # shellcheck disable=SC2046
        "$vm_tier" --test-threads=1 $(for t in $first; do printf -- '--skip %s ' "$t"; done) && b=0 || b=$?
        [ "$a" = 0 ] && [ "$b" = 0 ] && echo 0 >"$work/vm-rc"
    } >"$work/vm.log" 2>&1 &
    vm_pid=$!
    others=$(for f in tests/*.rs; do n=${f#tests/}; n=${n%.rs}; [ "$n" = vm_tier ] || printf -- '--test %s ' "$n"; done)
    # shellcheck disable=SC2086
    { cargo test --release --locked --no-fail-fast --bins $others; echo $? >"$work/rc"; } 2>&1 | tee "$work/log"
    rc=$(cat "$work/rc" 2>/dev/null || echo 1)
    echo "(the VM tier, which ran beside them from the start:)"
    wait "$vm_pid" || true
    vm_pid=
    tee -a "$work/log" <"$work/vm.log"
    [ -s "$work/vm-rc" ] || rc=1
fi

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
