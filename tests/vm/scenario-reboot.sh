#!/bin/sh
# VM-tier scenario: a lab that survives a reboot of any node, on real IPVS, with the nodes' init
# named by $LAB_INIT (sysv: lvslab's init, a reboot is a power cut; systemd: systemd-nspawn
# containers, a reboot is a real `systemctl reboot`). After `lvslab up`, `drill reboot` reboots a
# real server, the BACKUP and the MASTER, each under HTTP load through the VIP, and verifies the
# lab as the reboot left it (no lvslab run in between): the drill's exit status covers both. A
# changed weight is applied by a reload of keepalived (its IPVS table shows it). In manual mode
# (the seed's section 7: the alias and the ipvsadm rules by hand) the director is rebooted
# outside lvslab and `lvslab verify` passes: the alias and the IPVS rules came back from
# lvslab-boot. After `down`, reboots bring nothing back.
# Prints `VERDICT <name> PASS|FAIL <evidence>` lines; exits 0 only when every verdict passed.
# Uses tests/vm/lib.sh (verdict, why, evidence, lab_up, lv_json).
set -u
export LVSLAB_INVENTORY=/var/lib/lvslab/labs/reboot/inventory.yml

LAB=reboot
LAB_INIT=${LAB_INIT:-sysv}
# The nodes `drill reboot` reboots, in order (a real server, the BACKUP, the MASTER by default;
# set and empty: none).
REBOOT_DRILLS=${REBOOT_DRILLS-node2 node4 node1}
lab_up reboot 2 --init "$LAB_INIT" || exit 1
fast_health_check
lx() { timeout 30 lvslab lab exec --name reboot "$@"; }
verdict lab-up PASS "$(head -n 1 /tmp/lab-up.log); PID 1 of node1: $(lx node1 -- cat /proc/1/comm)"
lv_json /tmp/up.json up
if [ $rc = 0 ]; then verdict up PASS "$(evidence /tmp/up.json 'http via VIP')"
else verdict up FAIL "exit $rc: $(why /tmp/up.json)"; fi

for node in $REBOOT_DRILLS; do
    lv_json /tmp/r.json drill reboot "$node" --margin "$DRILL_MARGIN" --no-svg
    verified=$(grep -c '"event":"probe".*"pass":true' /tmp/r.json)
    if [ $rc = 0 ]; then verdict "reboot-$node" PASS "$(evidence /tmp/r.json 'drill reboot') ($verified probes passed)"
    else verdict "reboot-$node" FAIL "exit $rc: $(why /tmp/r.json)"; fi
done

# A weight changed in the inventory reaches IPVS through a reload of keepalived (systemctl or the
# init script): its table shows it, then back.
inventory_set hosts.node3.weight=2
lv_json /tmp/reload.json up
reloaded=$(grep -c '"task":"reload keepalived","status":"changed"' /tmp/reload.json)
table=$(evidence /tmp/reload.json 'ipvs table on node1')
if [ $rc = 0 ] && [ "$reloaded" = 2 ] && echo "$table" | grep -q '198.18.0.13:80 -g w2'; then
    verdict reload-weight PASS "keepalived reloaded on $reloaded directors; $table"
else verdict reload-weight FAIL "exit $rc, $reloaded reloads, table: $table $(why /tmp/reload.json)"; fi
# Back to weight 1: the manual mode's up below sets it (keepalived stops there).
inventory_set hosts.node3.weight=1

manual_then_reboot 2
down_then_reboot node1 node2 node3 node4

lvslab lab down --name reboot >/dev/null 2>&1
echo "scenario-reboot: $failures failed"
[ "$failures" = 0 ]
