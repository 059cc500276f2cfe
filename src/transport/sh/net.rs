//! A host's network: addresses, routes, devices and their counters, the neighbour table.

use super::{STATE_DIR, argv, detached, quote, quote_owned};
use crate::lvs::names::TUNNEL;

/// Prints one line per address on the device: `<cidr> <label>` (label may be empty);
/// exit 1 when the device does not exist.
pub fn address_list(dev: &str) -> String {
    let d = quote(dev);
    // `ip -o` glues the label to the line-continuation backslash: `... scope global lo:3\`.
    format!(
        "ip -o addr show dev {d} | awk '{{l=\"\"; for(i=5;i<=NF;i++) if($i ~ /\\\\$/){{l=substr($i,1,length($i)-1); break}}; print $4, l}}'"
    )
}

pub fn address_add(dev: &str, cidr: &str, label: Option<&str>) -> String {
    let mut words = vec!["ip", "addr", "add", cidr, "dev", dev];
    if let Some(l) = label {
        words.extend(["label", l]);
    }
    argv(&words)
}

/// Tells the neighbours that `ip` (IPv4) is now on `dev`: one gratuitous ARP, as keepalived sends
/// when it takes a VIP, so no client keeps sending to the MAC that held it before. Only where the
/// kernel does ARP on the card (not lo, not an IP-in-IP tunnel: LOOPBACK or NOARP). Best effort:
/// a host without arping keeps the address, its neighbours learn it when their entry ages.
pub fn address_announce(dev: &str, ip: &str) -> String {
    let d = quote(dev);
    format!(
        "if command -v arping >/dev/null 2>&1 && ! ip -o link show dev {d} | grep -q -e NOARP -e LOOPBACK; \
         then arping -q -U -c 1 -I {d} {} || true; fi",
        quote(ip)
    )
}

pub fn address_del(dev: &str, cidr: &str) -> String {
    argv(&["ip", "addr", "del", cidr, "dev", dev])
}

/// Which devices hold an address (any prefix). Prints `<dev> <cidr>` lines.
pub fn address_holders(ip: &str) -> String {
    format!(
        "ip -o addr show | awk -v ip={} '{{split($4,a,\"/\"); if (a[1]==ip) print $2, $4}}'",
        quote(ip)
    )
}

/// A real server's ARP settings and where it holds `vip`: first line `<all arp_ignore>
/// <IFACE arp_ignore> <all arp_announce> <IFACE arp_announce>`, then [`address_holders`]' lines.
pub fn real_server_state(iface: &str, vip: &str) -> String {
    format!(
        "for k in arp_ignore arp_announce; do printf '%s ' $(cat /proc/sys/net/ipv4/conf/all/$k) $(cat /proc/sys/net/ipv4/conf/{}/$k); done; echo; \
         printf '%s %s\\n' \"$(cat /proc/sys/net/ipv4/conf/all/rp_filter)\" \"$(cat /proc/sys/net/ipv4/conf/{TUNNEL}/rp_filter 2>/dev/null || echo -)\"; \
         r=$(ip -4 route show exact default | head -n 1); echo \"route ${{r:-none}}\"; \
         if ip -o link show dev {TUNNEL} 2>/dev/null | grep -q '[<,]UP[,>]'; then echo 'tunl0 up'; else echo 'tunl0 down'; fi; {}",
        quote(iface),
        address_holders(vip)
    )
}

fn route_orig_path(to: &str) -> String {
    format!("{STATE_DIR}/route-orig/{}", to.replace('/', "_"))
}

/// Prints two lines: the route to `to` (`default` or a network) as `ip route` shows it (or
/// `<none>`), and the route lvslab saved before its first change (or `<none>`; an empty line
/// when there was no route then).
pub fn route_query(to: &str) -> String {
    let orig = quote_owned(&route_orig_path(to));
    format!(
        "r=$(ip -4 route show exact {t} | head -n 1); echo \"${{r:-<none>}}\"; \
         if [ -f {orig} ]; then cat {orig}; echo; else echo '<none>'; fi",
        t = quote(to)
    )
}

/// Saves the route to `to` once (its `via`/`dev`, or nothing), then replaces it.
pub fn route_set(to: &str, via: &str, dev: Option<&str>) -> String {
    let orig = quote_owned(&route_orig_path(to));
    let mut words = vec!["ip", "route", "replace", to, "via", via];
    if let Some(d) = dev {
        words.extend(["dev", d]);
    }
    format!(
        "set -e; mkdir -p {STATE_DIR}/route-orig; [ -f {orig} ] || ip -4 route show exact {t} | head -n 1 | \
         awk '{{o=\"\"; for(i=1;i<=NF;i++) if($i==\"via\"||$i==\"dev\") o=o\" \"$i\" \"$(i+1); print substr(o,2)}}' > {orig}; {}",
        argv(&words),
        t = quote(to)
    )
}

/// Puts back the saved route to `to` (or removes the route, if there was none), and forgets it.
pub fn route_restore(to: &str) -> String {
    let orig = quote_owned(&route_orig_path(to));
    format!(
        "set -e; if [ -f {orig} ]; then r=$(cat {orig}); \
         if [ -n \"$r\" ]; then ip route replace {t} $r; else ip route del {t} 2>/dev/null || true; fi; \
         rm -f {orig}; fi",
        t = quote(to)
    )
}

/// Prints `up`, `down` or `absent`.
pub fn link_state(dev: &str) -> String {
    let d = quote(dev);
    format!(
        "if [ ! -e /sys/class/net/{d} ]; then echo absent; elif ip -o link show dev {d} | grep -q '[<,]UP[,>]'; then echo up; else echo down; fi"
    )
}

pub fn link_set(dev: &str, up: bool) -> String {
    argv(&[
        "ip",
        "link",
        "set",
        "dev",
        dev,
        if up { "up" } else { "down" },
    ])
}

pub fn load_module(module: &str) -> String {
    argv(&["modprobe", module])
}

/// `iface` up now.
pub fn link_up(iface: &str) -> String {
    format!("ip link set dev {} up", quote(iface))
}

/// Exit 0 when `iface` is administratively up.
pub fn link_is_up(iface: &str) -> String {
    format!("ip -o link show dev {} up | grep -q .", quote(iface))
}

/// `iface` down for `secs`, then up again; detached (the host is cut off meanwhile).
pub fn link_down_for(iface: &str, secs: u32) -> String {
    let i = quote(iface);
    detached(&format!(
        "ip link set dev {i} down; sleep {secs}; ip link set dev {i} up"
    ))
}

/// The interface's MAC address.
pub fn mac_address(iface: &str) -> String {
    format!("cat /sys/class/net/{}/address", quote(iface))
}

/// A device's received packets (`/sys/class/net/DEV/statistics/rx_packets`), or 0 without it.
pub fn rx_packets(dev: &str) -> String {
    format!(
        "cat /sys/class/net/{}/statistics/rx_packets 2>/dev/null || echo 0",
        quote(dev)
    )
}

/// A host's traffic so far: the rx bytes of every network card but lo (one line), their tx
/// bytes (another), then /proc/stat's `cpu` line (its 8th field is softirq time).
pub fn traffic_counters() -> &'static str {
    "for d in /sys/class/net/*; do [ \"${d##*/}\" = lo ] || printf '%s ' $(cat $d/statistics/rx_bytes); done; echo; \
     for d in /sys/class/net/*; do [ \"${d##*/}\" = lo ] || printf '%s ' $(cat $d/statistics/tx_bytes); done; echo; \
     head -n 1 /proc/stat"
}

/// The MAC this host's neighbour table holds for `address` (nothing printed when it has none,
/// or only a failed entry).
pub fn neigh_lladdr(address: &str) -> String {
    format!(
        "ip neigh show to {} | awk '{{for (i = 1; i < NF; i++) if ($i == \"lladdr\") print tolower($(i + 1))}}' | head -n 1",
        quote(address)
    )
}

/// The client's ARP timers on `iface`: `base_reachable_time_ms delay_first_probe_time
/// ucast_solicit retrans_time_ms`.
pub fn neigh_timers(iface: &str) -> String {
    let d = format!("/proc/sys/net/ipv4/neigh/{}", quote(iface));
    format!(
        "cat {d}/base_reachable_time_ms {d}/delay_first_probe_time {d}/ucast_solicit {d}/retrans_time_ms | tr '\\n' ' '"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::sh::tests::sh;

    #[test]
    fn the_address_list_runs_on_this_machine() {
        let (_, out) = sh(&address_list("lo"));
        assert!(out.lines().any(|l| l.starts_with("127.0.0.1/8")), "{out}");
    }
}
