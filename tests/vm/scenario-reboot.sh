#!/bin/sh
# VM-tier scenario: a lab that survives a reboot of any node, on real IPVS. After `lvslab up`,
# `drill reboot` powers off and boots a real server, the BACKUP and the MASTER, each under HTTP
# load through the VIP, and verifies the lab as the reboot left it (no lvslab run in between):
# the drill's exit status covers both. In manual mode (the seed's section 7: the alias and the
# ipvsadm rules by hand) the director is power-cut and `lvslab verify` passes: the alias and the
# IPVS rules came back from lvslab-boot. After `down`, power cuts bring nothing back.
# Prints `VERDICT <name> PASS|FAIL <evidence>` lines; exits 0 only when every verdict passed.
# Uses tests/vm/lib.sh (verdict, why, evidence, lab_up, lv_json).
set -u
export LVSLAB_INVENTORY=/var/lib/lvslab/labs/reboot/inventory.yml

lab_up reboot 2 || exit 1
sed -i -e 's/^    connect_timeout: 3$/    connect_timeout: 1/' -e 's/^    delay_before_retry: 3$/    delay_before_retry: 1/' \
    -e 's/^    retry: 3$/    retry: 1/' -e 's/^    delay_loop: 6$/    delay_loop: 2/' "$LVSLAB_INVENTORY"
verdict lab-up PASS "$(head -n 1 /tmp/lab-up.log)"
lv_json /tmp/up.json up
if [ $rc = 0 ]; then verdict up PASS "$(evidence /tmp/up.json 'http via VIP')"
else verdict up FAIL "exit $rc: $(why /tmp/up.json)"; fi

for node in node2 node4 node1; do
    lv_json /tmp/r.json drill reboot "$node" --no-svg
    verified=$(grep -c '"event":"probe".*"pass":true' /tmp/r.json)
    if [ $rc = 0 ]; then verdict "reboot-$node" PASS "$(evidence /tmp/r.json 'drill reboot') ($verified probes passed)"
    else verdict "reboot-$node" FAIL "exit $rc: $(why /tmp/r.json)"; fi
done

# A power cut of a node, outside lvslab (its init's SIGUSR1), then its sshd again.
power_cut() { # node
    lvslab lab exec --name reboot "$1" -- sh -c "setsid sh -c 'sleep 0.3; kill -USR1 1' </dev/null >/dev/null 2>&1 &"
    sleep 2
    tries=60
    # Booted: what is enabled has started (the node's init marks it).
    until lvslab lab exec --name reboot "$1" -- test -e /run/lvslab-node-booted >/dev/null 2>&1 || [ $tries = 0 ]; do tries=$((tries - 1)); sleep 0.5; done
}

lv_json /tmp/manual.json up --mode manual
if [ $rc = 0 ]; then
    power_cut node1
    lv_json /tmp/after.json verify
    rules=$(lvslab lab exec --name reboot node1 -- ipvsadm -Sn | grep -c '^-a')
    if [ $rc = 0 ] && [ "$rules" = 2 ]; then verdict manual-reboot PASS "IPVS rules after the power cut: $rules real servers; $(evidence /tmp/after.json 'http via VIP')"
    else verdict manual-reboot FAIL "exit $rc, $rules rules: $(why /tmp/after.json)"; fi
else verdict manual-reboot FAIL "up --mode manual: exit $rc: $(why /tmp/manual.json)"; fi

lv_json /tmp/down.json down
if [ $rc = 0 ]; then
    for n in node1 node2 node4; do power_cut $n; done
    left=""
    for n in node1 node2 node3 node4; do
        vip=$(lvslab lab exec --name reboot $n -- ip -o addr show | grep -c ' 198.18.0.100/')
        rules=$(lvslab lab exec --name reboot $n -- sh -c 'ipvsadm -Sn 2>/dev/null | grep -c . || true')
        ka=$(lvslab lab exec --name reboot $n -- sh -c 'pgrep -x keepalived >/dev/null && echo running || true')
        [ "$vip" = 0 ] && [ "$rules" = 0 ] && [ -z "$ka" ] || left="$left $n(vip=$vip rules=$rules $ka)"
    done
    if [ -z "$left" ]; then verdict down-then-reboot PASS "no VIP, no IPVS rule, no keepalived on any node after down and power cuts"
    else verdict down-then-reboot FAIL "left after down and power cuts:$left"; fi
else verdict down-then-reboot FAIL "down: exit $rc: $(why /tmp/down.json)"; fi

lvslab lab down --name reboot >/dev/null 2>&1
echo "scenario-reboot: $failures failed"
[ "$failures" = 0 ]
