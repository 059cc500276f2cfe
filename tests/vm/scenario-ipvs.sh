#!/bin/sh
# VM-tier scenario: proves real IPVS in the guest, independent of lvslab's engine.
# Builds a mini namespace lab with plain `ip` commands: node1 the director, node2 and node3 real
# servers in DR mode (arp_ignore/arp_announce, VIP /32 on lo, nginx serving the node's name), a
# client; all on one bridge in 198.18.0.0/24. Then an IPVS service (rr, -g) on the VIP, ten
# requests from the client, and checks. Prints `VERDICT <name> PASS|FAIL <evidence>` lines and
# exits 0 only when every verdict passed.
#
# Runs as root inside the VM tier's guest (lvslab lab vm-run tests/vm/scenario-ipvs.sh).
set -u

NET=198.18.0
VIP=$NET.100
BRIDGE=lvsbr0
REQUESTS=10
LAB=/tmp/lab
failures=0

# Functions use `local` (dash and bash have it): the loops below reuse names like `node`.
verdict() { # name PASS|FAIL evidence...
    local name=$1 result=$2
    shift 2
    echo "VERDICT $name $result $*"
    [ "$result" = PASS ] || failures=$((failures + 1))
}

in_node() { # node command...
    local netns=$1
    shift
    ip netns exec "$netns" "$@"
}

# Polls a command (quietly) up to N times, 0.1 s apart.
wait_for() { # tries command...
    local tries=$1
    shift
    while [ "$tries" -gt 0 ]; do
        "$@" >/dev/null 2>&1 && return 0
        tries=$((tries - 1))
        sleep 0.1
    done
    return 1
}

dump_state() {
    echo "--- state for debugging"
    in_node node1 ipvsadm -Ln 2>&1
    for node in node1 node2 node3 client; do
        echo "--- $node"
        in_node "$node" ip -br addr 2>&1
    done
}

# --- the IPVS kernel side
if [ -e /proc/net/ip_vs ] && version=$(ipvsadm -Ln 2>&1 | head -n 1); then
    verdict ipvs-kernel PASS "$(uname -r): $version"
else
    verdict ipvs-kernel FAIL "$(uname -r): no /proc/net/ip_vs or ipvsadm fails: $(ipvsadm -Ln 2>&1 | head -n 1)"
    exit 1
fi

# --- the mini lab: one bridge, four namespaces
mkdir -p "$LAB"
ip link add "$BRIDGE" type bridge
ip addr add "$NET.1/24" dev "$BRIDGE"
ip link set "$BRIDGE" up
add_node() { # name host-number
    ip netns add "$1"
    ip link add "v-$1" type veth peer name eth0 netns "$1"
    ip link set "v-$1" master "$BRIDGE" up
    in_node "$1" ip link set lo up
    in_node "$1" ip addr add "$NET.$2/24" dev eth0
    in_node "$1" ip link set eth0 up
}
add_node node1 11
add_node node2 12
add_node node3 13
add_node client 20

# Director: the VIP on its interface, as the seed's eth0:0 alias.
in_node node1 ip addr add "$VIP/32" dev eth0 label eth0:0

# Real servers: answer ARP only for addresses of the asking interface, announce with the best
# local source, hold the VIP on lo; nginx serves the node's name on every address.
for node in node2 node3; do
    in_node "$node" sysctl -q -w net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2 \
        net.ipv4.conf.eth0.arp_ignore=1 net.ipv4.conf.eth0.arp_announce=2
    in_node "$node" ip addr add "$VIP/32" dev lo
    mkdir -p "$LAB/$node/www"
    echo "$node" >"$LAB/$node/www/index.html"
    cat >"$LAB/$node/nginx.conf" <<EOF
pid $LAB/$node/nginx.pid;
error_log $LAB/$node/error.log;
events {}
http {
    access_log off;
    client_body_temp_path $LAB/$node/body;
    proxy_temp_path $LAB/$node/proxy;
    server {
        listen 80;
        root $LAB/$node/www;
    }
}
EOF
    in_node "$node" nginx -c "$LAB/$node/nginx.conf" || echo "nginx on $node failed: $(cat "$LAB/$node/error.log")"
done

# Each real server answers with its own page on its own address.
pages=""
pages_ok=true
for node in node2 node3; do
    case $node in node2) addr=$NET.12 ;; node3) addr=$NET.13 ;; esac
    wait_for 50 in_node client curl -fsS --max-time 2 "http://$addr/"
    page=$(in_node client curl -fsS --max-time 2 "http://$addr/" 2>&1)
    pages="$pages $node@$addr=$page"
    [ "$page" = "$node" ] || pages_ok=false
done
if $pages_ok; then verdict realserver-pages PASS "$pages"; else verdict realserver-pages FAIL "$pages"; fi

# Real servers' DR settings as the kernel applies them (the max of all and eth0).
settings=""
settings_ok=true
for node in node2 node3; do
    ignore=$(in_node "$node" sysctl -n net.ipv4.conf.all.arp_ignore net.ipv4.conf.eth0.arp_ignore | sort -n | tail -n 1)
    announce=$(in_node "$node" sysctl -n net.ipv4.conf.all.arp_announce net.ipv4.conf.eth0.arp_announce | sort -n | tail -n 1)
    lo_vip=$(in_node "$node" ip -o -4 addr show dev lo | grep -c " $VIP/32 ")
    settings="$settings $node:arp_ignore=$ignore,arp_announce=$announce,lo_vip=$lo_vip"
    [ "$ignore" = 1 ] && [ "$announce" = 2 ] && [ "$lo_vip" = 1 ] || settings_ok=false
done
if $settings_ok; then verdict realserver-dr-settings PASS "$settings"; else verdict realserver-dr-settings FAIL "$settings"; fi

# --- IPVS: the virtual service on the director, both real servers in DR mode
in_node node1 ipvsadm -A -t "$VIP:80" -s rr
in_node node1 ipvsadm -a -t "$VIP:80" -r "$NET.12:80" -g -w 1
in_node node1 ipvsadm -a -t "$VIP:80" -r "$NET.13:80" -g -w 1
table=$(in_node node1 ipvsadm -Ln)
service=$(echo "$table" | grep -c "^TCP  $VIP:80 rr")
routes=$(echo "$table" | grep -cE -- "-> $NET\.1[23]:80 +Route +1 ")
if [ "$service" = 1 ] && [ "$routes" = 2 ]; then
    verdict ipvs-table PASS "TCP $VIP:80 rr with $routes real servers, Route (DR), weight 1"
else
    verdict ipvs-table FAIL "$(echo "$table" | tr '\n' ';')"
fi

# Exactly one host answers ARP for the VIP: the director.
director_mac=$(in_node node1 cat /sys/class/net/eth0/address)
macs=$(in_node client arping -c 2 -w 3 -I eth0 "$VIP" 2>&1 | sed -n 's/.*Unicast reply.*\[\(.*\)\].*/\1/p' | tr 'A-F' 'a-f' | sort -u)
if [ "$macs" = "$director_mac" ]; then
    verdict vip-single-arp-holder PASS "only node1 ($director_mac) answers ARP for $VIP"
else
    verdict vip-single-arp-holder FAIL "ARP replies for $VIP from: $(echo "$macs" | tr '\n' ' ') (node1 is $director_mac)"
fi

# --- traffic: ten requests from the client through the VIP, round robin
sequence=""
i=0
while [ "$i" -lt "$REQUESTS" ]; do
    answer=$(in_node client curl -fsS --max-time 3 "http://$VIP/" 2>/dev/null || echo error)
    sequence="$sequence $answer"
    i=$((i + 1))
done
sequence=${sequence# }
count() { echo "$sequence" | tr ' ' '\n' | grep -cx "$1"; }
node2=$(count node2)
node3=$(count node3)
errors=$(count error)
alternating=true
previous=""
for answer in $sequence; do
    [ "$answer" = "$previous" ] && alternating=false
    previous=$answer
done
evidence="node2=$node2 node3=$node3 errors=$errors sequence: $sequence"
if [ "$errors" = 0 ] && [ "$node2" = $((REQUESTS / 2)) ] && [ "$node3" = $((REQUESTS / 2)) ] && $alternating; then
    verdict rr-distribution PASS "$evidence"
else
    verdict rr-distribution FAIL "$evidence"
fi

# The director's connection table holds the client's connections (DR: it sees the client side).
connections=$(in_node node1 ipvsadm -Lnc | grep -c " $NET\.20:[0-9]* *$VIP:80 ")
if [ "$connections" -ge "$REQUESTS" ]; then
    verdict ipvs-connections PASS "$connections entries from $NET.20 to $VIP:80 in ipvsadm -Lnc"
else
    verdict ipvs-connections FAIL "$connections entries (expected $REQUESTS): $(in_node node1 ipvsadm -Lnc | tr '\n' ';')"
fi

[ "$failures" = 0 ] || dump_state
echo "scenario-ipvs: $failures failed"
[ "$failures" = 0 ]
