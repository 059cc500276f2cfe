//! ARP: what answers for an address, what the neighbour table holds for it, and how long the
//! kernel trusts an entry.

use serde::Serialize;

use super::{ParseError, Read, quote};

/// ARP for an address from a device; prints the MAC of every distinct answer, one per line.
pub fn arp_probe(dev: &str, ip: &str, count: u32) -> Read<Vec<String>> {
    let line = format!(
        "arping -b -I {} -c {count} -w {} {} 2>/dev/null | sed -n 's/.*\\[\\([0-9A-Fa-f:]*\\)\\].*/\\1/p' | tr A-F a-f | sort -u",
        quote(dev),
        count + 1,
        quote(ip)
    );
    Read::new(line, |text| {
        Ok(text
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect())
    })
}

/// The MAC this host's neighbour table holds for `address`, in lower case (nothing printed when
/// it has none, or only a failed entry: `None`).
pub fn neigh_lladdr(address: &str) -> Read<Option<String>> {
    Read::new(neigh_lladdr_line(address), |text| {
        let mac = text.trim();
        Ok((!mac.is_empty()).then(|| mac.to_string()))
    })
}

/// The line of [`neigh_lladdr`], for loops that print it.
pub(super) fn neigh_lladdr_line(address: &str) -> String {
    format!(
        "ip neigh show to {} | awk '{{for (i = 1; i < NF; i++) if ($i == \"lladdr\") print tolower($(i + 1))}}' | head -n 1",
        quote(address)
    )
}

/// The ARP timers of `iface`: prints `base_reachable_time_ms delay_first_probe_time
/// ucast_solicit retrans_time_ms` on one line.
pub fn neigh_timers(iface: &str) -> Read<NeighTimers> {
    let d = format!("/proc/sys/net/ipv4/neigh/{}", quote(iface));
    let line = format!(
        "cat {d}/base_reachable_time_ms {d}/delay_first_probe_time {d}/ucast_solicit {d}/retrans_time_ms | tr '\\n' ' '"
    );
    Read::new(line, parse_neigh_timers)
}

/// A host's neighbour settings (ms): how long it trusts an ARP entry before it asks again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct NeighTimers {
    pub base_reachable_ms: u64,
    pub delay_first_probe_ms: u64,
    pub ucast_solicit: u64,
    pub retrans_ms: u64,
}

fn parse_neigh_timers(text: &str) -> Result<NeighTimers, ParseError> {
    let n: Vec<u64> = text
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    match n.as_slice() {
        [reachable, delay, ucast, retrans, ..] => Ok(NeighTimers {
            base_reachable_ms: *reachable,
            delay_first_probe_ms: delay * 1000,
            ucast_solicit: *ucast,
            retrans_ms: *retrans,
        }),
        _ => Err(ParseError::new("not the 4 ARP timers", text)),
    }
}
