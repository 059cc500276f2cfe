//! A measured load through the VIP: requests from the client (several at once), their latency,
//! and what crossed the active director meanwhile: its IPVS counters for the service and the
//! byte counters of its network cards. Used by `lvslab bench modes`.

use serde::Serialize;

use crate::live::{DirectorHost, LvsHosts};
use crate::transport::ReadError;
use crate::transport::sh::{self, ServiceCounters};

/// What one load run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Load {
    pub requests: u32,
    pub failed: u32,
    pub wall_ms: u64,
    pub requests_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// The director's IPVS counters of the service over the run.
    pub ipvs_in_bytes: u64,
    pub ipvs_out_bytes: u64,
    pub ipvs_out_pkts: u64,
    /// The director's network cards over the run (every card, loopback aside).
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    /// The director kernel's softirq time over the run, in ms (all CPUs). On a lab whose nodes
    /// share one kernel it is that kernel's, not the director's alone.
    pub softirq_ms: Option<u64>,
}

impl Load {
    pub fn per_request(&self, bytes: u64) -> f64 {
        bytes as f64 / f64::from(self.requests.max(1))
    }
}

/// The director's counters at one moment.
struct Reading {
    service: ServiceCounters,
    rx: u64,
    tx: u64,
    softirq: Option<u64>,
}

async fn read(hosts: &LvsHosts<'_>, d: &DirectorHost<'_>) -> Result<Reading, String> {
    let svc = hosts.lvs.service();
    let query = sh::ipvs_service_stats(svc.protocol.ipvsadm_flag(), &svc.endpoint().to_string());
    let service = match d.conn.session.read(&query).await {
        Ok(counters) => counters,
        Err(ReadError::Parse(_)) => {
            return Err(format!(
                "no IPVS counters of {} on {}",
                svc.endpoint(),
                d.director.name
            ));
        }
        Err(e) => return Err(e.to_string()),
    };
    let traffic = crate::live::read(&d.conn.session, &sh::traffic_counters()).await?;
    Ok(Reading {
        service,
        rx: traffic.rx_bytes,
        tx: traffic.tx_bytes,
        softirq: traffic.softirq,
    })
}

/// Sends `requests` requests through the VIP from the client, `concurrency` at once, and
/// measures them and the active director.
pub async fn measure(
    hosts: &LvsHosts<'_>,
    director: &DirectorHost<'_>,
    requests: u32,
    concurrency: u32,
) -> Result<Load, String> {
    hosts.require(&crate::live::Needs {
        client: vec![crate::programs::CURL],
        directors: vec![crate::programs::IPVSADM],
        ..Default::default()
    })?;
    let before = read(hosts, director).await?;
    let load = crate::live::read(
        &hosts.client.session,
        &sh::http_load(&hosts.url(), requests, concurrency),
    )
    .await?;
    let after = read(hosts, director).await?;
    let (mut times, failed, wall_ms) = (load.times_ms, load.failed, load.wall_ms);
    times.sort_by(f64::total_cmp);
    let pct = |p: f64| -> f64 {
        if times.is_empty() {
            return 0.0;
        }
        let i = ((p * times.len() as f64).ceil() as usize).clamp(1, times.len()) - 1;
        times[i]
    };
    let d = after.service.since(&before.service);
    let sent = u32::try_from(times.len()).unwrap_or(u32::MAX) + failed;
    // USER_HZ: the kernel reports /proc/stat in 1/100 s.
    let softirq_ms = match (before.softirq, after.softirq) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a) * 10),
        _ => None,
    };
    Ok(Load {
        requests: sent,
        failed,
        wall_ms,
        requests_per_s: if wall_ms > 0 {
            f64::from(sent) * 1000.0 / wall_ms as f64
        } else {
            0.0
        },
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        ipvs_in_bytes: d.in_bytes,
        ipvs_out_bytes: d.out_bytes,
        ipvs_out_pkts: d.out_pkts,
        rx_bytes: after.rx.saturating_sub(before.rx),
        tx_bytes: after.tx.saturating_sub(before.tx),
        softirq_ms,
    })
}
