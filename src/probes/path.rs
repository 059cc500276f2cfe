//! Which way the traffic really went, from counters and logs on the hosts, never from the
//! configuration: the director's IPVS counters (OutPkts and OutBytes count only what returns
//! through it: NAT), each real server's access log (whose address it saw as the client's), and
//! with TUN each real server's `tunl0` receive counter.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::Verdict;
use super::hosts::{DirectorHost, LvsHosts, run};
use crate::lvs::Forwarding;
use crate::transport::sh;

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
    pub fn parse(line: &str) -> Option<ServiceCounters> {
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

/// The counters a path is judged by, at one moment.
#[derive(Debug, Clone, Default)]
pub struct Counters {
    pub service: ServiceCounters,
    /// Each real server's `tunl0` received packets.
    pub tunl0: BTreeMap<String, u64>,
}

/// Reads the active director's counters of the service and (TUN) the real servers' `tunl0`.
pub async fn read(hosts: &LvsHosts<'_>, director: &DirectorHost<'_>) -> Result<Counters, String> {
    let svc = hosts.lvs.service();
    let line = run(
        &director.conn.session,
        &sh::ipvs_service_stats(svc.protocol.ipvsadm_flag(), &svc.endpoint().to_string()),
    )
    .await?;
    let service = ServiceCounters::parse(&line.stdout_str()).ok_or_else(|| {
        format!(
            "no counters of {} on {}: {}",
            svc.endpoint(),
            director.director.name,
            line.stdout_str().trim()
        )
    })?;
    let mut tunl0 = BTreeMap::new();
    if svc.forwarding == Forwarding::Tun {
        for r in &hosts.real_servers {
            let out = run(&r.conn.session, &sh::rx_packets(crate::lvs::names::TUNNEL)).await?;
            tunl0.insert(
                r.real_server.name.clone(),
                out.stdout_str().trim().parse().unwrap_or(0),
            );
        }
    }
    Ok(Counters { service, tunl0 })
}

/// Reads the counters again after `sent` requests, waiting up to 3 s for the director's to show
/// them (its totals can trail the traffic a little).
pub async fn read_after(
    hosts: &LvsHosts<'_>,
    director: &DirectorHost<'_>,
    before: &Counters,
    sent: u32,
) -> Result<Counters, String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    loop {
        let now = read(hosts, director).await?;
        let counted = now.service.since(&before.service).conns >= u64::from(sent);
        if counted || std::time::Instant::now() > deadline {
            return Ok(now);
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// The client addresses each real server logged for the requests marked `mark`.
async fn sources(hosts: &LvsHosts<'_>, mark: &str) -> BTreeMap<String, Vec<(u64, IpAddr)>> {
    let mut all = BTreeMap::new();
    for r in &hosts.real_servers {
        let log = r.real_server.web.on(&r.conn.facts.family).access_log;
        let seen = run(&r.conn.session, &sh::log_sources(log, mark))
            .await
            .map(|o| o.stdout_str())
            .unwrap_or_default();
        let list = seen
            .lines()
            .filter_map(|l| {
                let mut w = l.split_whitespace();
                Some((w.next()?.parse().ok()?, w.next()?.parse().ok()?))
            })
            .collect();
        all.insert(r.real_server.name.clone(), list);
    }
    all
}

/// The forwarding path of the probe's `sent` requests (marked `mark`), between two readings of
/// the counters. `client`: the address the requests came from, when known.
pub async fn verdict(
    hosts: &LvsHosts<'_>,
    director: &DirectorHost<'_>,
    before: &Counters,
    after: &Counters,
    sent: u32,
    mark: &str,
    client: Option<IpAddr>,
) -> Verdict {
    let fwd = hosts.lvs.service().forwarding;
    let d = after.service.since(&before.service);
    let seen = sources(hosts, mark).await;
    let directors: Vec<IpAddr> = hosts.lvs.directors.iter().map(|d| d.address).collect();
    let mut problems = Vec::new();
    let mut saw = Vec::new();
    for r in &hosts.lvs.real_servers {
        let list = seen.get(&r.name).cloned().unwrap_or_default();
        if r.weight > 0 && list.is_empty() {
            problems.push(format!("{} logged none of the probe's requests", r.name));
        }
        for (count, addr) in &list {
            saw.push(format!("{} saw {addr} x{count}", r.name));
            let right = match client {
                Some(c) => *addr == c,
                None => !directors.contains(addr),
            };
            if !right {
                problems.push(format!(
                    "{} saw {addr} as the client{}",
                    r.name,
                    if directors.contains(addr) {
                        " (a director's address: the client's was lost)"
                    } else {
                        ""
                    }
                ));
            }
        }
    }
    let sent = u64::from(sent);
    if d.in_pkts < sent {
        problems.push(format!(
            "the director counted {} packets in for {sent} requests",
            d.in_pkts
        ));
    }
    let mut evidence = format!(
        "{}: director {} counted InPkts +{} InBytes +{} OutPkts +{} OutBytes +{} for {sent} requests",
        fwd.keepalived_kind(),
        director.director.name,
        d.in_pkts,
        d.in_bytes,
        d.out_pkts,
        d.out_bytes
    );
    match fwd {
        Forwarding::Nat => {
            evidence.push_str(" (answers came back through it)");
            if d.out_pkts < sent || d.out_bytes == 0 {
                problems.push(format!(
                    "with NAT every answer returns through the director, but it counted OutPkts +{}",
                    d.out_pkts
                ));
            }
        }
        Forwarding::Dr | Forwarding::Tun => {
            evidence.push_str(" (answers went around it)");
            if d.out_pkts != 0 {
                problems.push(format!(
                    "with {} answers go straight to the client, but the director counted OutPkts +{}",
                    fwd.keepalived_kind(),
                    d.out_pkts
                ));
            }
        }
    }
    if fwd == Forwarding::Tun {
        let mut grew = Vec::new();
        for r in &hosts.lvs.real_servers {
            let delta = after
                .tunl0
                .get(&r.name)
                .unwrap_or(&0)
                .saturating_sub(*before.tunl0.get(&r.name).unwrap_or(&0));
            let served: u64 = seen
                .get(&r.name)
                .map(|l| l.iter().map(|(c, _)| *c).sum())
                .unwrap_or(0);
            grew.push(format!("{} tunl0 +{delta} packets", r.name));
            if delta < served {
                problems.push(format!(
                    "{}'s tunl0 received {delta} packets for {served} requests: they did not come through the tunnel",
                    r.name
                ));
            }
        }
        evidence.push_str(&format!("; {}", grew.join(", ")));
    }
    evidence.push_str(&format!("; {}", saw.join(", ")));
    if !problems.is_empty() {
        evidence.push_str(&format!("; {}", problems.join("; ")));
    }
    Verdict::new(
        format!("path ({})", fwd.keepalived_kind()),
        problems.is_empty(),
        evidence,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_parse_and_subtract() {
        let a = ServiceCounters::parse("TCP  198.18.0.100:80  20  120  0  7680  0").unwrap();
        let b = ServiceCounters::parse("TCP  198.18.0.100:80  40  240  100  15360  48000").unwrap();
        assert_eq!(b.since(&a).out_pkts, 100);
        assert_eq!(b.since(&a).in_pkts, 120);
        assert!(ServiceCounters::parse("").is_none());
    }
}
