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
