#!/bin/sh
# VM-tier scenario: lvslab itself, end to end, on a kernel with IPVS. The namespace lab
# (`lvslab lab up`), the seed's keepalived + LVS-DR setup converged on it (`lvslab up`), the
# probes (`lvslab verify`), and a second `lvslab up` that must change nothing.
# Prints `VERDICT <name> PASS|FAIL <evidence>` lines; exits 0 only when every verdict passed.
#
# Runs as root inside the VM tier's guest (lvslab lab vm-run tests/vm/scenario-lvslab.sh).
set -u

LAB=lvslab
export LVSLAB_INVENTORY=/var/lib/lvslab/labs/$LAB/inventory.yml
failures=0

verdict() { # name PASS|FAIL evidence...
    local name=$1 result=$2
    shift 2
    echo "VERDICT $name $result $*"
    [ "$result" = PASS ] || failures=$((failures + 1))
}

# The RECAP lines of an `lvslab up` run, on one line: "node1 ok=5 changed=2 failed=0 ...; ...".
recap() { # log
    sed -n '/^RECAP/,$p' "$1" | grep -E '^ +[a-z0-9]+ +ok=' | sed 's/^ *//; s/  */ /g' | paste -sd ';' -
}

if lvslab lab up --name "$LAB" >/tmp/lab-up.log 2>&1; then
    verdict lab-up PASS "$(head -n 1 /tmp/lab-up.log)"
else
    verdict lab-up FAIL "$(tr '\n' ' ' </tmp/lab-up.log)"
    exit 1
fi
# Under an emulated CPU sshd answers slowly at first: wait until every node does.
tries=30
until lvslab lab status --name "$LAB" >/tmp/lab-status.log 2>&1 || [ "$tries" = 0 ]; do
    tries=$((tries - 1))
    sleep 1
done
[ "$tries" = 0 ] && cat /tmp/lab-status.log

lvslab --no-progress up >/tmp/up1.log 2>&1
status=$?
cat /tmp/up1.log
if [ "$status" = 0 ]; then
    verdict lvslab-up PASS "$(recap /tmp/up1.log)"
else
    verdict lvslab-up FAIL "exit $status: $(recap /tmp/up1.log)"
fi

lvslab --no-progress verify >/tmp/verify.log 2>&1
status=$?
cat /tmp/verify.log
summary=$(grep -E '^verify: ' /tmp/verify.log | tail -n 1)
if [ "$status" = 0 ]; then
    verdict lvslab-verify PASS "$summary; $(grep -m 1 'http via VIP' /tmp/verify.log)"
else
    verdict lvslab-verify FAIL "exit $status: $summary; $(grep -E '^FAIL' /tmp/verify.log | paste -sd ';' -)"
fi

lvslab --no-progress up --no-verify >/tmp/up2.log 2>&1
status=$?
changed=$(recap /tmp/up2.log | tr ';' '\n' | grep -vc ' changed=0 ')
if [ "$status" = 0 ] && [ "$changed" = 0 ]; then
    verdict lvslab-up-again-changes-nothing PASS "$(recap /tmp/up2.log)"
else
    cat /tmp/up2.log
    verdict lvslab-up-again-changes-nothing FAIL "exit $status, $changed hosts changed: $(recap /tmp/up2.log)"
fi

echo "scenario-lvslab: $failures failed"
[ "$failures" = 0 ]
