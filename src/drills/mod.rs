//! Drills: break something on purpose while requests flow through the VIP, measure what a user
//! of the service sees, then restore and measure again. Times of VIP moves are taken on this
//! machine; the outage is measured by the client's own requests (no clock comparison between
//! hosts). Ctrl-C during a drill restores what the drill stopped before it returns.

use std::time::{Duration, Instant};

use crate::cancel::Cancel;
use crate::fleet::Connected;
use crate::probes::hosts::{DirectorHost, LvsHosts};
use crate::probes::{Findings, Verdict};
use crate::report::{Event, Reporter};
use crate::transport::sh;

/// How requests went during a drill, from the client's lines `<ms> <code> <who>`.
#[derive(Debug, Default, PartialEq)]
pub struct Traffic {
    pub sent: u32,
    pub failed: u32,
    /// Longest stretch from a failed request to the next success, in ms.
    pub outage_ms: u64,
    /// Who answered, in order of first answer.
    pub answered_by: Vec<String>,
}

pub fn parse_traffic(text: &str) -> Traffic {
    let mut t = Traffic::default();
    let mut first_fail: Option<u64> = None;
    for line in text.lines() {
        let mut w = line.split_whitespace();
        let (Some(ms), Some(code)) = (w.next().and_then(|m| m.parse::<u64>().ok()), w.next())
        else {
            continue;
        };
        t.sent += 1;
        if code == "200" {
            if let Some(f) = first_fail.take() {
                t.outage_ms = t.outage_ms.max(ms.saturating_sub(f));
            }
            if let Some(who) = w.next()
                && !t.answered_by.iter().any(|a| a == who)
            {
                t.answered_by.push(who.to_string());
            }
        } else {
            t.failed += 1;
            first_fail.get_or_insert(ms);
        }
    }
    if let (Some(f), Some(last)) = (
        first_fail,
        text.lines()
            .last()
            .and_then(|l| l.split_whitespace().next())
            .and_then(|m| m.parse::<u64>().ok()),
    ) {
        // Still failing at the end: the outage lasted at least until then.
        t.outage_ms = t.outage_ms.max(last.saturating_sub(f));
    }
    t
}

async fn wait_until<F, Fut>(limit: Duration, mut probe: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < limit {
        if probe().await {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

fn ms(d: Option<Duration>) -> String {
    d.map_or_else(
        || "did not happen within the wait".into(),
        |d| format!("{} ms", d.as_millis()),
    )
}

/// What a drill works with.
pub struct Drill<'a, 'h> {
    pub hosts: &'a LvsHosts<'h>,
    pub reporter: &'a Reporter,
    pub cancel: &'a Cancel,
}

/// How a drill ended.
pub struct DrillOutcome {
    pub findings: Findings,
}

impl Drill<'_, '_> {
    fn info(&self, text: String) {
        self.reporter.emit(Event::Info { text });
    }

    /// Whether director `d` holds `address` on any device.
    async fn holds(&self, d: &DirectorHost<'_>, address: &str) -> bool {
        d.conn
            .session
            .run(&sh::address_holders(address))
            .await
            .is_ok_and(|o| !o.stdout_str().trim().is_empty())
    }

    async fn holds_vip(&self, name: &str) -> bool {
        self.hosts
            .vip_holders()
            .await
            .iter()
            .any(|(n, _)| n == name)
    }

    fn done(&self, verdict: Verdict, interrupted: bool) -> DrillOutcome {
        let mut findings = Findings {
            unreachable: self.hosts.unreachable.clone(),
            interrupted,
            ..Findings::default()
        };
        findings.push(self.reporter, verdict);
        DrillOutcome { findings }
    }
}

/// `action` (stop, start) on `service` of host `name`, the way its init system does it.
async fn service(conn: &Connected, name: &str, service: &str, action: &str) -> Result<(), String> {
    let out = conn
        .session
        .run(&sh::service_action(&conn.facts.init, service, action))
        .await
        .map_err(|e| format!("{action} {service} on {name}: {e}"))?;
    if out.success() {
        Ok(())
    } else {
        Err(format!(
            "{action} {service} on {name}: {} {}",
            out.describe_status(),
            out.stderr_str().trim()
        ))
    }
}

/// How long requests go on after the drill's last change, to show the service settled.
const SETTLE: Duration = Duration::from_secs(2);

/// The client's requests through the VIP, running in the background for the whole drill.
struct Requests {
    client: crate::transport::Session,
    client_name: String,
    stop_flag: String,
    task: tokio::task::JoinHandle<
        Result<crate::transport::ExecOutput, crate::transport::TransportError>,
    >,
}

impl Requests {
    /// Starts requests from the client; they end when [`Requests::finish`] is called, or after
    /// `max` (a drill that hangs does not leave them running).
    fn start(hosts: &LvsHosts<'_>, max: Duration) -> Self {
        let client = hosts.client.session.clone();
        let nonce = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let stop_flag = format!("/tmp/lvslab-drill-{}-{nonce}.stop", std::process::id());
        let secs = u32::try_from(max.as_secs()).unwrap_or(u32::MAX);
        let command = sh::http_traffic(&hosts.url(), secs, &stop_flag);
        let runner = client.clone();
        let task = tokio::spawn(async move {
            runner
                .run_timeout(&command, max + Duration::from_secs(10))
                .await
        });
        Requests {
            client,
            client_name: hosts.client.name.clone(),
            stop_flag,
            task,
        }
    }

    /// Lets requests go on for [`SETTLE`], stops them and returns what they saw.
    async fn finish(self) -> Result<Traffic, String> {
        tokio::time::sleep(SETTLE).await;
        self.stop().await
    }

    /// Stops the requests now and returns what they saw.
    async fn stop(self) -> Result<Traffic, String> {
        // A failed stop only means the loop runs to its bound.
        let _ = self.client.run(&sh::touch(&self.stop_flag)).await;
        let out = self
            .task
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("requests from {}: {e}", self.client_name))?;
        Ok(parse_traffic(&out.stdout_str()))
    }
}

/// `drill failover`: stop keepalived on the MASTER, measure until the BACKUP serves, start it
/// again and measure the fail-back.
pub async fn failover(d: &Drill<'_, '_>) -> Result<DrillOutcome, String> {
    let Some(master) = d.hosts.active_director().await else {
        return Err("no director holds the VIP: run `lvslab up` first".into());
    };
    let Some(backup) = d
        .hosts
        .directors
        .iter()
        .filter(|h| h.director.name != master.director.name)
        .max_by_key(|h| h.director.vrrp.as_ref().map(|v| v.priority))
        .cloned()
    else {
        return Err("a failover drill needs two directors".into());
    };
    let (m, b) = (&master.director.name, &backup.director.name);
    d.info(format!(
        "drill failover: {m} holds the VIP; stopping its keepalived (SIGTERM) while {} sends requests",
        d.hosts.client.name
    ));
    let wait = Duration::from_secs(10);
    let traffic = Requests::start(d.hosts, SETTLE * 3 + wait * 2);
    let measured = d
        .cancel
        .guard(async {
            tokio::time::sleep(SETTLE).await;
            service(&master.conn, m, "keepalived", "stop").await?;
            let took_over = wait_until(wait, || d.holds_vip(b)).await;
            d.info(format!("  {b} holds the VIP after {}", ms(took_over)));
            // NAT: the real servers' gateway must move with the VIP, or answers get lost.
            let gateway_moved = match &d.hosts.lvs.nat {
                Some(nat) if d.hosts.lvs.forwarding() == crate::lvs::Forwarding::Nat => {
                    let moved = d.holds(&backup, &nat.gateway.to_string()).await;
                    d.info(format!(
                        "  the gateway {} moved to {b} too: {}",
                        nat.gateway,
                        if moved { "yes" } else { "NO" }
                    ));
                    Some(moved)
                }
                _ => None,
            };
            tokio::time::sleep(SETTLE).await;
            Ok::<_, String>((took_over, gateway_moved))
        })
        .await;
    let (took_over, gateway_moved) = match measured {
        Some(result) => result?,
        None => {
            let _ = traffic.stop().await;
            return Ok(d.done(restore_keepalived(d, &master).await, true));
        }
    };
    d.info(format!("  restoring: starting keepalived on {m}"));
    service(&master.conn, m, "keepalived", "start").await?;
    let back = d
        .cancel
        .guard(wait_until(wait, || d.holds_vip(m)))
        .await
        .flatten();
    d.info(format!(
        "  {m} holds the VIP again after {} (preemption by priority)",
        ms(back)
    ));
    let t = if d.cancel.is_cancelled() {
        traffic.stop().await?
    } else {
        traffic.finish().await?
    };
    let one_holder = d.hosts.vip_holders().await.len() == 1;
    let pass = took_over.is_some() && back.is_some() && one_holder && gateway_moved != Some(false);
    Ok(d.done(
        Verdict::new(
            "failover",
            pass,
            format!(
                "{} requests, {} failed, longest outage {} ms; takeover {}{}, fail-back {}; lab as before: {}",
                t.sent,
                t.failed,
                t.outage_ms,
                ms(took_over),
                match gateway_moved {
                    Some(true) => " (the NAT gateway with it)",
                    Some(false) => " (the NAT gateway did NOT move)",
                    None => "",
                },
                ms(back),
                if one_holder {
                    "yes"
                } else {
                    "NO (more than one VIP holder)"
                }
            ),
        ),
        d.cancel.is_cancelled(),
    ))
}

/// After Ctrl-C: keepalived started again on the director the drill stopped it on.
async fn restore_keepalived(d: &Drill<'_, '_>, master: &DirectorHost<'_>) -> Verdict {
    let name = &master.director.name;
    d.info(format!("  interrupted: restoring keepalived on {name}"));
    match service(&master.conn, name, "keepalived", "start").await {
        Ok(()) => Verdict::new(
            "failover",
            false,
            format!("interrupted: keepalived started again on {name}; the lab is as before"),
        ),
        Err(e) => Verdict::new(
            "failover",
            false,
            format!(
                "interrupted, and keepalived could not be started again on {name} ({e}): `lvslab up` restores it"
            ),
        ),
    }
}

/// Whether the director's IPVS table lists `rs`.
async fn in_table(conn: &Connected, rs: &crate::lvs::Endpoint) -> bool {
    match conn.session.run(sh::ipvs_save()).await {
        Ok(o) => crate::lvs::ipvs::Table::parse(&o.stdout_str()).is_ok_and(|t| {
            t.services
                .iter()
                .any(|s| s.real_servers.iter().any(|r| &r.endpoint == rs))
        }),
        Err(_) => false,
    }
}

/// `drill realserver NODE`: stop the web server of a real server, measure until the director
/// drops it, start it again and measure until it is back.
pub async fn realserver(d: &Drill<'_, '_>, node: &str) -> Result<DrillOutcome, String> {
    let Some(target) = d
        .hosts
        .real_servers
        .iter()
        .find(|r| r.real_server.name == node)
        .cloned()
    else {
        return Err(format!("`{node}` is not a real server of the inventory"));
    };
    let Some(director) = d.hosts.active_director().await else {
        return Err("no director holds the VIP: run `lvslab up` first".into());
    };
    if !director.conn.facts.has_ipvs() {
        return Err(format!(
            "{} has no IPVS in its kernel: this drill needs it (`lvslab lab up --vm` on a lab)",
            director.director.name
        ));
    }
    let rs = crate::lvs::Endpoint::new(target.real_server.address, d.hosts.lvs.service().port);
    let web = target.real_server.web.on(&target.conn.facts.family).service;
    d.info(format!(
        "drill realserver: stopping {web} on {node} while {} sends requests",
        d.hosts.client.name
    ));
    // Long enough for keepalived's health check to notice either change.
    let limit =
        Duration::from_secs(u64::from(d.hosts.lvs.health_check.removal_limit_secs(false)) + 5);
    let traffic = Requests::start(d.hosts, SETTLE * 2 + limit * 2);
    let dropped = d
        .cancel
        .guard(async {
            tokio::time::sleep(SETTLE).await;
            service(&target.conn, node, web, "stop").await?;
            let dropped =
                wait_until(limit, || async { !in_table(&director.conn, &rs).await }).await;
            d.info(format!(
                "  {} dropped {rs} from its table after {}",
                director.director.name,
                ms(dropped)
            ));
            Ok::<_, String>(dropped)
        })
        .await;
    let restart = service(&target.conn, node, web, "start").await;
    let Some(dropped) = dropped else {
        let _ = traffic.stop().await;
        let evidence = match restart {
            Ok(()) => format!("interrupted: {web} started again on {node}"),
            Err(e) => format!(
                "interrupted, and {web} could not be started again ({e}): `lvslab up` restores it"
            ),
        };
        return Ok(d.done(
            Verdict::new(format!("realserver {node}"), false, evidence),
            true,
        ));
    };
    let dropped = dropped?;
    restart?;
    let back = d
        .cancel
        .guard(wait_until(limit, || async {
            in_table(&director.conn, &rs).await
        }))
        .await
        .flatten();
    d.info(format!("  {rs} back in the table after {}", ms(back)));
    let t = traffic.finish().await.unwrap_or_default();
    let pass = dropped.is_some() && back.is_some();
    Ok(d.done(
        Verdict::new(
            format!("realserver {node}"),
            pass,
            format!(
                "{} requests, {} failed; dropped after {}, back after {}",
                t.sent,
                t.failed,
                ms(dropped),
                ms(back)
            ),
        ),
        d.cancel.is_cancelled(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outage_is_the_longest_failed_stretch() {
        let t = parse_traffic(
            "1000 200 node2\n1100 200 node3\n1200 000 \n1300 000 \n1450 200 node2\n1500 000 \n1550 200 node3\n",
        );
        assert_eq!(t.sent, 7);
        assert_eq!(t.failed, 3);
        assert_eq!(t.outage_ms, 250);
        assert_eq!(t.answered_by, vec!["node2", "node3"]);
        let still_down = parse_traffic("1000 200 node2\n1100 000 \n1900 000 \n");
        assert_eq!(still_down.outage_ms, 800);
    }
}
