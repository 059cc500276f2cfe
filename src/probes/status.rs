//! `status`: a compact view of the load balancer: who holds the VIP, the VRRP states, each
//! director's IPVS table with its counters.

use crate::live::{LvsHosts, run};
use crate::transport::sh;

/// The status text.
pub async fn status(hosts: &LvsHosts<'_>) -> String {
    let holders = hosts.vip_holders().await;
    // What could not be asked is unknown, not "none".
    let unknown = if hosts.unreachable.is_empty() {
        String::new()
    } else {
        format!(
            " (not known for {}: unreachable)",
            hosts.unreachable.join(", ")
        )
    };
    let mut text = format!(
        "VIP {}: {}{unknown}\n",
        hosts.vip(),
        if holders.is_empty() {
            "held by none of the hosts that answered".to_string()
        } else {
            holders
                .iter()
                .map(|(n, d)| format!("{n} ({d})"))
                .collect::<Vec<_>>()
                .join(", ")
        }
    );
    text.push_str("VRRP, as keepalived says:\n");
    for (n, r) in hosts.director_readings(None).await {
        text.push_str(&format!("  {n:<10} {}\n", r.words()));
    }
    for d in &hosts.directors {
        if !d.conn.facts.has_ipvs() {
            text.push_str(&format!("{}: no IPVS in this kernel\n", d.director.name));
            continue;
        }
        let t = run(&d.conn.session, sh::ipvs_list_stats())
            .await
            .map(|o| o.stdout_str())
            .unwrap_or_else(|e| e);
        text.push_str(&format!("{}:\n{}", d.director.name, t));
    }
    text
}
