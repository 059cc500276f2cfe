//! Addresses: those on a device, added and removed; who holds an address; a real server's ARP
//! settings and where it holds the VIP.

use super::{argv, quote};
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
