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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::sh::tests::sh;

    /// Captured in a network namespace: eth0 (a veth, up), eth1 (down), lo, a missing device.
    #[test]
    fn a_device_s_state() {
        let table = [
            ("up\n", Ok(DeviceState::Up)),
            ("down\n", Ok(DeviceState::Down)),
            ("absent\n", Ok(DeviceState::Absent)),
        ];
        for (output, want) in table {
            assert_eq!(link_state("eth0").parse(output), want, "{output:?}");
        }
        for bad in ["", "UNKNOWN\n"] {
            assert!(link_state("eth0").parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_device_s_mac_and_packets() {
        assert_eq!(
            mac_address("eth0").parse("7E:6F:31:81:19:81\n"),
            Ok("7e:6f:31:81:19:81".to_string())
        );
        // A missing device: cat's error goes to stderr.
        assert_eq!(mac_address("eth9").parse(""), Ok(String::new()));
        for (output, want) in [("0\n", Ok(0)), ("1234567\n", Ok(1_234_567))] {
            assert_eq!(rx_packets("tunl0").parse(output), want, "{output:?}");
        }
        assert!(rx_packets("tunl0").parse("").is_err());
    }

    /// Captured in a network namespace with four cards besides lo (two veth pairs).
    #[test]
    fn a_host_s_traffic() {
        let table = [
            (
                "586 0 586 0 \n586 0 586 0 \ncpu  585419 0 35340 340746 1476 0 407 475 0 0\n",
                Traffic {
                    rx_bytes: 1172,
                    tx_bytes: 1172,
                    softirq: Some(407),
                },
            ),
            // lo alone: two empty lines.
            (
                "\n\ncpu  10 0 20 30 0 0 5 0 0 0\n",
                Traffic {
                    rx_bytes: 0,
                    tx_bytes: 0,
                    softirq: Some(5),
                },
            ),
            (
                "",
                Traffic {
                    rx_bytes: 0,
                    tx_bytes: 0,
                    softirq: None,
                },
            ),
        ];
        for (output, want) in table {
            assert_eq!(traffic_counters().parse(output), Ok(want), "{output:?}");
        }
    }

    #[test]
    fn the_queries_run_on_this_machine() {
        let (_, out) = sh(link_state("lo").line());
        assert_eq!(link_state("lo").parse(&out), Ok(DeviceState::Up));
        let (_, out) = sh(link_state("lvslab-none0").line());
        assert_eq!(
            link_state("lvslab-none0").parse(&out),
            Ok(DeviceState::Absent)
        );
        let (_, out) = sh(rx_packets("lvslab-none0").line());
        assert_eq!(rx_packets("lvslab-none0").parse(&out), Ok(0));
        let (_, out) = sh(traffic_counters().line());
        assert!(
            traffic_counters()
                .parse(&out)
                .is_ok_and(|t| t.softirq.is_some()),
            "{out}"
        );
    }
}
