//! `drill realserver NODE --kind`: a real server fails while the client's requests flow; how long
//! clients got errors is judged against what keepalived's health check promises.
//!
//! - `stop`: the web server stopped: connections are refused, the check fails at once;
//! - `kill`: every web server process killed (SIGKILL): the same for the check, no goodbye;
//! - `hang`: every web server process frozen (SIGSTOP): the kernel still accepts connections,
//!   nothing answers, every check attempt waits its connect_timeout;
//! - `drain`: the server's weight 0 on the directors (what an operator does before
//!   maintenance): no new connections go to it, no client should see an error.

use std::cell::Cell;
use std::time::Duration;

use serde::Serialize;

use super::limits::{self, Limit};
use super::watch::{Probe, Watch};
use super::{Drill, DrillOutcome, RESTORE_WAIT, Run, SETTLE, after, run_ok, service, wait_until};
use crate::lvs::Endpoint;
use crate::lvs::ipvs::{Rule, Server};
use crate::probes::hosts::{DirectorHost, RealServerHost};
use crate::transport::sh;

/// How the real server fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RealServerKind {
    Stop,
    Kill,
    Hang,
    Drain,
}

impl RealServerKind {
    pub fn word(self) -> &'static str {
        match self {
            RealServerKind::Stop => "stop",
            RealServerKind::Kill => "kill",
            RealServerKind::Hang => "hang",
            RealServerKind::Drain => "drain",
        }
    }
}

/// When the fault began and ended, on the drill's clock, and what was measured meanwhile.
struct Steps {
    fault_at: i64,
    restored_at: i64,
    removed: Option<i64>,
    returned: Option<i64>,
}

struct Target<'a, 'h> {
    drill: &'a Drill<'a, 'h>,
    kind: RealServerKind,
    node: &'a RealServerHost<'h>,
    /// Every director reachable with the server in its table: keepalived's health checks run
    /// on each, and a drain sets the weight on each.
    directors: Vec<DirectorHost<'h>>,
    active: DirectorHost<'h>,
    endpoint: Endpoint,
    limit: Limit,
}

/// `drill realserver NODE --kind KIND`: see the module's documentation.
pub async fn realserver(
    d: &Drill<'_, '_>,
    node: &str,
    kind: RealServerKind,
) -> Result<DrillOutcome, String> {
    let Some(target) = d
        .hosts
        .real_servers
        .iter()
        .find(|r| r.real_server.name == node)
    else {
        let names: Vec<&str> = d
            .hosts
            .lvs
            .real_servers
            .iter()
            .map(|r| r.name.as_str())
            .collect();
        return Err(if names.contains(&node) {
            format!("{node} could not be reached")
        } else {
            format!(
                "`{node}` is not a real server of the inventory (its real servers: {})",
                names.join(", ")
            )
        });
    };
    d.hosts.require(&crate::probes::hosts::Needs {
        directors: vec![crate::programs::IPVSADM],
        real_servers: match kind {
            RealServerKind::Kill | RealServerKind::Hang => vec![crate::programs::PKILL],
            RealServerKind::Stop | RealServerKind::Drain => Vec::new(),
        },
        ..Default::default()
    })?;
    d.hosts
        .require(&Probe::Http(d.hosts.lvs.service().endpoint()).needs(d.hosts))?;
    if d.hosts.lvs.vrrp.is_some() {
        crate::probes::verify::wait_for_election(d.hosts).await;
    }
    let Some(active) = d.hosts.active_director().await else {
        return Err("no director holds the VIP: run `lvslab up` first".into());
    };
    if !active.conn.facts.has_ipvs() {
        return Err(format!(
            "{} has no IPVS in its kernel: a real-server drill needs it (`lvslab lab up --vm` builds a lab that has it)",
            active.director.name
        ));
    }
    let endpoint = Endpoint::new(target.real_server.address, d.hosts.lvs.service().port);
    let mut directors = Vec::new();
    for h in &d.hosts.directors {
        if server_in(h, &endpoint).await.is_some() {
            directors.push(h.clone());
        }
    }
    if !directors
        .iter()
        .any(|h| h.director.name == active.director.name)
    {
        return Err(format!(
            "{}'s IPVS table does not list {node} ({endpoint}): run `lvslab up` first",
            active.director.name
        ));
    }
    let hc = &d.hosts.lvs.health_check;
    let limit = match kind {
        RealServerKind::Stop | RealServerKind::Kill => limits::realserver_removal(hc, true),
        RealServerKind::Hang => limits::realserver_removal(hc, false),
        RealServerKind::Drain => Limit {
            ms: 0,
            why: "a drained server gets no new connections: no request should fail".into(),
        },
    };
    if kind != RealServerKind::Drain
        && !super::keepalived_runs(&active.conn.session, &d.hosts.vip()).await
    {
        return Err(format!(
            "keepalived does not run on {}: nothing checks the real servers (manual mode); `--kind drain` works without it",
            active.director.name
        ));
    }
    let t = Target {
        drill: d,
        kind,
        node: target,
        directors,
        active,
        endpoint,
        limit,
    };
    let what = format!("realserver {node} --kind {}", kind.word());
    d.repeated(&what, |_| t.run()).await
}

/// The server as `h`'s IPVS table holds it.
pub(super) async fn server_in(h: &DirectorHost<'_>, endpoint: &Endpoint) -> Option<Server> {
    let table = h.conn.session.read(&sh::ipvs_save()).await.ok()?;
    table
        .services
        .iter()
        .flat_map(|s| s.real_servers.iter())
        .find(|r| &r.endpoint == endpoint)
        .cloned()
}

impl Target<'_, '_> {
    fn name(&self) -> &str {
        &self.node.real_server.name
    }

    fn web(&self) -> crate::lvs::web::WebInstall {
        self.node.real_server.web.on(&self.node.conn.facts.family)
    }

    async fn run(&self) -> Result<Run, String> {
        let d = self.drill;
        let node = self.name();
        let web = self.web();
        let fault = match self.kind {
            RealServerKind::Stop => format!("{} stopped on {node}", web.service),
            RealServerKind::Kill => format!("every {} process killed on {node}", web.process),
            RealServerKind::Hang => format!(
                "every {} process frozen on {node} (it accepts, never answers)",
                web.process
            ),
            RealServerKind::Drain => format!("{node} drained (weight 0)"),
        };
        d.info(format!(
            "drill realserver {node} --kind {}: {fault} while {} sends {} requests a second",
            self.kind.word(),
            d.hosts.client.name,
            d.options.rate
        ));
        let wait = Duration::from_millis(self.limit.ms + limits::MARGIN_MS + 5000);
        let max = SETTLE * 4 + wait + RESTORE_WAIT + Duration::from_secs(120);
        let watch = Watch::start(
            d.hosts,
            Probe::Http(d.hosts.lvs.service().endpoint()),
            d.options.rate,
            max,
            format!(
                "drill realserver {node} --kind {}: {fault}",
                self.kind.word()
            ),
            false,
        )
        .await?;
        let saved = Cell::new(None);
        let applied = Cell::new(false);
        let steps = d
            .cancel
            .guard(self.steps(&watch, &fault, wait, &applied, &saved))
            .await;
        let steps = match steps {
            Some(Ok(steps)) => steps,
            Some(Err(e)) => {
                let undone = self.undo(applied.get(), saved.get()).await;
                let _ = watch.finish().await;
                return Err(format!("{e}; {undone}"));
            }
            None => {
                watch.mark("interrupted");
                let undone = self.undo(applied.get(), saved.get()).await;
                let record = watch.finish().await?;
                let outage_ms = record.outage_ms();
                return Ok(Run {
                    record,
                    outage_ms,
                    limit: self.limit.clone(),
                    summary: format!("interrupted: {undone}"),
                    interrupted: Some(undone),
                    ..Run::default()
                });
            }
        };
        let record = watch.finish().await?;
        let returned_ms = steps.returned;
        let removed_ms = match self.kind {
            // The last answer from the drained server after the drain began.
            RealServerKind::Drain => Some(
                record
                    .requests
                    .iter()
                    .filter(|r| {
                        r.who.as_deref() == Some(self.name())
                            && r.start_ms >= steps.fault_at
                            && r.start_ms < steps.restored_at
                    })
                    .map(|r| r.start_ms - steps.fault_at)
                    .max()
                    .unwrap_or(0),
            ),
            _ => steps.removed,
        };
        let outage_ms = record.outage_ms();
        // The health check's part ends when the director takes the server out of its table: a
        // request sent after that can still fail, but not by a scheduler's choice (IPVS
        // schedules nothing to a server out of its table). Its client port reused one of a
        // connection to the server still in the table, and IPVS drops such packets while
        // net.ipv4.vs.expire_nodest_conn=0 (the default): reported apart, not in the window.
        let removed_at = match self.kind {
            RealServerKind::Drain => None,
            _ => steps.removed.map(|ms| steps.fault_at + ms),
        };
        let judged_until = removed_at.map_or(steps.restored_at, |r| r.min(steps.restored_at));
        let errors_ms = record.error_window_ms(steps.fault_at, judged_until);
        let stale = removed_at.map_or(0, |r| {
            record
                .requests
                .iter()
                .filter(|q| !q.ok && q.start_ms >= r && q.start_ms < steps.restored_at)
                .count()
        });
        let after_restore = record
            .requests
            .iter()
            .filter(|r| !r.ok && r.start_ms >= steps.restored_at)
            .count();
        let (in_time, limit_words) = super::against(errors_ms, &self.limit);
        let within = if self.kind == RealServerKind::Drain {
            record.failed() == 0
        } else {
            in_time
        };
        let back = self.back_as_before().await;
        let mut words = vec![format!(
            "{} requests, {}; clients got errors for {errors_ms} ms (first to last failed request until it left the table), {}; longest stretch without an answer {outage_ms} ms",
            record.sent(),
            record.failed_words(),
            if within {
                limit_words
            } else {
                limit_words.replacen("within", "OVER", 1)
            }
        )];
        words.push(match self.kind {
            RealServerKind::Drain => {
                format!("no new requests reached {node} {}", after(removed_ms))
            }
            _ => format!(
                "{} removed it from the table {}",
                self.active.director.name,
                after(removed_ms)
            ),
        });
        if stale > 0 {
            words.push(format!(
                "{stale} request(s) sent after it left the table failed too: IPVS schedules \
                 nothing to it then, so their client ports met connections to {node} still in \
                 {}'s table, whose packets it drops while net.ipv4.vs.expire_nodest_conn=0",
                self.active.director.name
            ));
        }
        words.push(format!("back in service {}", after(returned_ms)));
        if after_restore > 0 {
            words.push(format!(
                "{after_restore} request(s) failed after {node} was restored"
            ));
        }
        words.push(format!(
            "lab as before: {}",
            if back { "yes" } else { "NO" }
        ));
        Ok(Run {
            outage_ms,
            error_window_ms: Some(errors_ms),
            limit: self.limit.clone(),
            pass: within && removed_ms.is_some() && returned_ms.is_some() && back,
            summary: words.join("; "),
            removed_ms,
            returned_ms,
            record,
            ..Run::default()
        })
    }

    async fn steps(
        &self,
        watch: &Watch,
        fault: &str,
        wait: Duration,
        applied: &Cell<bool>,
        saved: &Cell<Option<u16>>,
    ) -> Result<Steps, String> {
        let d = self.drill;
        let node = self.name();
        let web = self.web();
        let conn = &self.node.conn;
        tokio::time::sleep(SETTLE).await;

        watch.mark(fault.to_string());
        let fault_at = watch.now_ms();
        applied.set(true);
        match self.kind {
            RealServerKind::Stop => service(conn, node, web.service, "stop").await?,
            RealServerKind::Kill => run_ok(conn, node, &sh::kill_all_at_once(web.process)).await?,
            RealServerKind::Hang => run_ok(conn, node, &sh::freeze(web.process)).await?,
            RealServerKind::Drain => {
                let weight = server_in(&self.active, &self.endpoint)
                    .await
                    .map_or(1, |s| s.weight);
                saved.set(Some(weight));
                self.set_weight(0).await?;
            }
        }
        let removed = match self.kind {
            // Drained once requests stop reaching it: read from the client's answers at the end.
            RealServerKind::Drain => None,
            _ => wait_until(wait, || async {
                server_in(&self.active, &self.endpoint).await.is_none()
            })
            .await
            .map(|_| watch.now_ms() - fault_at),
        };
        if self.kind != RealServerKind::Drain {
            if removed.is_some() {
                watch.mark(format!("{} removed {node}", self.active.director.name));
            }
            d.info(format!(
                "  {} removed {node} from its table {}",
                self.active.director.name,
                after(removed)
            ));
        }
        tokio::time::sleep(SETTLE).await;

        let restore = match self.kind {
            RealServerKind::Stop | RealServerKind::Kill => {
                format!("{} started on {node}", web.service)
            }
            RealServerKind::Hang => format!("{} thawed on {node}", web.process),
            RealServerKind::Drain => format!("{node}'s weight restored"),
        };
        watch.mark(restore.clone());
        d.info(format!("  restoring: {restore}"));
        let restored_at = watch.now_ms();
        self.restore(saved.get()).await?;
        applied.set(false);
        let returned = wait_until(RESTORE_WAIT, || self.back_as_before())
            .await
            .map(|_| watch.now_ms() - restored_at);
        if returned.is_some() {
            watch.mark(format!("{node} back in service"));
        }
        d.info(format!("  {node} back in service {}", after(returned)));
        tokio::time::sleep(SETTLE).await;
        Ok(Steps {
            fault_at,
            restored_at,
            removed,
            returned,
        })
    }

    /// The server's weight on every director that had it.
    async fn set_weight(&self, weight: u16) -> Result<(), String> {
        for h in &self.directors {
            let Some(now) = server_in(h, &self.endpoint).await else {
                continue;
            };
            let table = h
                .conn
                .session
                .read(&sh::ipvs_save())
                .await
                .map_err(|e| e.to_string())?;
            let rules: Vec<Rule> = table
                .services
                .iter()
                .filter(|s| s.real_servers.iter().any(|r| r.endpoint == self.endpoint))
                .map(|s| Rule::EditServer {
                    key: s.key,
                    server: Server {
                        weight,
                        ..now.clone()
                    },
                })
                .collect();
            run_ok(&h.conn, &h.director.name, &sh::ipvs_apply(&rules)).await?;
        }
        Ok(())
    }

    /// The fault undone: the web server started or thawed, or the weight put back.
    async fn restore(&self, weight: Option<u16>) -> Result<(), String> {
        let node = self.name();
        let web = self.web();
        let conn = &self.node.conn;
        match self.kind {
            RealServerKind::Stop | RealServerKind::Kill => {
                service(conn, node, web.service, "start").await
            }
            RealServerKind::Hang => run_ok(conn, node, &sh::thaw(web.process)).await,
            RealServerKind::Drain => self.set_weight(weight.unwrap_or(1)).await,
        }
    }

    /// Whether every director lists the server again with a weight above 0, and it answers.
    async fn back_as_before(&self) -> bool {
        for h in &self.directors {
            match server_in(h, &self.endpoint).await {
                Some(s) if s.weight > 0 => {}
                _ => return false,
            }
        }
        true
    }

    /// After Ctrl-C or an error: the fault undone, in words.
    async fn undo(&self, applied: bool, weight: Option<u16>) -> String {
        let node = self.name();
        if !applied {
            return format!("nothing of {node} was left changed");
        }
        let web = self.web();
        let what = match self.kind {
            RealServerKind::Stop | RealServerKind::Kill => {
                format!("{} started again on {node}", web.service)
            }
            RealServerKind::Hang => format!("{} thawed on {node}", web.process),
            RealServerKind::Drain => format!("{node}'s weight put back"),
        };
        match self.restore(weight).await {
            Ok(()) => {
                let back = wait_until(
                    Duration::from_millis(self.limit.ms.max(5000) + limits::MARGIN_MS),
                    || self.back_as_before(),
                )
                .await;
                if back.is_some() {
                    format!("{what}; it is back in service: the lab is as before")
                } else {
                    format!(
                        "{what}, but the directors do not list it yet: `lvslab verify` shows when it is back"
                    )
                }
            }
            Err(e) => format!("{what} failed ({e}): `lvslab up` restores it"),
        }
    }
}
