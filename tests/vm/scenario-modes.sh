#!/bin/sh
# VM-tier scenario: the three forwarding methods of the seed notes on one NAT-shaped lab
# (`lab up --forwarding nat`: the client and the directors outside, the directors and the real
# servers inside, a router between the two networks). For DR, NAT, TUN and DR again: a converge
# whose verify proves the method's path (IPVS counters, the real servers' logs, tunl0's counter),
# a rerun that changes nothing, nothing left of the method before, and for NAT and TUN the
# failover drill (with NAT the gateway moves too; DR's is drilled in scenario-drills.sh). Then
# the manual mode for NAT and TUN, and `down` leaves nothing.
# Uses tests/vm/lib.sh.
set -u
INV=/var/lib/lvslab/labs/modes/inventory.yml
export LVSLAB_INVENTORY=$INV
on() { node=$1; shift; lvslab lab exec --name modes "$node" -- sh -c "$*"; }
set_mode() { inventory_set "lvs.forwarding=$1"; }
upper() { echo "$1" | tr a-z A-Z; }

# What the real server node2 and the director node1 hold, in one line.
state() {
    rs=$(on node2 'echo "route=$(ip -4 route show exact default | cut -d" " -f3)"; \
        echo "lo_vip=$(ip -o addr show dev lo | grep -c 198.18.0.100)"; \
        echo "tunl0_vip=$(ip -o addr show dev tunl0 2>/dev/null | grep -c 198.18.0.100)"; \
        echo "tunl0_up=$(ip -o link show dev tunl0 2>/dev/null | grep -c "[<,]UP[,>]")"; \
        echo "saved=$(ls /var/lib/lvslab/sysctl-orig /var/lib/lvslab/route-orig 2>/dev/null | grep -v -e ":$" -e "^$" | tr "\n" ",")"' | tr '\n' ' ')
    d=$(on node1 'echo "director_forward=$(cat /proc/sys/net/ipv4/ip_forward)"')
    echo "$rs$d"
}

# Checks that node2 and node1 hold what `mode` needs and nothing of the other modes.
expect_only() { # tag mode
    tag=$1; mode=$2; s=$(state)
    case $mode in
        dr) want="route=198.18.1.2 lo_vip=1 tunl0_vip=0 tunl0_up=0 saved=net.ipv4.conf.all.arp_announce,net.ipv4.conf.all.arp_ignore,net.ipv4.conf.eth0.arp_announce,net.ipv4.conf.eth0.arp_ignore, director_forward=0" ;;
        nat) want="route=198.18.1.254 lo_vip=0 tunl0_vip=0 tunl0_up=0 saved=default, director_forward=1" ;;
        tun) want="route=198.18.1.2 lo_vip=0 tunl0_vip=1 tunl0_up=1 saved=net.ipv4.conf.all.arp_announce,net.ipv4.conf.all.arp_ignore,net.ipv4.conf.all.rp_filter,net.ipv4.conf.eth0.arp_announce,net.ipv4.conf.eth0.arp_ignore,net.ipv4.conf.tunl0.rp_filter, director_forward=0" ;;
        none) want="route=198.18.1.2 lo_vip=0 tunl0_vip=0 tunl0_up=0 saved= director_forward=0" ;;
    esac
    if [ "$(echo $s)" = "$(echo $want)" ]; then verdict "only-$tag" PASS "$s"
    else verdict "only-$tag" FAIL "have: $s; want: $want"; fi
}

lab_up modes 2 --forwarding nat || exit 1
# Switching methods under load leaves entries made under the old one: in DR and TUN they stay in
# FIN_WAIT for 2 minutes and keep their method, so a client that reuses such a port is sent, say,
# through a tunnel the real server no longer has. conn_reuse_mode bit 2 makes IPVS schedule such
# a connection anew (the kernel's own remedy, `lvs.ipvs_settings.conn_reuse_mode` in an inventory;
# the lab writes none, so it is set here by hand).
for d in node1 node4; do on $d 'sysctl -qw net.ipv4.vs.conn_reuse_mode=3'; done
verdict lab-up PASS "$(head -n 1 /tmp/lab-up.log)"
expect_only fresh-lab none

previous=fresh
for mode in dr nat tun dr; do
    set_mode "$mode"
    tag="$mode-after-$previous"
    lv_json /tmp/up.json up
    if [ $rc = 0 ]; then verdict "up-$tag" PASS "$(changed /tmp/up.json) changed; $(evidence /tmp/up.json "path ($(upper $mode))")"
    else verdict "up-$tag" FAIL "exit $rc: $(failed_probes /tmp/up.json) $(failed_tasks /tmp/up.json)"; fi
    lv_json /tmp/rerun.json up --no-verify
    n=$(changed /tmp/rerun.json)
    if [ $rc = 0 ] && [ "$n" = 0 ]; then verdict "rerun-$tag" PASS "0 changed"
    else verdict "rerun-$tag" FAIL "exit $rc, $n changed: $(grep '"status":"changed"' /tmp/rerun.json | head -n 2 | tr '\n' ' ')"; fi
    expect_only "$tag" "$mode"
    # DR's failover is drilled in scenario-drills.sh (the VIP moves on the client's network as
    # here); NAT's moves the real servers' gateway too, TUN's BACKUP forwards through tunnels.
    if [ "$mode" = dr ]; then previous=$mode; continue; fi
    lv_json /tmp/failover.json drill failover --margin "$DRILL_MARGIN"
    if [ $rc = 0 ]; then verdict "failover-$tag" PASS "$(evidence /tmp/failover.json 'drill failover')"
    else verdict "failover-$tag" FAIL "exit $rc: $(failed_probes /tmp/failover.json)"; fi
    # The drill checks the VIP is back on its holder; with NAT the gateway moves with it, and
    # verify proves the whole path again (DR's and TUN's have nothing more to move).
    if [ "$mode" = nat ]; then
        lv_json /tmp/after.json verify
        if [ $rc = 0 ]; then verdict "verify-after-failover-$tag" PASS "$(evidence /tmp/after.json "path ($(upper $mode))")"
        else verdict "verify-after-failover-$tag" FAIL "exit $rc: $(failed_probes /tmp/after.json)"; fi
    fi
    previous=$mode
done

# The seed's section 7 by hand, for the other two methods.
for mode in nat tun; do
    set_mode "$mode"
    lv_json /tmp/manual.json up --mode manual
    if [ $rc = 0 ]; then verdict "manual-$mode" PASS "$(evidence /tmp/manual.json "path ($(upper $mode))")"
    else verdict "manual-$mode" FAIL "exit $rc: $(failed_probes /tmp/manual.json) $(failed_tasks /tmp/manual.json)"; fi
done

lv_json /tmp/down.json down
if [ $rc = 0 ]; then verdict down-leaves-nothing PASS "$(grep -c '"pass":true' /tmp/down.json) checks clean"
else verdict down-leaves-nothing FAIL "exit $rc: $(failed_probes /tmp/down.json) $(failed_tasks /tmp/down.json)"; fi
expect_only after-down none
lv_json /tmp/down2.json down
n=$(changed /tmp/down2.json)
if [ $rc = 0 ] && [ "$n" = 0 ]; then verdict down-twice PASS "0 changed"; else verdict down-twice FAIL "exit $rc, $n changed"; fi
lvslab lab down --name modes >/dev/null 2>&1

echo "scenario-modes: $failures failed"
[ "$failures" = 0 ]
