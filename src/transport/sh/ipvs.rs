//! The IPVS table through ipvsadm: saved (read as the LVS model's [`Table`]), its connections
//! and counters, changed rule by rule.

use super::{ParseError, Read, argv};
use crate::lvs::ipvs::{Connection, Rule, Table};

/// The IPVS table in `ipvsadm -S -n` form (rules), exit 2 with a message when IPVS is missing
/// (see [`no_ipvs`]). Read by the LVS model ([`Table::parse`]).
pub fn ipvs_save() -> Read<Table> {
    Read::new("ipvsadm -S -n", |text| {
        Table::parse(text).map_err(|e| ParseError::new(e, text))
    })
}

/// Whether ipvsadm's error says the kernel has no IPVS.
pub fn no_ipvs(stderr: &str) -> bool {
    stderr.contains("Protocol not available") || stderr.contains("Can't initialize ipvs")
}

/// One ipvsadm invocation per rule, stopping at the first failure.
pub fn ipvs_apply(rules: &[Rule]) -> String {
    rules
        .iter()
        .map(|r| {
            let mut w = vec!["ipvsadm".to_string()];
            w.extend(r.argv());
            argv(&w)
        })
        .collect::<Vec<_>>()
        .join(" && ")
}

/// The table with its counters, as ipvsadm shows it (for `status`, shown as it is).
pub fn ipvs_list_stats() -> &'static str {
    "ipvsadm -L -n --stats"
}

/// The connection table (`ipvsadm -L -n -c`), read by the LVS model
/// ([`Connection::parse_all`]): headers and lines it does not know are left out.
pub fn ipvs_connections() -> Read<Vec<Connection>> {
    Read::new("ipvsadm -L -n -c", |text| Ok(Connection::parse_all(text)))
}

/// The counters of one virtual service (`tcp 198.18.0.100:80`): prints its line of
/// `ipvsadm -L -n --stats --exact` (`TCP 198.18.0.100:80 Conns InPkts OutPkts InBytes OutBytes`).
pub fn ipvs_service_stats(protocol_flag: &str, endpoint: &str) -> Read<ServiceCounters> {
    let line = format!(
        "{} | sed -n 4p",
        argv(&[
            "ipvsadm",
            "-L",
            "-n",
            "--stats",
            "--exact",
            protocol_flag,
            endpoint
        ])
    );
    Read::new(line, |text| {
        ServiceCounters::parse(text)
            .ok_or_else(|| ParseError::new("not a virtual service's counters", text))
    })
}

/// A virtual service's IPVS counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServiceCounters {
    pub conns: u64,
    pub in_pkts: u64,
    pub out_pkts: u64,
    pub in_bytes: u64,
    pub out_bytes: u64,
}

impl ServiceCounters {
    /// From `TCP 198.18.0.100:80 Conns InPkts OutPkts InBytes OutBytes`.
    fn parse(line: &str) -> Option<ServiceCounters> {
        let n: Vec<u64> = line
            .split_whitespace()
            .skip(2)
            .filter_map(|w| w.parse().ok())
            .collect();
        match n.as_slice() {
            [conns, in_pkts, out_pkts, in_bytes, out_bytes, ..] => Some(ServiceCounters {
                conns: *conns,
                in_pkts: *in_pkts,
                out_pkts: *out_pkts,
                in_bytes: *in_bytes,
                out_bytes: *out_bytes,
            }),
            _ => None,
        }
    }

    /// What was counted since `before`.
    pub fn since(&self, before: &ServiceCounters) -> ServiceCounters {
        ServiceCounters {
            conns: self.conns.saturating_sub(before.conns),
            in_pkts: self.in_pkts.saturating_sub(before.in_pkts),
            out_pkts: self.out_pkts.saturating_sub(before.out_pkts),
            in_bytes: self.in_bytes.saturating_sub(before.in_bytes),
            out_bytes: self.out_bytes.saturating_sub(before.out_bytes),
        }
    }
}
