//! Addresses: those on a device, added and removed; who holds an address; a real server's ARP
//! settings and where it holds the VIP.

use super::{ParseError, Read, argv, quote};
use crate::lvs::Cidr;
use crate::lvs::names::TUNNEL;

/// The addresses on `dev`: prints one line per address, `<cidr> <label>` (the label empty when
/// there is none). A device that does not exist prints nothing, and exits 0 all the same (the
/// status is awk's; ip's complaint goes to stderr).
pub fn address_list(dev: &str) -> Read<Vec<DeviceAddress>> {
    Read::new(address_list_line(dev), parse_address_list)
}

fn address_list_line(dev: &str) -> String {
    let d = quote(dev);
    // `ip -o` glues the label to the line-continuation backslash: `... scope global lo:3\`.
    format!(
        "ip -o addr show dev {d} | awk '{{l=\"\"; for(i=5;i<=NF;i++) if($i ~ /\\\\$/){{l=substr($i,1,length($i)-1); break}}; print $4, l}}'"
    )
}

/// An address on a device, as [`address_list`] prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceAddress {
    pub cidr: Cidr,
    /// `eth0:3`, `lo:3`; the kernel gives an IPv4 address its device's name when none is set,
    /// and an IPv6 address none (`None`).
    pub label: Option<String>,
}

fn parse_address_list(text: &str) -> Result<Vec<DeviceAddress>, ParseError> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let mut words = line.split_whitespace();
            let cidr = words
                .next()
                .and_then(|c| c.parse().ok())
                .ok_or_else(|| ParseError::new(format!("no address in `{line}`"), text))?;
            Ok(DeviceAddress {
                cidr,
                label: words.next().map(str::to_string),
            })
        })
        .collect()
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
pub fn address_holders(ip: &str) -> Read<Vec<AddressHolder>> {
    Read::new(address_holders_line(ip), parse_address_holders)
}

fn address_holders_line(ip: &str) -> String {
    format!(
        "ip -o addr show | awk -v ip={} '{{split($4,a,\"/\"); if (a[1]==ip) print $2, $4}}'",
        quote(ip)
    )
}

/// A device that holds an address, as [`address_holders`] prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressHolder {
    pub device: String,
    /// The address with the prefix it has there.
    pub cidr: Cidr,
}

impl std::fmt::Display for AddressHolder {
    /// As the query prints it: `<dev> <cidr>`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.device, self.cidr)
    }
}

fn parse_address_holders(text: &str) -> Result<Vec<AddressHolder>, ParseError> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            holder(line).ok_or_else(|| {
                ParseError::new(format!("`{line}` is not `<device> <address/prefix>`"), text)
            })
        })
        .collect()
}

fn holder(line: &str) -> Option<AddressHolder> {
    let (device, cidr) = line.trim().split_once(' ')?;
    Some(AddressHolder {
        device: device.to_string(),
        cidr: cidr.trim().parse().ok()?,
    })
}

/// A real server's settings for LVS, in one round trip: its ARP settings, rp_filter, default
/// route, whether `tunl0` is up, and where it holds `vip`. Prints `<all arp_ignore> <IFACE
/// arp_ignore> <all arp_announce> <IFACE arp_announce>`, then `<all rp_filter> <tunl0
/// rp_filter or ->`, then `route <default route or none>`, then `tunl0 up` or `tunl0 down`, then
/// [`address_holders`]' lines.
pub fn real_server_state(iface: &str, vip: &str) -> Read<RealServerState> {
    let line = format!(
        "for k in arp_ignore arp_announce; do printf '%s ' $(cat /proc/sys/net/ipv4/conf/all/$k) $(cat /proc/sys/net/ipv4/conf/{}/$k); done; echo; \
         printf '%s %s\\n' \"$(cat /proc/sys/net/ipv4/conf/all/rp_filter)\" \"$(cat /proc/sys/net/ipv4/conf/{TUNNEL}/rp_filter 2>/dev/null || echo -)\"; \
         r=$(ip -4 route show exact default | head -n 1); echo \"route ${{r:-none}}\"; \
         if ip -o link show dev {TUNNEL} 2>/dev/null | grep -q '[<,]UP[,>]'; then echo 'tunl0 up'; else echo 'tunl0 down'; fi; {}",
        quote(iface),
        address_holders_line(vip)
    );
    Read::new(line, parse_real_server_state)
}

/// What [`real_server_state`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealServerState {
    /// The arp_ignore the kernel applies on the interface: the larger of `all`'s and its own (0
    /// when they could not be read, the interface missing).
    pub arp_ignore: u32,
    /// The same for arp_announce.
    pub arp_announce: u32,
    /// rp_filter of `all`, then of `tunl0` (`-` without it).
    pub rp_filter: Vec<String>,
    /// The default route as `ip route` shows it after `default` (`none` without one).
    pub default_route: String,
    pub tunl0_up: bool,
    /// Where the host holds the VIP.
    pub holders: Vec<AddressHolder>,
}

fn parse_real_server_state(text: &str) -> Result<RealServerState, ParseError> {
    let mut lines = text.lines();
    let (Some(arp), Some(rp), Some(route), Some(tunl0)) =
        (lines.next(), lines.next(), lines.next(), lines.next())
    else {
        return Err(ParseError::new(
            "fewer than the 4 lines the real server's settings print",
            text,
        ));
    };
    let numbers: Vec<u32> = arp
        .split_whitespace()
        .filter_map(|n| n.parse().ok())
        .collect();
    let (arp_ignore, arp_announce) = match numbers.as_slice() {
        [a, b, c, d] => (*a.max(b), *c.max(d)),
        _ => (0, 0),
    };
    let holders: Vec<&str> = lines.collect();
    Ok(RealServerState {
        arp_ignore,
        arp_announce,
        rp_filter: rp.split_whitespace().map(str::to_string).collect(),
        default_route: route
            .trim_start_matches("route ")
            .trim_start_matches("default ")
            .trim()
            .to_string(),
        tunl0_up: tunl0 == "tunl0 up",
        holders: parse_address_holders(&holders.join("\n"))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::sh::tests::sh;

    fn cidr(s: &str) -> Cidr {
        s.parse().unwrap()
    }

    #[test]
    fn the_address_list_runs_on_this_machine() {
        let q = address_list("lo");
        let (rc, out) = sh(q.line());
        assert_eq!(rc, 0);
        let found = q.parse(&out).unwrap();
        assert!(
            found
                .iter()
                .any(|a| a.cidr == cidr("127.0.0.1/8") && a.label.as_deref() == Some("lo")),
            "{out}"
        );
        let (rc, out) = sh(address_list("lvslab-none0").line());
        assert_eq!(
            (rc, address_list("lvslab-none0").parse(&out)),
            (0, Ok(vec![]))
        );
    }
}
