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
    // ip's own status first: a device that does not exist fails the query (a pipe would end
    // with awk's 0).
    format!(
        "a=$(ip -o addr show dev {d}) || exit 1; [ -n \"$a\" ] || exit 0; printf '%s\\n' \"$a\" | awk '{{l=\"\"; for(i=5;i<=NF;i++) if($i ~ /\\\\$/){{l=substr($i,1,length($i)-1); break}}; print $4, l}}'"
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

    fn on(device: &str, c: &str) -> AddressHolder {
        AddressHolder {
            device: device.to_string(),
            cidr: cidr(c),
        }
    }

    /// Captured with `ip` (iproute2 6.1) in a network namespace: lo with the VIP as lo:3, eth0
    /// (a veth) with its address and the VIP as eth0:3, eth1 down without addresses.
    #[test]
    fn the_addresses_of_a_device() {
        let labelled = |c: &str, l: Option<&str>| DeviceAddress {
            cidr: cidr(c),
            label: l.map(str::to_string),
        };
        let table = [
            (
                "127.0.0.1/8 lo\n198.18.0.100/32 lo:3\n::1/128 \n",
                vec![
                    labelled("127.0.0.1/8", Some("lo")),
                    labelled("198.18.0.100/32", Some("lo:3")),
                    labelled("::1/128", None),
                ],
            ),
            (
                "198.18.0.11/24 eth0\n198.18.0.100/24 eth0:3\nfe80::7c6f:31ff:fe81:1981/64 \n",
                vec![
                    labelled("198.18.0.11/24", Some("eth0")),
                    labelled("198.18.0.100/24", Some("eth0:3")),
                    labelled("fe80::7c6f:31ff:fe81:1981/64", None),
                ],
            ),
            // A device without addresses (eth1); a missing one prints nothing either.
            ("", vec![]),
        ];
        for (output, want) in table {
            assert_eq!(address_list("eth0").parse(output), Ok(want), "{output:?}");
        }
        assert!(address_list("eth0").parse("scope global\n").is_err());
    }

    #[test]
    fn the_holders_of_an_address() {
        let table = [
            // A DR director's VIP on eth0:3 while a real server's copy sits on its lo.
            (
                "lo 198.18.0.100/32\neth0 198.18.0.100/24\n",
                vec![on("lo", "198.18.0.100/32"), on("eth0", "198.18.0.100/24")],
            ),
            ("eth0 198.18.0.11/24\n", vec![on("eth0", "198.18.0.11/24")]),
            ("lo ::1/128\n", vec![on("lo", "::1/128")]),
            ("", vec![]),
        ];
        for (output, want) in table {
            assert_eq!(
                address_holders("198.18.0.100").parse(output),
                Ok(want),
                "{output:?}"
            );
        }
        assert!(address_holders("x").parse("eth0\n").is_err());
        assert_eq!(
            on("eth0", "198.18.0.100/24").to_string(),
            "eth0 198.18.0.100/24"
        );
    }

    /// Captured in a network namespace (no ipip module: no tunl0), with a DR real server's ARP
    /// settings, then without them, its VIP and its default route.
    #[test]
    fn a_real_server_s_settings() {
        let table = [
            // DR: ARP settings on all and eth0, the VIP on lo; a default route.
            (
                "1 1 2 2 \n1 -\nroute default via 198.18.0.253 dev eth0 \ntunl0 down\nlo 198.18.0.100/32\n",
                RealServerState {
                    arp_ignore: 1,
                    arp_announce: 2,
                    rp_filter: vec!["1".into(), "-".into()],
                    default_route: "via 198.18.0.253 dev eth0".into(),
                    tunl0_up: false,
                    holders: vec![on("lo", "198.18.0.100/32")],
                },
            ),
            // Untouched, no default route, no VIP; the setting of eth0 alone would do.
            (
                "0 1 0 2 \n0 -\nroute none\ntunl0 down\n",
                RealServerState {
                    arp_ignore: 1,
                    arp_announce: 2,
                    rp_filter: vec!["0".into(), "-".into()],
                    default_route: "none".into(),
                    tunl0_up: false,
                    holders: vec![],
                },
            ),
            // TUN (written in the format above: this machine has no ipip module): tunl0 up,
            // rp_filter off, the VIP on tunl0.
            (
                "1 0 2 0 \n0 0\nroute default via 198.18.0.254 dev eth0 \ntunl0 up\ntunl0 198.18.0.100/32\n",
                RealServerState {
                    arp_ignore: 1,
                    arp_announce: 2,
                    rp_filter: vec!["0".into(), "0".into()],
                    default_route: "via 198.18.0.254 dev eth0".into(),
                    tunl0_up: true,
                    holders: vec![on("tunl0", "198.18.0.100/32")],
                },
            ),
            // An interface that does not exist: its settings are missing (cat's error goes to
            // stderr), so all's alone do not count.
            (
                "1 2 \n1 -\nroute default via 198.18.0.253 dev eth0 \ntunl0 down\nlo 198.18.0.100/32\n",
                RealServerState {
                    arp_ignore: 0,
                    arp_announce: 0,
                    rp_filter: vec!["1".into(), "-".into()],
                    default_route: "via 198.18.0.253 dev eth0".into(),
                    tunl0_up: false,
                    holders: vec![on("lo", "198.18.0.100/32")],
                },
            ),
        ];
        for (output, want) in table {
            assert_eq!(
                real_server_state("eth0", "198.18.0.100").parse(output),
                Ok(want),
                "{output:?}"
            );
        }
        assert!(
            real_server_state("eth0", "198.18.0.100")
                .parse("1 1 2 2 \n")
                .is_err()
        );
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
        // A device that does not exist fails the query (the address module says so).
        let (rc, _) = sh(address_list("lvslab-none0").line());
        assert_ne!(rc, 0);
    }
}
