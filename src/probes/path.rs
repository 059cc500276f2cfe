//! Which way the traffic really went, from counters and logs on the hosts, never from the
//! configuration: the director's IPVS counters (OutPkts and OutBytes count only what returns
//! through it: NAT), each real server's access log (whose address it saw as the client's), and
//! with TUN each real server's `tunl0` receive counter.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::Verdict;
use crate::live::{DirectorHost, LvsHosts};
use crate::lvs::{Forwarding, Spread};
use crate::transport::ReadError;
use crate::transport::sh::{self, ServiceCounters};

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
    let query = sh::ipvs_service_stats(svc.protocol.ipvsadm_flag(), &svc.endpoint().to_string());
    let service = match director.conn.session.read(&query).await {
        Ok(counters) => counters,
        Err(ReadError::Parse(e)) => {
            return Err(format!(
                "no counters of {} on {}: {}",
                svc.endpoint(),
                director.director.name,
                e.output()
            ));
        }
        Err(e) => return Err(e.to_string()),
    };
    let mut tunl0 = BTreeMap::new();
    if svc.forwarding == Forwarding::Tun {
        let reads = hosts.real_servers.iter().map(|r| async move {
            let packets =
                crate::live::read(&r.conn.session, &sh::rx_packets(crate::lvs::names::TUNNEL))
                    .await?;
            Ok::<_, String>((r.real_server.name.clone(), packets))
        });
        for read in futures::future::join_all(reads).await {
            let (name, packets) = read?;
            tunl0.insert(name, packets);
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
    let logs = hosts.real_servers.iter().map(|r| async move {
        let log = r.real_server.web.on(&r.conn.facts.family).access_log;
        let list = crate::live::read(&r.conn.session, &sh::log_sources(log, mark))
            .await
            .unwrap_or_default();
        (r.real_server.name.clone(), list)
    });
    futures::future::join_all(logs).await.into_iter().collect()
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
    // Each real server in service must have logged some of the requests only where the
    // scheduler shares one client's requests among them (sh, mh, persistence and the like
    // send one client to one real server).
    let shared = matches!(
        hosts.lvs.service().spread(),
        Spread::Even | Spread::ByWeight | Spread::Every(_)
    );
    let none_logged = seen.values().all(Vec::is_empty);
    if none_logged {
        problems.push("no real server logged the probe's requests".to_string());
    }
    for r in &hosts.lvs.real_servers {
        let list = seen.get(&r.name).cloned().unwrap_or_default();
        if shared && !none_logged && r.weight > 0 && list.is_empty() {
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
