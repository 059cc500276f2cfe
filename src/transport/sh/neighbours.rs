//! ARP: what answers for an address, what the neighbour table holds for it, and how long the
//! kernel trusts an entry.

use serde::Serialize;

use super::{ParseError, Read, non_empty_lines, quote};

/// ARP for an address from a device; prints the MAC of every distinct answer, one per line.
pub fn arp_probe(dev: &str, ip: &str, count: u32) -> Read<Vec<String>> {
    let line = format!(
        "arping -b -I {} -c {count} -w {} {} 2>/dev/null | sed -n 's/.*\\[\\([0-9A-Fa-f:]*\\)\\].*/\\1/p' | tr A-F a-f | sort -u",
        quote(dev),
        count + 1,
        quote(ip)
    );
    Read::new(line, non_empty_lines)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Captured in a network namespace: a veth pair, one end asking for the other's address.
    #[test]
    fn the_macs_that_answer() {
        let table = [
            ("ea:c2:27:7d:82:36\n", vec!["ea:c2:27:7d:82:36"]),
            // Two hosts answer (a VIP held twice).
            (
                "52:54:00:12:00:0b\n52:54:00:12:00:0c\n",
                vec!["52:54:00:12:00:0b", "52:54:00:12:00:0c"],
            ),
            // Nobody answers.
            ("", vec![]),
        ];
        for (output, want) in table {
            assert_eq!(
                arp_probe("eth0", "198.18.0.100", 2).parse(output),
                Ok(want.into_iter().map(String::from).collect()),
                "{output:?}"
            );
        }
    }

    /// Captured in a network namespace: a reachable entry, an incomplete one, none.
    #[test]
    fn the_entry_for_an_address() {
        let table = [
            ("02:00:c6:12:00:0c\n", Some("02:00:c6:12:00:0c".to_string())),
            ("", None),
        ];
        for (output, want) in table {
            assert_eq!(
                neigh_lladdr("198.18.0.12").parse(output),
                Ok(want),
                "{output:?}"
            );
        }
    }

    /// Captured in a network namespace: the kernel's defaults; a missing device prints nothing.
    #[test]
    fn the_arp_timers() {
        assert_eq!(
            neigh_timers("eth0").parse("30000 5 3 1000 "),
            Ok(NeighTimers {
                base_reachable_ms: 30_000,
                delay_first_probe_ms: 5_000,
                ucast_solicit: 3,
                retrans_ms: 1_000,
            })
        );
        for bad in ["", " ", "30000 5 3 "] {
            assert!(neigh_timers("eth9").parse(bad).is_err(), "{bad:?}");
        }
    }
}
