//! Drills: break something on purpose while requests flow through the VIP, measure what a user
//! of the service sees, then restore and measure again. Times of VIP moves are taken on this
//! machine; the outage is measured by the client's own requests (no clock comparison between
//! hosts).

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Lab, vip_holders};
use crate::commands::Setup;
use crate::fleet::Connected;
use crate::inventory::Host;
use crate::report::Event;
use crate::transport::commands;

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

fn info(setup: &Setup, text: String) {
    setup.reporter.emit(Event::Info { text });
}

/// `action` (stop, start) on `service` of host `name`, the way its init system does it.
async fn service(conn: &Connected, name: &str, service: &str, action: &str) -> miette::Result<()> {
    conn.session
        .run(&commands::service_action(&conn.facts.init, service, action))
        .await
        .map(|_| ())
        .map_err(|e| miette::miette!("{action} {service} on {name}: {e}"))
}

async fn holds_vip(lab: &Lab<'_>, name: &str) -> bool {
    vip_holders(lab).await.iter().any(|(n, _)| n == name)
}

/// The director that holds the VIP now.
async fn active_director<'a>(lab: &Lab<'a>) -> miette::Result<(&'a Host, Arc<Connected>)> {
    let holders = vip_holders(lab).await;
    lab.directors
        .iter()
        .find(|(h, _)| holders.iter().any(|(n, _)| n == &h.name))
        .cloned()
        .ok_or_else(|| miette::miette!("no director holds the VIP: run `lvslab up` first"))
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
    fn start(lab: &Lab<'_>, max: Duration) -> Self {
        let client = lab.client.1.clone();
        let nonce = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let stop_flag = format!("/tmp/lvslab-drill-{}-{nonce}.stop", std::process::id());
        let secs = u32::try_from(max.as_secs()).unwrap_or(u32::MAX);
        let command = commands::http_traffic(&lab.url(), secs, &stop_flag);
        let runner = client.clone();
        let task = tokio::spawn(async move {
            runner
                .run_timeout(&command, max + Duration::from_secs(10))
                .await
        });
        Requests {
            client,
            client_name: lab.client.0.clone(),
            stop_flag,
            task,
        }
    }

    /// Lets requests go on for [`SETTLE`], stops them and returns what they saw.
    async fn finish(self) -> miette::Result<Traffic> {
        tokio::time::sleep(SETTLE).await;
        // A failed stop only means the loop runs to its bound.
        let _ = self.client.run(&commands::touch(&self.stop_flag)).await;
        let out = self
            .task
            .await
            .map_err(|e| miette::miette!("{e}"))?
            .map_err(|e| miette::miette!("requests from {}: {e}", self.client_name))?;
        Ok(parse_traffic(&out.stdout_str()))
    }
}

pub async fn failover(setup: &Setup) -> miette::Result<i32> {
    let lab = Lab::connect(setup).await?;
    let (master, master_conn) = active_director(&lab).await?;
    let Some((backup, _)) = lab
        .directors
        .iter()
        .filter(|(h, _)| h.name != master.name)
        .max_by_key(|(h, _)| h.vrrp.as_ref().map(|v| v.priority))
        .cloned()
    else {
        return Err(miette::miette!("a failover drill needs two directors"));
    };
    info(
        setup,
        format!(
            "drill failover: {} holds the VIP; stopping its keepalived (SIGTERM) while {} sends requests",
            master.name, lab.client.0
        ),
    );
    let wait = Duration::from_secs(10);
    let traffic = Requests::start(&lab, SETTLE * 3 + wait * 2);
    tokio::time::sleep(SETTLE).await;

    service(&master_conn, &master.name, "keepalived", "stop").await?;
    let took_over = wait_until(wait, || holds_vip(&lab, &backup.name)).await;
    info(
        setup,
        format!("  {} holds the VIP after {}", backup.name, ms(took_over)),
    );
    tokio::time::sleep(SETTLE).await;

    info(
        setup,
        format!("  restoring: starting keepalived on {}", master.name),
    );
    service(&master_conn, &master.name, "keepalived", "start").await?;
    let back = wait_until(wait, || holds_vip(&lab, &master.name)).await;
    info(
        setup,
        format!(
            "  {} holds the VIP again after {} (preemption by priority)",
            master.name,
            ms(back)
        ),
    );

    let t = traffic.finish().await?;
    let one_holder = vip_holders(&lab).await.len() == 1;
    let pass = took_over.is_some() && back.is_some() && one_holder;
    setup.reporter.emit(Event::Probe {
        probe: "failover".into(),
        pass,
        evidence: format!(
            "{} requests, {} failed, longest outage {} ms; takeover {}, fail-back {}; lab as before: {}",
            t.sent,
            t.failed,
            t.outage_ms,
            ms(took_over),
            ms(back),
            if one_holder { "yes" } else { "NO (more than one VIP holder)" }
        ),
    });
    setup.fleet.close().await;
    Ok(if pass {
        crate::exit::OK
    } else {
        crate::exit::FAILED
    })
}

/// Whether the active director's IPVS table lists `rs` (address:port).
async fn in_table(conn: &Connected, rs: &str) -> bool {
    match conn.session.run(commands::ipvs_save()).await {
        Ok(o) => o
            .stdout_str()
            .lines()
            .any(|l| l.contains(&format!("-r {rs} "))),
        Err(_) => false,
    }
}

pub async fn realserver(setup: &Setup, node: &str) -> miette::Result<i32> {
    let lab = Lab::connect(setup).await?;
    let Some((host, conn)): Option<(&Host, Arc<Connected>)> = lab
        .real_servers
        .iter()
        .find(|(h, _)| h.name == node)
        .cloned()
    else {
        return Err(miette::miette!(
            "`{node}` is not a real server of the inventory"
        ));
    };
    let (director, dconn) = active_director(&lab).await?;
    if !dconn.facts.has_ipvs() {
        return Err(miette::miette!(
            "{} has no IPVS in its kernel: this drill needs it (`lvslab lab up --vm` on a lab)",
            director.name
        ));
    }
    let rs = crate::modules::endpoint_of(&host.address.to_string(), lab.lvs.port);
    let vars = setup.inventory.host_vars(host);
    let web = match vars.get("web_server").and_then(|v| v.as_str()) {
        Some("nginx") => "nginx",
        _ if conn.facts.family == "debian" => "apache2",
        _ => "httpd",
    };
    info(
        setup,
        format!(
            "drill realserver: stopping {web} on {node} while {} sends requests",
            lab.client.0
        ),
    );
    // Long enough for keepalived's health check to notice either change.
    let hc = &lab.lvs.health_check;
    let limit = Duration::from_secs(
        u64::from(
            hc.delay_loop
                + hc.connect_timeout
                + hc.retry * (hc.delay_before_retry + hc.connect_timeout),
        ) + 5,
    );
    let traffic = Requests::start(&lab, SETTLE * 2 + limit * 2);
    tokio::time::sleep(SETTLE).await;

    service(&conn, node, web, "stop").await?;
    let dropped = wait_until(limit, || async { !in_table(&dconn, &rs).await }).await;
    info(
        setup,
        format!(
            "  {} dropped {rs} from its table after {}",
            director.name,
            ms(dropped)
        ),
    );

    service(&conn, node, web, "start").await?;
    let back = wait_until(limit, || async { in_table(&dconn, &rs).await }).await;
    info(
        setup,
        format!("  {rs} back in the table after {}", ms(back)),
    );
    let t = traffic.finish().await.unwrap_or_default();
    let pass = dropped.is_some() && back.is_some();
    setup.reporter.emit(Event::Probe {
        probe: format!("realserver {node}"),
        pass,
        evidence: format!(
            "{} requests, {} failed; dropped after {}, back after {}",
            t.sent,
            t.failed,
            ms(dropped),
            ms(back)
        ),
    });
    setup.fleet.close().await;
    Ok(if pass {
        crate::exit::OK
    } else {
        crate::exit::FAILED
    })
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
