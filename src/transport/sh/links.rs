//! Network devices: up or down, their module loaded, their MAC and their counters.

use super::{argv, detached, quote};

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
