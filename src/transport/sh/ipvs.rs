//! The IPVS table through ipvsadm: saved (read as the LVS model's [`Table`]), its connections
//! and counters, changed rule by rule.

use super::{ParseError, Read, argv};
use crate::lvs::ipvs::{Connection, Rule, SyncDaemon, Table};

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

/// [`ipvs_apply`] beside keepalived, which adds and removes real servers as their checks decide
/// while lvslab changes the table: a real server added is edited if it is already there
/// (keepalived added it since the table was read), and one edited is added if it is not.
pub fn ipvs_apply_beside_keepalived(rules: &[Rule]) -> String {
    let call = |r: &Rule| {
        let mut w = vec!["ipvsadm".to_string()];
        w.extend(r.argv());
        argv(&w)
    };
    rules
        .iter()
        .map(|r| match r {
            Rule::AddServer { key, server } | Rule::EditServer { key, server } => {
                let add = Rule::AddServer {
                    key: *key,
                    server: server.clone(),
                };
                let edit = Rule::EditServer {
                    key: *key,
                    server: server.clone(),
                };
                let (first, then) = if matches!(r, Rule::AddServer { .. }) {
                    (add, edit)
                } else {
                    (edit, add)
                };
                format!("{{ {} || {}; }}", call(&first), call(&then))
            }
            other => call(other),
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

/// The connection-sync daemons that run (`ipvsadm -L --daemon`), read by the LVS model
/// ([`SyncDaemon::parse_all`]); none: an empty list.
pub fn ipvs_sync_daemons() -> Read<Vec<SyncDaemon>> {
    Read::new("ipvsadm -L --daemon", |text| {
        Ok(SyncDaemon::parse_all(text))
    })
}

/// The counters of one virtual service (`tcp 198.18.0.100:80`): prints its line of
/// `ipvsadm -L -n --stats --exact` (`TCP 198.18.0.100:80 Conns InPkts OutPkts InBytes OutBytes`).
pub fn ipvs_service_stats(protocol_flag: &str, endpoint: &str) -> Read<ServiceCounters> {
    let line = argv(&[
        "ipvsadm",
        "-L",
        "-n",
        "--stats",
        "--exact",
        protocol_flag,
        endpoint,
    ]);
    Read::new(line, |text| {
        // The service's own line (its real servers' lines follow it, each starting `->`).
        text.lines()
            .find(|l| {
                l.split_whitespace()
                    .next()
                    .is_some_and(|w| SERVICE_PROTOCOLS.contains(&w))
            })
            .and_then(ServiceCounters::parse)
            .ok_or_else(|| ParseError::new("not a virtual service's counters", text))
    })
}

/// The first word of a virtual service's line in ipvsadm's listings.
const SERVICE_PROTOCOLS: [&str; 4] = ["TCP", "UDP", "SCTP", "FWM"];

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lvs::ipvs::{Server, Service, ServiceKey};
    use crate::lvs::{Forwarding, Persistence, Protocol, SchedFlag, Scheduler};

    /// `ipvsadm -S -n` of a DR service with two real servers, a persistent NAT one with a
    /// granularity, an IPv6 TUN one, a persistent firewall mark with sh's flags and an option
    /// lvslab does not manage (one-packet scheduling, kept as written), and an rr service with
    /// a flag of no scheduler lvslab knows flags of (kept as written; ipvsadm 1.31's `-S` of
    /// Linux 6.1).
    #[test]
    fn the_saved_table() {
        let text = "-A -t 198.18.0.100:80 -s rr\n\
                    -a -t 198.18.0.100:80 -r 198.18.0.12:80 -g -w 1\n\
                    -a -t 198.18.0.100:80 -r 198.18.0.13:80 -g -w 0\n\
                    -A -u 198.18.0.100:53 -s wrr -p 300 -M 255.255.255.0\n\
                    -a -u 198.18.0.100:53 -r 198.18.1.12:53 -m -w 3\n\
                    -A -t [2001:db8::100]:80 -s wlc\n\
                    -a -t [2001:db8::100]:80 -r [2001:db8::12]:80 -i -w 1\n\
                    -A -f 7 -s sh -b sh-port,sh-fallback -p 60 -o\n\
                    -A -t 198.18.0.100:84 -s rr -b flag-1\n";
        let service = |key: ServiceKey,
                       (scheduler, flags): (Scheduler, &[SchedFlag]),
                       persistence: Option<(u32, Option<&str>)>,
                       extra: &[&str],
                       servers: &[(&str, Forwarding, u16)]| Service {
            key,
            scheduler,
            flags: flags.to_vec(),
            persistence: persistence.map(|(timeout, mask)| Persistence {
                timeout,
                granularity: mask.map(|m| m.parse().unwrap()),
            }),
            extra: extra.iter().map(|e| e.to_string()).collect(),
            real_servers: servers
                .iter()
                .map(|(e, forwarding, weight)| Server {
                    endpoint: e.parse().unwrap(),
                    forwarding: *forwarding,
                    weight: *weight,
                })
                .collect(),
        };
        let at = |protocol, endpoint: &str| ServiceKey::Address {
            protocol,
            endpoint: endpoint.parse().unwrap(),
        };
        let want = Table {
            services: vec![
                service(
                    at(Protocol::Tcp, "198.18.0.100:80"),
                    (Scheduler::Rr, &[]),
                    None,
                    &[],
                    &[
                        ("198.18.0.12:80", Forwarding::Dr, 1),
                        ("198.18.0.13:80", Forwarding::Dr, 0),
                    ],
                ),
                service(
                    at(Protocol::Udp, "198.18.0.100:53"),
                    (Scheduler::Wrr, &[]),
                    Some((300, Some("255.255.255.0"))),
                    &[],
                    &[("198.18.1.12:53", Forwarding::Nat, 3)],
                ),
                service(
                    at(Protocol::Tcp, "[2001:db8::100]:80"),
                    (Scheduler::Wlc, &[]),
                    None,
                    &[],
                    &[("[2001:db8::12]:80", Forwarding::Tun, 1)],
                ),
                service(
                    ServiceKey::Fwmark(7),
                    (Scheduler::Sh, &[SchedFlag::ShFallback, SchedFlag::ShPort]),
                    Some((60, None)),
                    &["-o"],
                    &[],
                ),
                service(
                    at(Protocol::Tcp, "198.18.0.100:84"),
                    (Scheduler::Rr, &[]),
                    None,
                    &["-b", "flag-1"],
                    &[],
                ),
            ],
        };
        assert_eq!(ipvs_save().parse(text), Ok(want));
        // An empty table (IPVS there, nothing in it) prints nothing.
        assert_eq!(ipvs_save().parse(""), Ok(Table::default()));
        // What the model cannot read is an error naming the line.
        let e = ipvs_save()
            .parse("-A -t 198.18.0.100:80 -s fastest\n")
            .unwrap_err();
        assert!(e.to_string().contains("fastest"), "{e}");
        assert!(ipvs_save().parse("garbage\n").is_err());
    }

    #[test]
    fn a_kernel_without_ipvs() {
        // ipvsadm 1.31 in a network namespace of a kernel without IPVS (exit 2, on stderr).
        let stderr = "modprobe: FATAL: Module ip_vs not found in directory /lib/modules/6.18.44\n\
                      Can't initialize ipvs: Protocol not available\n\
                      Are you sure that IP Virtual Server is built in the kernel or as module?\n";
        assert!(no_ipvs(stderr));
        assert!(!no_ipvs("Memory allocation problem\n"));
    }

    /// `ipvsadm -L -n -c`: DR entries in FIN_WAIT (the director never sees the server's FIN),
    /// NAT ones in TIME_WAIT, a persistence template (port 0), UDP, IPv6.
    #[test]
    fn the_connection_table() {
        let text = "IPVS connection entries\n\
            pro expire state       source             virtual            destination\n\
            TCP 01:50  FIN_WAIT    198.18.0.10:40000  198.18.0.100:80    198.18.0.13:80\n\
            TCP 00:58  TIME_WAIT   198.18.0.10:40002  198.18.0.100:80    198.18.1.12:80\n\
            TCP 14:59  ESTABLISHED 198.18.0.10:40004  198.18.0.100:80    198.18.0.12:80\n\
            TCP 05:59  NONE        198.18.0.10:0      198.18.0.100:80    198.18.0.12:80\n\
            UDP 04:58  UDP         198.18.0.10:53124  198.18.0.100:53    198.18.1.12:53\n\
            TCP 01:02  FIN_WAIT    [2001:db8::10]:41000 [2001:db8::100]:80 [2001:db8::12]:80\n";
        let found = ipvs_connections().parse(text).unwrap();
        let seen: Vec<(&str, &str, String, String, String)> = found
            .iter()
            .map(|c| {
                (
                    c.protocol.as_str(),
                    c.state.as_str(),
                    c.client.to_string(),
                    c.virtual_address.to_string(),
                    c.server.to_string(),
                )
            })
            .collect();
        let row =
            |p, s, c: &str, v: &str, d: &str| (p, s, c.to_string(), v.to_string(), d.to_string());
        assert_eq!(
            seen,
            [
                row(
                    "TCP",
                    "FIN_WAIT",
                    "198.18.0.10:40000",
                    "198.18.0.100:80",
                    "198.18.0.13:80"
                ),
                row(
                    "TCP",
                    "TIME_WAIT",
                    "198.18.0.10:40002",
                    "198.18.0.100:80",
                    "198.18.1.12:80"
                ),
                row(
                    "TCP",
                    "ESTABLISHED",
                    "198.18.0.10:40004",
                    "198.18.0.100:80",
                    "198.18.0.12:80"
                ),
                row(
                    "TCP",
                    "NONE",
                    "198.18.0.10:0",
                    "198.18.0.100:80",
                    "198.18.0.12:80"
                ),
                row(
                    "UDP",
                    "UDP",
                    "198.18.0.10:53124",
                    "198.18.0.100:53",
                    "198.18.1.12:53"
                ),
                row(
                    "TCP",
                    "FIN_WAIT",
                    "[2001:db8::10]:41000",
                    "[2001:db8::100]:80",
                    "[2001:db8::12]:80"
                ),
            ]
        );
        // The headers alone: no connection; nothing at all: no IPVS (stderr said why).
        assert_eq!(
            ipvs_connections().parse(
                "IPVS connection entries\npro expire state       source             virtual            destination\n"
            ),
            Ok(vec![])
        );
        assert_eq!(ipvs_connections().parse(""), Ok(vec![]));
    }

    /// `ipvsadm -L -n --stats --exact -t VIP:PORT` (ipvsadm's `%-33s %8llu ...`): the
    /// service's line, not its real servers' (captured from ipvsadm 1.31 on Debian 12).
    #[test]
    fn a_service_s_counters() {
        let table = [
            (
                "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n  -> RemoteAddress:Port\n\
                 TCP  198.18.0.100:80                   191      964        0    72576        0\n  \
                 -> 198.18.0.12:80                     95      480        0    36133        0\n  \
                 -> 198.18.0.13:80                     96      484        0    36443        0\n",
                Some(ServiceCounters {
                    conns: 191,
                    in_pkts: 964,
                    out_pkts: 0,
                    in_bytes: 72576,
                    out_bytes: 0,
                }),
            ),
            (
                "UDP  [2001:db8::100]:53                 5     4264        5  6387472     7490\n",
                Some(ServiceCounters {
                    conns: 5,
                    in_pkts: 4264,
                    out_pkts: 5,
                    in_bytes: 6387472,
                    out_bytes: 7490,
                }),
            ),
            // No such service: ipvsadm says so on stderr and prints nothing.
            ("", None),
            // The headers and a real server's line, no service line.
            (
                "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n  -> RemoteAddress:Port\n  -> 198.18.0.12:80  95  480  0  36133  0\n",
                None,
            ),
        ];
        for (output, want) in table {
            let q = ipvs_service_stats("-t", "198.18.0.100:80");
            assert_eq!(q.parse(output).ok(), want, "{output:?}");
        }
        let e = ipvs_service_stats("-t", "198.18.0.100:80")
            .parse("TCP garbage \n")
            .unwrap_err();
        assert_eq!(e.output(), "TCP garbage");
        let before = ServiceCounters {
            conns: 20,
            in_pkts: 120,
            out_pkts: 0,
            in_bytes: 7680,
            out_bytes: 0,
        };
        let after = ServiceCounters {
            conns: 40,
            in_pkts: 240,
            out_pkts: 100,
            in_bytes: 15360,
            out_bytes: 48000,
        };
        assert_eq!(
            (after.since(&before).out_pkts, after.since(&before).in_pkts),
            (100, 120)
        );
        assert_eq!(before.since(&after), ServiceCounters::default());
    }
}
