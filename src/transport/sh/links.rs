//! Network devices: up or down, their module loaded, their MAC and their counters.

use super::{ParseError, Read, argv, detached, quote};

/// Prints `up`, `down` or `absent`.
pub fn link_state(dev: &str) -> Read<DeviceState> {
    let d = quote(dev);
    let line = format!(
        "if [ ! -e /sys/class/net/{d} ]; then echo absent; elif ip -o link show dev {d} | grep -q '[<,]UP[,>]'; then echo up; else echo down; fi"
    );
    Read::new(line, parse_link_state)
}

/// A device as [`link_state`] finds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceState {
    Up,
    Down,
    Absent,
}

impl DeviceState {
    /// The word the query prints.
    pub fn word(self) -> &'static str {
        match self {
            DeviceState::Up => "up",
            DeviceState::Down => "down",
            DeviceState::Absent => "absent",
        }
    }
}

fn parse_link_state(text: &str) -> Result<DeviceState, ParseError> {
    [DeviceState::Up, DeviceState::Down, DeviceState::Absent]
        .into_iter()
        .find(|s| s.word() == text.trim())
        .ok_or_else(|| ParseError::new("not up, down or absent", text))
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

/// The interface's MAC address, in lower case (empty when it could not be read).
pub fn mac_address(iface: &str) -> Read<String> {
    Read::new(
        format!("cat /sys/class/net/{}/address", quote(iface)),
        |text| Ok(text.trim().to_lowercase()),
    )
}

/// A device's received packets (`/sys/class/net/DEV/statistics/rx_packets`), or 0 without it.
pub fn rx_packets(dev: &str) -> Read<u64> {
    let line = format!(
        "cat /sys/class/net/{}/statistics/rx_packets 2>/dev/null || echo 0",
        quote(dev)
    );
    Read::new(line, |text| {
        text.trim()
            .parse()
            .map_err(|_| ParseError::new("not a packet count", text))
    })
}

/// A host's traffic so far: the rx bytes of every network card but lo (one line), their tx
/// bytes (another), then /proc/stat's `cpu` line (its 8th field is softirq time).
pub fn traffic_counters() -> Read<Traffic> {
    Read::new(
        "for d in /sys/class/net/*; do [ \"${d##*/}\" = lo ] || printf '%s ' $(cat $d/statistics/rx_bytes); done; echo; \
         for d in /sys/class/net/*; do [ \"${d##*/}\" = lo ] || printf '%s ' $(cat $d/statistics/tx_bytes); done; echo; \
         head -n 1 /proc/stat",
        parse_traffic,
    )
}

/// What [`traffic_counters`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Traffic {
    /// Bytes received by every network card but lo.
    pub rx_bytes: u64,
    /// Bytes they sent.
    pub tx_bytes: u64,
    /// The kernel's softirq time, in 1/100 s (USER_HZ); `None` when it could not be read.
    pub softirq: Option<u64>,
}

fn parse_traffic(text: &str) -> Result<Traffic, ParseError> {
    let mut lines = text.lines();
    let sum = |line: Option<&str>| -> u64 {
        line.unwrap_or("")
            .split_whitespace()
            .filter_map(|w| w.parse::<u64>().ok())
            .sum()
    };
    let rx_bytes = sum(lines.next());
    let tx_bytes = sum(lines.next());
    let softirq = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(7))
        .and_then(|v| v.parse().ok());
    Ok(Traffic {
        rx_bytes,
        tx_bytes,
        softirq,
    })
}
