//! ARP: what answers for an address, what the neighbour table holds for it, and how long the
//! kernel trusts an entry.

use super::quote;

/// ARP for an address from a device; prints the MAC of every distinct answer, one per line.
pub fn arp_probe(dev: &str, ip: &str, count: u32) -> String {
    format!(
        "arping -b -I {} -c {count} -w {} {} 2>/dev/null | sed -n 's/.*\\[\\([0-9A-Fa-f:]*\\)\\].*/\\1/p' | tr A-F a-f | sort -u",
        quote(dev),
        count + 1,
        quote(ip)
    )
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
