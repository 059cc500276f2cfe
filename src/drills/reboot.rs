//! `drill reboot NODE`: a node of the lab rebooted while the client's requests flow: a real
//! server, the BACKUP or the MASTER director. Nothing is converged afterwards: what comes back
//! is what the node brings back by itself (enabled services, lvslab-boot's entries), and the
//! caller runs `verify` on the lab as the reboot left it.
//!
//! - a lab node's reboot is a power cut: every process killed, the network back to what
//!   `lab up` made, the node booted again from its files; a systemd host runs `systemctl
//!   reboot`, another host `reboot`.
//! - the limits: a real server is a server that stops answering (the health check's removal
//!   with connect timeouts); the MASTER takes its VIP along (Master_Down_Interval); a BACKUP's
//!   reboot must cost no request at all.

use std::time::Duration;

use super::driver::{Fault, Underway, Undone, drive};
use super::limits::{self, Limit};
use super::realserver::serving;
use super::record::Record;
use super::watch::Probe;
use super::{Drill, DrillOutcome, NO_ACTIVE, RESTORE_WAIT, Run, SETTLE, after, holds, wait_until};
use crate::live::DirectorHost;
use crate::lvs::Endpoint;
use crate::transport::{Session, sh};

/// What the rebooted node is to the lab.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    RealServer,
    Master,
    Backup,
}

impl Role {
    fn word(self) -> &'static str {
        match self {
            Role::RealServer => "real server",
            Role::Master => "MASTER director",
            Role::Backup => "BACKUP director",
        }
    }
}

/// How long a host may take to boot and answer SSH again (a VM's or a real host's boot).
const BOOT_WAIT: Duration = Duration::from_secs(300);

struct Reboot<'a, 'h> {
    drill: &'a Drill<'a, 'h>,
    node: String,
    /// The node's connection (the reboot is asked for on it; it is gone after).
    session: Session,
    role: Role,
    probe: Probe,
    limit: Limit,
    /// The director that holds the VIP (before the reboot of a MASTER: the BACKUP's view).
    active: Option<DirectorHost<'h>>,
}

/// `drill reboot NODE`: see the module's documentation.
pub async fn reboot(d: &Drill<'_, '_>, node: &str) -> Result<DrillOutcome, String> {
    let lvs = d.hosts.lvs;
    let active = d.elected().await;
    let role = if d
        .hosts
        .real_servers
        .iter()
        .any(|r| r.real_server.name == node)
    {
        Role::RealServer
    } else if d.hosts.directors.iter().any(|h| h.director.name == node) {
        match &active {
            Some(a) if a.director.name == node => Role::Master,
            _ => Role::Backup,
        }
    } else {
        let mut names: Vec<&str> = d
            .hosts
            .directors
            .iter()
            .map(|h| h.director.name.as_str())
            .chain(
                d.hosts
                    .real_servers
                    .iter()
                    .map(|r| r.real_server.name.as_str()),
            )
            .collect();
        names.sort_unstable();
        return Err(format!(
            "`{node}` is no director or real server of the inventory (they are: {})",
            names.join(", ")
        ));
    };
    let active = active.ok_or(NO_ACTIVE)?;
    if role == Role::Master && d.hosts.directors.len() < 2 {
        return Err(format!(
            "{node} is the only director: its reboot is an outage until it is back (nothing to measure against)"
        ));
    }
    let backup_priority = d
        .hosts
        .directors
        .iter()
        .filter(|h| h.director.name != active.director.name)
        .filter_map(|h| h.director.vrrp.as_ref().map(|v| v.priority))
        .max()
        .unwrap_or(100);
    let limit = match role {
        Role::RealServer => limits::realserver_removal(&lvs.health_check, false),
        Role::Master => limits::master_down(lvs.vrrp.as_ref(), backup_priority),
        Role::Backup => Limit::new(
            0,
            "a BACKUP holds nothing the clients use: its reboot must cost no request",
        ),
    }
    .with_margin(d.options.margin_ms);
    let probe = d.client_probe()?;
    let r = Reboot {
        drill: d,
        node: node.to_string(),
        session: session_of(d, node)?,
        role,
        probe,
        limit,
        active: Some(active),
    };
    let what = format!("reboot {node}");
    d.repeated(&what, |_| drive(d, &r)).await
}

/// The connection to `node`, a director or a real server.
fn session_of(d: &Drill<'_, '_>, node: &str) -> Result<Session, String> {
    let hosts = d.hosts;
    hosts
        .directors
        .iter()
        .find(|h| h.director.name == node)
        .map(|h| h.conn.session.clone())
        .or_else(|| {
            hosts
                .real_servers
                .iter()
                .find(|r| r.real_server.name == node)
                .map(|r| r.conn.session.clone())
        })
        .ok_or_else(|| format!("{node} is not connected"))
}

/// What a reboot's run measured, in ms after the reboot was asked for (the removal: on the
/// drill's clock).
struct Measured {
    /// When the active director took a rebooted real server out of its table.
    removed_at: Option<i64>,
    /// The node answered SSH again.
    up_ms: Option<i64>,
    /// The node did its part again.
    back_ms: Option<i64>,
}

impl Reboot<'_, '_> {
    /// When the active director took a rebooted real server out of its table (as its health
    /// check noticed), on the drill's clock.
    async fn removal(&self, run: &Underway<'_>) -> Option<i64> {
        let d = self.drill;
        let real = d
            .hosts
            .real_servers
            .iter()
            .find(|r| r.real_server.name == self.node);
        match (&self.active, real) {
            (Some(a), Some(r)) if self.role == Role::RealServer && a.conn.facts.has_ipvs() => {
                let endpoint = Endpoint::new(r.real_server.address, d.hosts.lvs.service().port);
                wait_until(Duration::from_secs(60), || async {
                    !serving(d.hosts.lvs, a, &endpoint).await
                })
                .await
                .map(|_| run.watch.now_ms())
            }
            _ => None,
        }
    }

    fn service_words(&self) -> &'static str {
        match self.role {
            Role::RealServer => "its web server answers and the director lists it",
            Role::Master => "it holds the VIP again, by priority",
            Role::Backup => "keepalived runs on it again",
        }
    }

    /// The node does its part again, as seen on the node (a new connection) and the director.
    async fn in_service(&self, fresh: &Session) -> bool {
        let hosts = self.drill.hosts;
        match self.role {
            Role::RealServer => {
                let Some(r) = hosts
                    .real_servers
                    .iter()
                    .find(|r| r.real_server.name == self.node)
                else {
                    return false;
                };
                let web = r.real_server.web.on(&r.conn.facts.family);
                let running = fresh
                    .run_timeout(&sh::process_running(web.process), Duration::from_secs(3))
                    .await
                    .is_ok_and(|o| o.success());
                let endpoint = Endpoint::new(r.real_server.address, hosts.lvs.service().port);
                let listed = match &self.active {
                    Some(a) if a.conn.facts.has_ipvs() => serving(hosts.lvs, a, &endpoint).await,
                    _ => true,
                };
                running && listed
            }
            Role::Master => {
                let vip = hosts.vip();
                holds(fresh, &vip).await
            }
            Role::Backup => crate::live::keepalived_runs(fresh, &hosts.vip()).await,
        }
    }
}

impl Fault for Reboot<'_, '_> {
    type Measured = Measured;

    fn name(&self) -> String {
        format!("drill reboot {}", self.node)
    }

    fn words(&self) -> String {
        format!("{} ({}) rebooted", self.node, self.role.word())
    }

    fn announce(&self, words: &str, load: &str) -> String {
        format!(
            "{}: {words} while {load}; nothing is converged after it",
            self.name()
        )
    }

    fn probe(&self) -> Probe {
        self.probe.clone()
    }

    fn asks_arp(&self) -> bool {
        self.role != Role::RealServer
    }

    fn longest(&self) -> Duration {
        SETTLE * 4 + BOOT_WAIT + RESTORE_WAIT + Duration::from_secs(60)
    }

    fn limit(&self) -> &Limit {
        &self.limit
    }

    async fn inject(&self, _run: &Underway<'_>) -> Result<(), String> {
        self.session
            .run_timeout(&sh::reboot_host(), Duration::from_secs(10))
            .await
            .map(|_| ())
            .map_err(|e| format!("{}: the reboot could not be asked for: {e}", self.node))
    }

    /// The node gone, answering again, in service again (as it comes back by itself).
    async fn follow(&self, run: &Underway<'_>) -> Result<Measured, String> {
        let d = self.drill;
        let (watch, fault_at) = (run.watch, run.fault_at);
        let node = &self.node;
        let removed_at = self.removal(run).await;
        // Gone first (its sshd killed, or the host going down), then back.
        let _ = wait_until(Duration::from_secs(60), || async {
            self.session
                .run_timeout("true", Duration::from_secs(2))
                .await
                .is_err()
        })
        .await;
        let mut fresh: Option<Session> = None;
        let waited = std::time::Instant::now();
        while waited.elapsed() < BOOT_WAIT {
            if let Ok(s) = d.repair.reconnect(node).await {
                fresh = Some(s);
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let up_ms = fresh.as_ref().map(|_| watch.now_ms() - fault_at);
        d.info(format!("  {node} answers SSH again {}", after(up_ms)));
        let Some(fresh) = fresh else {
            return Ok(Measured {
                removed_at,
                up_ms,
                back_ms: None,
            });
        };
        watch.mark(format!("{node} answers SSH"));
        let back_ms = wait_until(RESTORE_WAIT, || self.in_service(&fresh))
            .await
            .map(|_| watch.now_ms() - fault_at);
        if back_ms.is_some() {
            watch.mark(format!("{node} in service again"));
        }
        d.info(format!(
            "  {node} in service again {} ({})",
            after(back_ms),
            self.service_words()
        ));
        Ok(Measured {
            removed_at,
            up_ms,
            back_ms,
        })
    }

    /// A reboot cannot be taken back: the node comes back by itself.
    async fn undo(&self, _applied: bool) -> Undone {
        Undone::Irreversible(format!(
            "{} was rebooted and comes back by itself; run `lvslab verify` once it answers",
            self.node
        ))
    }

    /// A real server's reboot fails the clients that meet it until the health check takes it
    /// out: judged, as the real-server drills are, by the window of errors; a director's by
    /// the outage.
    async fn judge(&self, record: Record, fault_at: i64, measured: Measured) -> Run {
        let node = &self.node;
        let outage_ms = record.outage_ms();
        // The window ends when the director takes it out of its table: later failures are
        // reused client ports meeting its entries, dropped while expire_nodest_conn=0 (as in
        // the real-server drills), counted apart.
        let until = measured.removed_at.unwrap_or(i64::MAX);
        let error_window_ms =
            (self.role == Role::RealServer).then(|| record.error_window_ms(fault_at, until));
        let stale = record
            .requests
            .iter()
            .filter(|q| !q.ok && q.start_ms >= until)
            .count();
        let (within, judgement) = match error_window_ms {
            Some(errors) => {
                let (within, words) = super::against(errors, &self.limit);
                (
                    within,
                    format!(
                        "clients got errors for {errors} ms (first to last failed request), {words}; longest stretch without an answer {outage_ms} ms"
                    ),
                )
            }
            None => super::judged(outage_ms, &self.limit),
        };
        let words = [
            format!(
                "{} requests, {}; {judgement}",
                record.sent(),
                record.failed_words()
            ),
            if stale > 0 {
                format!(
                    "{stale} request(s) sent after it left the table failed too (client ports \
                     reused from connections to {node} still in the table: {})",
                    self.drill.hosts.lvs.stale_entries_why()
                )
            } else {
                String::new()
            },
            format!("{node} answered SSH again {}", after(measured.up_ms)),
            format!("{node} back in service {}", after(measured.back_ms)),
        ];
        Run {
            outage_ms,
            error_window_ms,
            limit: self.limit.clone(),
            pass: within && measured.up_ms.is_some() && measured.back_ms.is_some(),
            summary: words
                .iter()
                .filter(|w| !w.is_empty())
                .cloned()
                .collect::<Vec<_>>()
                .join("; "),
            returned_ms: measured.back_ms,
            record,
            ..Run::default()
        }
    }
}
