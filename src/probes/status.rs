//! `status`: a compact view of the load balancer: who holds the VIP, the VRRP states (and,
//! with `lvs.vrrp.notify`, each director's last transitions), the real servers drained, each
//! director's IPVS table with its counters.

use crate::live::{LvsHosts, read, run};
use crate::transport::sh;

/// How many of each director's last VRRP transitions status shows.
const TRANSITIONS: u32 = 5;

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
    let readings = hosts.director_readings(None).await;
    for (n, r) in &readings {
        text.push_str(&format!("  {n:<10} {}\n", r.words()));
    }
    if let Some(words) = crate::live::split_brain(&readings, crate::live::epoch_now()) {
        let follows = hosts
            .client_follows()
            .await
            .unwrap_or_else(|| "the client's ARP entry is not known".into());
        text.push_str(&format!("SPLIT BRAIN: {words}; {follows}\n"));
    }
    if hosts.lvs.vrrp.as_ref().is_some_and(|v| v.notify) {
        text.push_str(&format!(
            "Last VRRP transitions ({}, oldest first):\n",
            crate::lvs::names::NOTIFY_LOG
        ));
        let query = &sh::vrrp_transitions(TRANSITIONS);
        let logs = hosts
            .directors
            .iter()
            .map(|d| async move { (d.director.name.as_str(), read(&d.conn.session, query).await) });
        for (n, log) in futures::future::join_all(logs).await {
            let words = match log {
                Ok(t) if t.is_empty() => "none logged yet".to_string(),
                Ok(t) => t.iter().map(words).collect::<Vec<_>>().join(", "),
                Err(e) => format!("not known: {e}"),
            };
            text.push_str(&format!("  {n:<10} {words}\n"));
        }
    }
    let drained: Vec<&str> = hosts
        .lvs
        .real_servers
        .iter()
        .filter(|r| r.drained)
        .map(|r| r.name.as_str())
        .collect();
    if !drained.is_empty() {
        text.push_str(&format!(
            "Drained (the inventory's `drained: true`: weight 0, `lvslab undrain NODE` puts it back): {}\n",
            drained.join(", ")
        ));
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

/// `23:40:01 MASTER (priority 100)`: the time of day (UTC) is enough beside its neighbours.
fn words(t: &sh::Transition) -> String {
    let time =
        t.at.split_once('T')
            .map_or(t.at.as_str(), |(_, time)| time.trim_end_matches('Z'));
    let time = time.split_once('.').map_or(time, |(s, _)| s);
    match t.priority {
        Some(p) => format!("{time} {} (priority {p})", t.state),
        None => format!("{time} {}", t.state),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transition_in_words() {
        let t = |at: &str, state: &str, priority| sh::Transition {
            at: at.into(),
            state: state.into(),
            priority,
        };
        assert_eq!(
            words(&t("2026-12-06T23:40:04.871Z", "MASTER", Some(100))),
            "23:40:04 MASTER (priority 100)"
        );
        assert_eq!(
            words(&t("2026-12-06T23:41:00.002Z", "STOP", None)),
            "23:41:00 STOP"
        );
        assert_eq!(words(&t("odd", "FAULT", None)), "odd FAULT");
    }
}
