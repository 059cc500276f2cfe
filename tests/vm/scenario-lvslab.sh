#!/bin/sh
# VM-tier scenario: lvslab itself, end to end, on a kernel with IPVS: the namespace lab
# (`lvslab lab up`), the seed's keepalived + LVS-DR setup converged and verified (`lvslab up`),
# IPVS drift repaired, the manual mode (seed section 7) and its rules back after a power cut of
# the MASTER and a real server, nothing back after `down` and power cuts, all on 3 real servers
# with no playbook change; then several virtual services (persistence,
# a firewall mark, a sorry server, TLS with SSL_GET, sh with sh-port, IPVS kernel settings) converged, rerun, repaired, a real
# server drained and put back (`lvslab drain`/`undrain`), serving the sorry page once the quorum
# is lost and with every real server down, keeping failed servers at weight 0
# (inhibit_on_failure), torn down and set by hand. The drills have their own scenario.
# Prints `VERDICT <name> PASS|FAIL <evidence>` lines; exits 0 only when every verdict passed.
# Runs as root inside the VM tier's guest (lvslab lab vm-run tests/vm/scenario-lvslab.sh).
# Uses tests/vm/lib.sh (verdict, changed, failed_probes, failed_tasks, evidence, lab_up).
set -u
export LVSLAB_INVENTORY=/var/lib/lvslab/labs/ops/inventory.yml
LAB=ops

# Three real servers (node2, node3, node5): the built-in playbooks need no change for more.
lab_up ops 3 || exit 1
verdict lab-up PASS "$(head -n 1 /tmp/lab-up.log)"
lvslab --json up >/tmp/up.json 2>&1
rc=$?
if [ $rc = 0 ]; then verdict up-converges-and-verifies PASS "$(changed /tmp/up.json) changed; $(evidence /tmp/up.json 'http via VIP')"
else verdict up-converges-and-verifies FAIL "exit $rc: $(failed_probes /tmp/up.json) $(failed_tasks /tmp/up.json)"; fi
case $(evidence /tmp/up.json 'http via VIP') in
    *node2=*node3=*node5=*) verdict three-real-servers PASS "$(evidence /tmp/up.json 'http via VIP')" ;;
    *) verdict three-real-servers FAIL "not every real server answered: $(evidence /tmp/up.json 'http via VIP')" ;;
esac
# IPVS drift made by hand on the MASTER's table, three kinds at once: one `up` reports and
# repairs each (its own change, said on its service), and its verify passes.
lx1() { lvslab lab exec --name ops node1 -- ipvsadm "$@" >/dev/null 2>&1; }
lx1 -d -t 198.18.0.100:80 -r 198.18.0.12:80
lx1 -a -t 198.18.0.100:80 -r 198.18.0.30:80 -g -w 1
lx1 -E -t 198.18.0.100:80 -s wlc
lv_json /tmp/drift.json up
what=$(grep '"status":"changed"' /tmp/drift.json | grep -o '"msg":"[^"]*"' | tr '\n' ' ')
for d in "real-server-deleted:add real server 198.18.0.12:80" "extra-real-server:remove real server 198.18.0.30:80" "scheduler-changed:scheduling of tcp 198.18.0.100:80 -> rr"; do
    name=${d%%:*}; change=${d#*:}
    case $what in
        *"$change"*) [ $rc = 0 ] && verdict "drift-$name" PASS "repaired: $change" \
            || verdict "drift-$name" FAIL "exit $rc after \"$change\": $(why /tmp/drift.json)" ;;
        *) verdict "drift-$name" FAIL "exit $rc; no \"$change\" among the changes: $what" ;;
    esac
done

# (A frozen keepalived on either director, a rerun that changes nothing and `down` twice are
# the namespace tier's, tests/lvs.rs; reruns and `down` on IPVS run in scenario-modes.sh and
# below with several services.)

# The manual mode (the seed's section 7) on these SysV nodes (lvslab's init: a reboot is a power
# cut): the MASTER's alias and IPVS rules come back from lvslab-boot's init script; after
# `down`, reboots bring nothing back (the same on systemd nodes: scenario-reboot.sh).
manual_then_reboot 3
if grep -q '"probe":"http via VIP","pass":true' /tmp/manual.json; then verdict manual-mode PASS "$(evidence /tmp/manual.json 'http via VIP')"
else verdict manual-mode FAIL "$(why /tmp/manual.json)"; fi
down_then_reboot node1 node2 node3 node4 node5

# Several virtual services on the VIP, on the same lab: 80 rr (all real servers, a sorry
# server, quorum 2: at least two in service), 8080 wlc persistent (two of them, a failed one kept
# at weight 0, a sorry server kept at weight 0 until it is needed), a firewall mark over
# 8081+8082, persistent, and 8443 served with TLS (checked by keepalived's SSL_GET) and scheduled
# by the client's address and port (sh with sh-port). The short form's
# `port: 80` becomes a `services:` list (the lab's inventory is lvslab's own: the line is
# there; a sed that did nothing fails the verdict).
sed -i 's/^  port: 80$/  ipvs_settings: { expire_nodest_conn: 1, expire_quiescent_template: 1 }\n  services:\n    - { port: 80, sorry_server: local, quorum: 2 }\n    - { port: 8080, scheduler: wlc, persistence_timeout: 300, real_servers: [node2, node3], inhibit_on_failure: true, sorry_server: local, sorry_server_inhibit: true }\n    - { fwmark: 1, ports: [8081, 8082], persistence_timeout: 60 }\n    - { port: 8443, tls: true, scheduler: sh, scheduler_flags: [sh-port] }/' "$LVSLAB_INVENTORY"
if ! grep -q '^  services:' "$LVSLAB_INVENTORY"; then verdict services-converge FAIL "the inventory has no services: list"
else
    lv_json /tmp/svc.json up
    table=$(evidence /tmp/svc.json 'ipvs table on node1')
    web=$(evidence /tmp/svc.json 'http via VIP, tcp 198.18.0.100:8080')
    mark=$(evidence /tmp/svc.json 'http via VIP, fwmark 1')
    # Persistence seen by two clients (the lab's client has 198.18.0.10 and 198.18.0.9): each
    # kept on one real server, and on a fresh table the second client's template went elsewhere.
    clients=$(evidence /tmp/svc.json 'persistent clients, tcp 198.18.0.100:8080')
    case $clients in
        *"each client kept one real server, and clients landed on different ones"*) verdict services-persistent-clients PASS "$clients" ;;
        *) verdict services-persistent-clients FAIL "${clients:-no such probe}" ;;
    esac
    tls=$(evidence /tmp/svc.json 'http via VIP, tcp 198.18.0.100:8443')
    ssl_get=$(lvslab lab exec --name ops node1 -- grep -c SSL_GET /etc/keepalived/keepalived.conf)
    if [ $rc = 0 ] && [ -n "$tls" ] && [ "$ssl_get" = 3 ]; then verdict services-tls PASS "through the VIP: $tls | keepalived.conf: SSL_GET for each of the 3 real servers"
    else verdict services-tls FAIL "exit $rc: ${tls:-no 8443 probe}; SSL_GET blocks: $ssl_get"; fi
    if [ $rc = 0 ] && [ -n "$web" ] && [ -n "$mark" ] \
        && echo "$table" | grep -q 'the sorry server 198.18.0.11:8080 stands by at weight 0: sorry_server_inhibit'; then verdict services-converge PASS "$table | 8080: $web | fwmark: $mark"
    else verdict services-converge FAIL "exit $rc: $(why /tmp/svc.json)"; fi
    # The IPVS settings on both directors (0 and 0 before, the kernel's defaults).
    vs() { lvslab lab exec --name ops "$1" -- sysctl -n net.ipv4.vs.expire_nodest_conn net.ipv4.vs.expire_quiescent_template | tr '\n' ' '; }
    settings="node1: $(vs node1), node4: $(vs node4)"
    if [ "$settings" = "node1: 1 1 , node4: 1 1 " ]; then verdict services-ipvs-settings PASS "expire_nodest_conn, expire_quiescent_template: $settings"
    else verdict services-ipvs-settings FAIL "expire_nodest_conn, expire_quiescent_template: $settings"; fi
    marks=$(lvslab lab exec --name ops node4 -- nft list table ip lvslab 2>&1 | grep -c 'meta mark set')
    if [ "$marks" = 1 ]; then verdict services-mark-on-backup PASS "node4 (BACKUP) has the mark rule: $(lvslab lab exec --name ops node4 -- nft list table ip lvslab | grep 'meta mark set' | tr -s ' \t' ' ')"
    else verdict services-mark-on-backup FAIL "node4: $marks mark rules"; fi
    lv_json /tmp/svc2.json up --no-verify
    n=$(changed /tmp/svc2.json)
    if [ $rc = 0 ] && [ "$n" = 0 ]; then verdict services-rerun PASS "0 changed"
    else verdict services-rerun FAIL "exit $rc, $n changed: $(grep '"status":"changed"' /tmp/svc2.json | head -n 2 | tr '\n' ' ')"; fi
    # Drift on one service (its persistence dropped by hand): said on that service, repaired.
    lvslab lab exec --name ops node1 -- ipvsadm -E -t 198.18.0.100:8080 -s wlc >/dev/null 2>&1
    lv_json /tmp/svc3.json up
    what=$(grep '"status":"changed"' /tmp/svc3.json | grep -o '"msg":"[^"]*"' | tr '\n' ' ')
    case $what in
        *"scheduling of tcp 198.18.0.100:8080 -> wlc persistent 300 s"*) [ $rc = 0 ] && verdict services-drift PASS "repaired: $what" || verdict services-drift FAIL "exit $rc: $(why /tmp/svc3.json)" ;;
        *) verdict services-drift FAIL "exit $rc; changes: $what" ;;
    esac
    # The scheduler that decides by the client's address, with its port hashed too (sh-port),
    # on 8443: keepalived sets the flag (`-b sh-port` in the table), and verify expects the one
    # client's connections spread and says why (sh without the flag, one real server for the one
    # client, is a unit test's).
    flags=$(lvslab lab exec --name ops node1 -- ipvsadm -Sn | grep -e '-A -t 198.18.0.100:8443 ')
    case "$tls" in
        *"sh (sh-port): spread over node"*)
            if [ "$flags" = "-A -t 198.18.0.100:8443 -s sh -b sh-port" ]; then verdict services-scheduler-flags PASS "with sh-port ($flags): $tls"
            else verdict services-scheduler-flags FAIL "the table: $flags" ; fi ;;
        *) verdict services-scheduler-flags FAIL "8443 with sh-port: ${tls:-no probe} | table: $flags" ;;
    esac
    # `lvslab drain` as one command on this lab of several services, under a steady load, with a
    # connection held open to each real server (a request whose end never comes, closed once the
    # drain says it waits for it: a fixed time ran out before a slow converge had ended): the
    # drain waits for it, no request fails, the inventory keeps the drain, and `undrain` puts
    # the weight back.
    drain_cmd() {
        lvslab lab exec --name ops client -- bash -c 'rm -f /tmp/release; for i in 1 2 3; do (exec 3<>/dev/tcp/198.18.0.100/80; printf "GET / HTTP/1.1\r\n" >&3; n=0; while [ ! -e /tmp/release ] && [ $n -lt 90 ]; do sleep 1; n=$((n + 1)); done) & done; wait' >/dev/null 2>&1 &
        held=$!
        sleep 1
        lvslab lab exec --name ops client -- sh -c 'n=0; f=0; end=$(($(date +%s) + 24)); while [ "$(date +%s)" -lt "$end" ]; do curl -s -m 2 -o /dev/null http://198.18.0.100/ || f=$((f + 1)); n=$((n + 1)); sleep 0.1; done; echo "$n requests, $f failed"' >/tmp/drain-load.txt 2>&1 &
        load=$!
        sleep 1
        echo "STEP [$(elapsed)] lvslab drain node2 (3 connections held, one to each real server, until the drain waits for node2's; a steady load)"
        lvslab drain node2 --timeout 60 >/tmp/drain.txt 2>&1 &
        drain=$!
        tries=0
        until grep -q 'active connection(s) still on it' /tmp/drain.txt || ! kill -0 "$drain" 2>/dev/null || [ $tries -ge 90 ]; do
            sleep 1; tries=$((tries + 1))
        done
        sleep 2
        lvslab lab exec --name ops client -- touch /tmp/release >/dev/null 2>&1
        wait "$drain"
        rc=$?
        wait "$load" "$held"
        said=$(grep 'node2 drained' /tmp/drain.txt)
        load_said=$(cat /tmp/drain-load.txt)
        status=$(lvslab status 2>&1 | grep '^Drained')
        if [ $rc = 0 ] && echo "$said" | grep -q '1 active connection(s) at the start, none after' \
            && echo "$load_said" | grep -q 'requests, 0 failed' \
            && grep -A4 '^  node2:' "$LVSLAB_INVENTORY" | grep -q 'drained: true' \
            && echo "$status" | grep -q 'node2$'; then
            verdict drain-command PASS "$said | load: $load_said | the inventory has drained: true | status: $status"
        else
            verdict drain-command FAIL "exit $rc: $(tail -n 3 /tmp/drain.txt | tr '\n' ' ') | load: $load_said | status: $status"
        fi
        echo "STEP [$(elapsed)] lvslab undrain node2"
        lvslab undrain node2 >/tmp/undrain.txt 2>&1
        rc=$?
        said=$(grep 'back in service' /tmp/undrain.txt)
        if [ $rc = 0 ] && echo "$said" | grep -q 'weight 1 on node1, node4' \
            && grep -A4 '^  node2:' "$LVSLAB_INVENTORY" | grep -q 'drained: false'; then
            verdict undrain-command PASS "$said"
        else
            verdict undrain-command FAIL "exit $rc: $(tail -n 3 /tmp/undrain.txt | tr '\n' ' ')"
        fi
    }
    drain_cmd
    # Two of the three real servers out (their web servers killed): with quorum 2 one left is
    # not enough, so keepalived takes the service to its sorry server, each director's own web
    # server, whose page answers through the VIP while node5 still serves; on 8080
    # (inhibit_on_failure) node2 and node3 stay listed at weight 0. `up` starts the web servers
    # again, puts the real servers back, and verify passes.
    for n in node2 node3; do lvslab lab exec --name ops "$n" -- pkill -x nginx; done
    page=""; tries=40
    while [ $tries -gt 0 ]; do
        page=$(lvslab lab exec --name ops client -- curl -s -m 2 http://198.18.0.100/ 2>/dev/null)
        case $page in *sorry*) break ;; esac
        tries=$((tries - 1)); sleep 1
    done
    waited=$((40 - tries))
    inhibited=""; tries=20
    while [ $tries -gt 0 ]; do
        web_table=$(lvslab lab exec --name ops node1 -- ipvsadm -Sn | grep -e '-a -t 198.18.0.100:8080 ')
        inhibited=$(echo "$web_table" | grep -c -e '-w 0$')
        [ "$inhibited" = 2 ] && break
        tries=$((tries - 1)); sleep 1
    done
    node5=$(lvslab lab exec --name ops node5 -- curl -s -m 2 http://198.18.0.15/ | head -n 1)
    # SSL_GET noticed too: 8443 lists node5 alone (a removed real server leaves the table).
    tls_table=""; tries=10
    while [ $tries -gt 0 ]; do
        tls_table=$(lvslab lab exec --name ops node1 -- ipvsadm -Sn | grep -e '-a -t 198.18.0.100:8443 ')
        [ "$(echo "$tls_table" | grep -c .)" = 1 ] && break
        tries=$((tries - 1)); sleep 1
    done
    case $tls_table in
        *198.18.0.15:8443*) [ "$(echo "$tls_table" | grep -c .)" = 1 ] && verdict services-ssl-get PASS "8443 with node2 and node3's web servers killed: $tls_table" || verdict services-ssl-get FAIL "8443 still lists: $(echo "$tls_table" | tr '\n' ';')" ;;
        *) verdict services-ssl-get FAIL "8443 lists: $(echo "$tls_table" | tr '\n' ';')" ;;
    esac
    # 8080 has only node2 and node3: its sorry server, kept at weight 0, now has its weight. The
    # client's persistence template still names a real server that is out: a request or two may
    # go nowhere until it expires (expire_quiescent_template), so a few tries.
    sorry8080=""; tries=10
    while [ $tries -gt 0 ]; do
        sorry8080=$(lvslab lab exec --name ops client -- curl -s -m 2 http://198.18.0.100:8080/ 2>/dev/null | head -n 1)
        case $sorry8080 in *sorry*) break ;; esac
        tries=$((tries - 1)); sleep 1
    done
    sorry8080_entry=$(lvslab lab exec --name ops node1 -- ipvsadm -Sn | grep -e '-a -t 198.18.0.100:8080 -r 198.18.0.11:8080')
    # Then node5 too: every real server down, the sorry page still answers.
    lvslab lab exec --name ops node5 -- pkill -x nginx
    sleep 2
    all_down=$(lvslab lab exec --name ops client -- curl -s -m 2 http://198.18.0.100/ 2>/dev/null | head -n 1)
    case $all_down in *sorry*) ;; *) page="with every real server down the VIP answered: $all_down" ;; esac
    lv_json /tmp/back.json up
    case $page in
        *sorry*)
            if [ $rc = 0 ]; then verdict services-sorry PASS "node2 and node3 stopped, node5 up (it answers \"$node5\"): quorum 2 lost, after ${waited} s the VIP answered \"$(echo "$page" | head -n 1 | cut -c 1-90)\"; node5 stopped too: the same page; up: $(evidence /tmp/back.json 'http via VIP')"
            else verdict services-sorry FAIL "the sorry page answered; up after it: exit $rc: $(why /tmp/back.json)"; fi ;;
        *) verdict services-sorry FAIL "no sorry page (within 40 s with 2 of 3 real servers down and quorum 2, then with all 3): $(echo "$page" | head -c 200)" ;;
    esac
    case "$sorry8080 | $sorry8080_entry" in
        *sorry*"-w 1") verdict services-sorry-inhibit PASS "8080 with both its real servers down answered \"$(echo "$sorry8080" | cut -c 1-60)\" ($sorry8080_entry); back at weight 0 after up: $(evidence /tmp/back.json 'ipvs table on node1' | grep -o 'the sorry server 198.18.0.11:8080 stands by[^)]*')" ;;
        *) verdict services-sorry-inhibit FAIL "8080 answered \"$sorry8080\", its sorry server's entry: $sorry8080_entry" ;;
    esac
    if [ "$inhibited" = 2 ]; then verdict services-inhibit-on-failure PASS "8080 kept node2 and node3 at weight 0 while their checks failed: $(echo "$web_table" | tr '\n' ';')"
    else verdict services-inhibit-on-failure FAIL "8080's entries at weight 0: $inhibited of 2 after 20 s: $(echo "$web_table" | tr '\n' ';')"; fi
    lv_json /tmp/svc-down.json down
    left=$(failed_probes /tmp/svc-down.json)
    settings="node1: $(vs node1), node4: $(vs node4)"
    if [ $rc = 0 ] && [ "$settings" = "node1: 0 0 , node4: 0 0 " ]; then verdict services-down PASS "$(evidence /tmp/svc-down.json 'director node4'); IPVS settings back: $settings"
    else verdict services-down FAIL "exit $rc: $left; IPVS settings: $settings"; fi
    # By hand (the seed's section 7): the same services and the mark on the first director.
    lv_json /tmp/svc-manual.json up --mode manual
    if [ $rc = 0 ]; then verdict services-manual PASS "$(evidence /tmp/svc-manual.json 'ipvs table on node1')"
    else verdict services-manual FAIL "exit $rc: $(why /tmp/svc-manual.json)"; fi
    lvslab down >/dev/null 2>&1
fi
lvslab lab down --name ops >/dev/null 2>&1

echo "scenario-lvslab: $failures failed"
[ "$failures" = 0 ]
