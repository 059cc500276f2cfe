# Shared by the lvslab scenarios of the VM tier (the test puts it before each scenario).
# Reports with `VERDICT <name> PASS|FAIL <evidence>` lines; $failures counts the FAILs.
# Each verdict and each lvslab run says when (seconds since the scenario started), so a run that
# ran out of time shows where the time went.
failures=0
started=$(date +%s)
elapsed() { echo "$(($(date +%s) - started)) s"; }
verdict() { # name PASS|FAIL evidence...
    name=$1; result=$2; shift 2
    echo "VERDICT $name $result [$(elapsed)] $*"
    [ "$result" = PASS ] || failures=$((failures + 1))
}
# On `lvslab --json ...` output: changed tasks, failed probes, a probe's verdict and evidence.
changed() { grep -c '"status":"changed"' "$1"; }
failed_probes() { grep '"event":"probe"' "$1" | grep '"pass":false' | sed 's/.*"probe":"\([^"]*\)".*"evidence":"\([^"]*\)".*/\1: \2/' | tr '\n' ';'; }
failed_tasks() { grep '"status":"failed"' "$1" | grep -o '"task":"[^"]*".*"msg":"[^"]*"' | head -n 2 | tr '\n' ';'; }
# Why a `lvslab --json` run failed: its failed probes, else its last lines (an error message).
why() { p=$(failed_probes "$1"); if [ -n "$p" ]; then echo "$p"; else tail -n 3 "$1" | tr '\n' ' '; fi; }
evidence() { grep '"event":"probe"' "$1" | grep "\"probe\":\"$2" | sed 's/.*"evidence":"\([^"]*\)".*/\1/' | head -n 1; }
lab_up() { # name real-servers [lab up options...]
    lab=$1; count=$2; shift 2
    lvslab lab up --name "$lab" --real-servers "$count" "$@" >/tmp/lab-up.log 2>&1 || { cat /tmp/lab-up.log; verdict "lab-up-$lab" FAIL "$(tail -n 3 /tmp/lab-up.log | tr "\n" " ")"; return 1; }
    tries=30
    until lvslab lab status --name "$lab" >/dev/null 2>&1 || [ "$tries" = 0 ]; do tries=$((tries - 1)); sleep 1; done
}
# Changes values of $LVSLAB_INVENTORY with `lvslab set` (a key that is not there fails it, where
# a sed would do nothing); a refused change is a failed verdict and ends the scenario.
inventory_set() { # KEY=VALUE...
    echo "STEP [$(elapsed)] lvslab set $*"
    lvslab set "$@" >/tmp/set.log 2>&1 || { cat /tmp/set.log; verdict "set-$1" FAIL "$(tr '\n' ' ' </tmp/set.log)"; exit 1; }
}
# The health check's timers short (a drill's removal and return in seconds, not half a minute).
fast_health_check() {
    inventory_set lvs.health_check.connect_timeout=1 lvs.health_check.delay_before_retry=1 \
        lvs.health_check.retry=1 lvs.health_check.delay_loop=2
}
# Runs `lvslab --json ARGS` into FILE; exit status in $rc.
# The lateness a drill forgives beyond its limit in this VM (`--margin`, 1000 ms by default):
# the CPU is emulated (no KVM) and keepalived's timers run late under the drill's load; a CI run
# measured a real server stopped with its errors lasting 4401 ms against 3000 ms + 1000 ms.
DRILL_MARGIN=2000

lv_json() { # file args...
    file=$1; shift
    echo "STEP [$(elapsed)] lvslab $*"
    # Nothing here takes 5 minutes: a run that does is ended (SIGTERM: lvslab stops cleanly) and
    # its verdict fails, instead of the VM's time limit ending every verdict after it.
    timeout 300 lvslab --json "$@" >"$file" 2>&1
    rc=$?
}

# Nodes of lab $LAB rebooted outside lvslab, all at once ($LAB_INIT: sysv, the default, a power
# cut, its init's SIGUSR1; systemd: `systemctl reboot`), then booted: what is enabled has
# started (each node marks it in /run; the mark is removed first, so a node still shutting down
# is not taken for the new boot). Every command has a time limit: a node that never comes back
# fails the verdict, not the whole run.
reboot_nodes() { # node...
    for n in "$@"; do
        echo "STEP [$(elapsed)] reboot $n"
        if [ "${LAB_INIT:-sysv}" = systemd ]; then
            timeout 20 lvslab lab exec --name "$LAB" "$n" -- sh -c 'rm -f /run/lvslab-node-booted; systemctl reboot'
        else
            timeout 20 lvslab lab exec --name "$LAB" "$n" -- sh -c "rm -f /run/lvslab-node-booted; setsid sh -c 'sleep 0.3; kill -USR1 1' </dev/null >/dev/null 2>&1 &"
        fi
    done
    for n in "$@"; do
        deadline=$(($(date +%s) + 120))
        until timeout 10 lvslab lab exec --name "$LAB" "$n" -- test -e /run/lvslab-node-booted >/dev/null 2>&1; do
            [ "$(date +%s)" -lt $deadline ] || {
                echo "STEP [$(elapsed)] $n not booted after 120 s; its log ends:"
                tail -n 15 "/var/lib/lvslab/labs/$LAB/nodes/$n/node.log" | sed 's/^/  | /'
                break
            }
            sleep 0.5
        done
    done
    echo "STEP [$(elapsed)] rebooted $*"
}

# A command on a node of lab $LAB, within 30 s.
on_node() { # node command...
    on_node_name=$1; shift
    timeout 30 lvslab lab exec --name "$LAB" "$on_node_name" -- "$@"
}
# The seed's section 7 by hand (`up --mode manual`: the alias and the ipvsadm rules), then the
# MASTER and a real server rebooted outside lvslab, at once: `lvslab verify` passes (the real
# server's VIP on lo, its ARP settings and web server back too) and node1 has RULES real
# servers again, set by lvslab-boot at boot (verdict manual-reboot).
manual_then_reboot() { # rules
    lv_json /tmp/manual.json up --mode manual
    if [ $rc = 0 ]; then
        reboot_nodes node1 node2
        lv_json /tmp/after.json verify
        rules=$(on_node node1 ipvsadm -Sn | grep -c '^-a')
        if [ $rc = 0 ] && [ "$rules" = "$1" ]; then verdict manual-reboot PASS "IPVS rules after the reboot of node1 and node2: $rules real servers; $(evidence /tmp/after.json 'http via VIP')"
        else verdict manual-reboot FAIL "exit $rc, $rules rules: $(why /tmp/after.json)"; fi
    else verdict manual-reboot FAIL "up --mode manual: exit $rc: $(why /tmp/manual.json)"; fi
}
# `lvslab down`, then the directors and a real server rebooted: no node has the VIP, an IPVS
# rule or keepalived again (verdict down-then-reboot).
down_then_reboot() { # every node...
    lv_json /tmp/down.json down
    if [ $rc = 0 ]; then
        reboot_nodes node1 node2 node4
        left=""
        for n in "$@"; do
            vip=$(on_node "$n" ip -o addr show | grep -c ' 198.18.0.100/')
            rules=$(on_node "$n" sh -c 'ipvsadm -Sn 2>/dev/null | grep -c . || true')
            ka=$(on_node "$n" sh -c 'pgrep -x keepalived >/dev/null && echo running || true')
            [ "$vip" = 0 ] && [ "$rules" = 0 ] && [ -z "$ka" ] || left="$left $n(vip=$vip rules=$rules $ka)"
        done
        if [ -z "$left" ]; then verdict down-then-reboot PASS "no VIP, no IPVS rule, no keepalived on $* after down and reboots of node1, node2, node4"
        else verdict down-then-reboot FAIL "left after down and reboots:$left"; fi
    else verdict down-then-reboot FAIL "down: exit $rc: $(why /tmp/down.json)"; fi
}
