//! `drill realserver NODE --kind`: a real server fails while the client's requests flow; how long
//! clients got errors is judged against what keepalived's health check promises.
//!
//! - `stop`: the web server stopped the way its service manager stops it: gracefully, so while
//!   it shuts down a connection can be accepted and never answered (the check then waits its
//!   connect_timeout), and after that refused;
//! - `kill`: every web server process killed (SIGKILL): the same for the check, no goodbye;
//! - `hang`: every web server process frozen (SIGSTOP): the kernel still accepts connections,
//!   nothing answers, every check attempt waits its connect_timeout;
//! - `drain`: the server's weight 0 on the directors (what an operator does before
//!   maintenance): no new connections go to it, no client should see an error;
//! - `blackhole` (DR, TUN): the VIP taken off the server's `lo` (or `tunl0`): its web server
//!   still answers its own address, which keepalived's plain check asks, while every client
//!   packet forwarded to it is dropped. Only a check through the VIP
//!   (`health_check.via_vip`) removes it; without one the run shows clients failing until the
//!   drill puts the VIP back.

use std::cell::Cell;
use std::time::Duration;

use serde::Serialize;

use super::driver::{Fault, Underway, Undone, drive};
use super::limits::{self, Limit};
use super::record::Record;
use super::watch::Probe;
use super::{
    Drill, DrillOutcome, NO_ACTIVE, RESTORE_WAIT, Run, SETTLE, after, run_ok, service, wait_until,
};
use crate::live::{DirectorHost, RealServerHost};
use crate::lvs::ipvs::{Rule, Server};
use crate::lvs::{CheckKind, Endpoint};
use crate::transport::sh;

/// How the real server fails (the CLI's `--kind`, its help from these lines).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum RealServerKind {
    /// its web server stopped (connections refused)
    Stop,
    /// every web server process killed (SIGKILL)
    Kill,
    /// every web server process frozen (SIGSTOP): connections accepted, never answered
    Hang,
    /// its weight set to 0 on the directors, then put back
    Drain,
    /// the VIP taken off its lo (DR) or tunl0 (TUN): its own address answers, clients' packets
    /// are dropped
    Blackhole,
}

impl RealServerKind {
    pub fn word(self) -> &'static str {
        match self {
            RealServerKind::Stop => "stop",
            RealServerKind::Kill => "kill",
            RealServerKind::Hang => "hang",
            RealServerKind::Drain => "drain",
            RealServerKind::Blackhole => "blackhole",
        }
    }
}

/// When the fault ended, on the drill's clock, and what was measured meanwhile (ms after the
/// fault, and after the restore).
struct Steps {
    restored_at: i64,
    removed: Option<i64>,
    returned: Option<i64>,
}

/// The clients' errors in a run's record.
struct Errors {
    /// From the fault until the director removed the server (a drain: until its last answer).
    removed_ms: Option<i64>,
    /// From the first failed request to the last, until the server left the table.
    window_ms: i64,
    /// Requests that failed after it left the table, before the restore.
    stale: usize,
    /// Requests that failed after the restore.
    after_restore: usize,
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
    /// How long the drill waits for the director to remove the server.
    wait: Duration,
    /// A drain: the weight the server had (what the undo puts back).
    saved: Cell<Option<u16>>,
}

/// `drill realserver NODE --kind KIND`: see the module's documentation.
pub async fn realserver(
    d: &Drill<'_, '_>,
    node: &str,
    kind: RealServerKind,
) -> Result<DrillOutcome, String> {
    let target = real_server(d, node)?;
    d.hosts.require(&crate::live::Needs {
        directors: vec![crate::programs::IPVSADM],
        real_servers: match kind {
            RealServerKind::Kill | RealServerKind::Hang => vec![crate::programs::PKILL],
            RealServerKind::Stop | RealServerKind::Drain => Vec::new(),
            RealServerKind::Blackhole => vec![crate::programs::IP],
        },
        ..Default::default()
    })?;
    d.hosts
        .require(&Probe::Http(d.hosts.lvs.service().endpoint()).needs(d.hosts))?;
    let active = d.elected().await.ok_or(NO_ACTIVE)?;
    if !active.conn.facts.has_ipvs() {
        return Err(format!(
            "{} has no IPVS in its kernel: a real-server drill needs it (`lvslab lab up --vm` builds a lab that has it)",
            active.director.name
        ));
    }
    let endpoint = Endpoint::new(target.real_server.address, d.hosts.lvs.service().port);
    let mut directors = Vec::new();
    for h in &d.hosts.directors {
        if server_in(d.hosts.lvs, h, &endpoint).await.is_some() {
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
    if kind == RealServerKind::Blackhole
        && d.hosts.lvs.forwarding().real_server_vip_device().is_none()
    {
        return Err(
            "--kind blackhole takes the VIP off the real server, and with NAT no real server holds it (the director rewrites it to the real server's own address): a NAT real server's own failures are the other kinds"
                .into(),
        );
    }
    if kind == RealServerKind::Hang && hc.kind == CheckKind::Tcp {
        return Err(format!(
            "with `health_check: {{ type: tcp }}` a frozen web server is never removed: its kernel still completes the handshake that {} waits for, so clients fail until a person notices. `type: http` (HTTP_GET) catches it; `--kind stop` and `kill` work with either",
            hc.kind.keepalived_name()
        ));
    }
    let limit = match kind {
        // The operator's script may take up to misc_timeout at each attempt, a refused
        // connection or not: lvslab cannot know how soon it gives up (a curl started on a busy
        // emulated director took seconds).
        RealServerKind::Kill if hc.kind == CheckKind::Misc => {
            let hangs = limits::realserver_removal(hc, false);
            Limit::new(
                hangs.ms,
                format!(
                    "{} (connect_timeout is the script's misc_timeout: how soon it fails is the script's)",
                    hangs.why
                ),
            )
        }
        RealServerKind::Kill => limits::realserver_removal(hc, true),
        RealServerKind::Hang => limits::realserver_removal(hc, false),
        RealServerKind::Stop => {
            let hangs = limits::realserver_removal(hc, false);
            Limit::new(
                hangs.ms,
                format!(
                    "{}: a web server stopping gracefully can still accept connections it no longer answers",
                    hangs.why
                ),
            )
        }
        RealServerKind::Drain => Limit::new(
            0,
            "a drained server gets no new connections: no request should fail",
        ),
        // Packets to the VIP are dropped: a check through the VIP waits its connect_timeout
        // at every attempt, as with a frozen server.
        RealServerKind::Blackhole if hc.via_vip => {
            let hangs = limits::realserver_removal(hc, false);
            Limit::new(hangs.ms, format!("{}, asked through the VIP (via_vip)", hangs.why))
        }
        RealServerKind::Blackhole => {
            let hangs = limits::realserver_removal(hc, false);
            Limit::new(
                hangs.ms,
                format!(
                    "what a check through the VIP would take ({}); {} asks {node}'s own address, which still answers, so it never removes it: `health_check: {{ via_vip: true }}` asks the clients' way",
                    hangs.why,
                    hc.kind.keepalived_name()
                ),
            )
        }
    }
    .with_margin(d.options.margin_ms);
    if kind != RealServerKind::Drain
        && !crate::live::keepalived_runs(&active.conn.session, &d.hosts.vip()).await
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
        wait: Duration::from_millis(limit.bound_ms() + 5000),
        limit,
        saved: Cell::new(None),
    };
    let what = format!("realserver {node} --kind {}", kind.word());
    d.repeated(&what, |_| drive(d, &t)).await
}

/// The real server `node`, connected; else why not.
fn real_server<'a, 'h>(d: &'a Drill<'_, 'h>, node: &str) -> Result<&'a RealServerHost<'h>, String> {
    if let Some(r) = d
        .hosts
        .real_servers
        .iter()
        .find(|r| r.real_server.name == node)
    {
        return Ok(r);
    }
    let names: Vec<&str> = d
        .hosts
        .lvs
        .real_servers
        .iter()
        .map(|r| r.name.as_str())
        .collect();
    Err(if names.contains(&node) {
        format!("{node} could not be reached")
    } else {
        format!(
            "`{node}` is not a real server of the inventory (its real servers: {})",
            names.join(", ")
        )
    })
}

/// Whether `h` sends clients to the server: listed with a weight above 0 (keepalived takes a
/// failed server out of the table, or to weight 0 with `inhibit_on_failure`).
pub(super) async fn serving(
    lvs: &crate::lvs::Lvs,
    h: &DirectorHost<'_>,
    endpoint: &Endpoint,
) -> bool {
    server_in(lvs, h, endpoint)
        .await
        .is_some_and(|s| s.weight > 0)
}

/// The server as `h`'s IPVS table holds it in a service of the clients (not in its path check,
/// which keeps it whatever its checks say).
pub(super) async fn server_in(
    lvs: &crate::lvs::Lvs,
    h: &DirectorHost<'_>,
    endpoint: &Endpoint,
) -> Option<Server> {
    let table = h.conn.session.read(&sh::ipvs_save()).await.ok()?;
    lvs.client_services(&table)
        .flat_map(|s| s.real_servers.iter())
        .find(|r| &r.endpoint == endpoint)
        .cloned()
}

impl Target<'_, '_> {
    fn lvs(&self) -> &crate::lvs::Lvs {
        self.drill.hosts.lvs
    }

    fn node_name(&self) -> &str {
        &self.node.real_server.name
    }

    fn web(&self) -> crate::lvs::web::WebInstall {
        self.node.real_server.web.on(&self.node.conn.facts.family)
    }

    /// The server's weight on every director that had it. `undo`: each director first gets
    /// the weight before as its undo ([`sh::undo_after`]), in case the drill dies.
    async fn set_weight(&self, weight: u16, undo: Option<u16>) -> Result<(), String> {
        for h in &self.directors {
            let Some(now) = server_in(self.lvs(), h, &self.endpoint).await else {
                continue;
            };
            let table = h
                .conn
                .session
                .read(&sh::ipvs_save())
                .await
                .map_err(|e| e.to_string())?;
            let lvs = self.lvs();
            let rules = |weight: u16| -> Vec<Rule> {
                lvs.client_services(&table)
                    .filter(|s| s.real_servers.iter().any(|r| r.endpoint == self.endpoint))
                    .map(|s| Rule::EditServer {
                        key: s.key,
                        server: Server {
                            weight,
                            ..now.clone()
                        },
                    })
                    .collect()
            };
            let name = &h.director.name;
            match undo {
                Some(before) => {
                    let back = sh::ipvs_apply(&rules(before));
                    run_ok(
                        &h.conn,
                        name,
                        &sh::undo_after(&self.undo_tag(), self.undo_secs(), &back),
                    )
                    .await?
                }
                None => run_ok(&h.conn, name, &sh::undo_cancel(&self.undo_tag())).await?,
            }
            run_ok(&h.conn, name, &sh::ipvs_apply(&rules(weight))).await?;
        }
        Ok(())
    }

    /// The name of this kind's undo on a host.
    fn undo_tag(&self) -> String {
        format!("realserver-{}", self.kind.word())
    }

    /// When the fault undoes itself if the drill dies: after the time the drill waits for the
    /// director to remove the server, and its restore, and a margin; never before the drill's
    /// own restore.
    fn undo_secs(&self) -> u32 {
        let secs = (self.wait + SETTLE * 2 + Duration::from_secs(10)).as_secs();
        u32::try_from(secs).unwrap_or(u32::MAX)
    }

    /// The line that undoes the fault on the real server (not a drain, which is undone on the
    /// directors).
    fn undo_line(&self) -> String {
        let web = self.web();
        match self.kind {
            RealServerKind::Hang => sh::thaw(web.process),
            RealServerKind::Blackhole => self.vip_back(),
            _ => sh::service_action(&self.node.conn.facts.init, web.service, "start"),
        }
    }

    /// Where the real server holds the VIP, and its label there (a blackhole drill runs only
    /// where it holds one: refused with NAT before the run).
    fn vip_device(&self) -> (&'static str, Option<&'static str>) {
        self.lvs()
            .forwarding()
            .real_server_vip_device()
            .unwrap_or((crate::lvs::names::LOOPBACK, None))
    }

    /// The VIP as a host route.
    fn vip_host(&self) -> String {
        format!("{}/32", self.lvs().service().vip)
    }

    /// The VIP put back where the real server holds it, as `lvslab up` puts it.
    fn vip_back(&self) -> String {
        let (dev, label) = self.vip_device();
        sh::address_add(dev, &self.vip_host(), label)
    }

    /// The fault undone: the web server started or thawed, or the weight put back.
    async fn restore(&self) -> Result<(), String> {
        let node = self.node_name();
        let web = self.web();
        let conn = &self.node.conn;
        match self.kind {
            RealServerKind::Stop | RealServerKind::Kill => {
                run_ok(conn, node, &sh::undo_cancel(&self.undo_tag())).await?;
                service(conn, node, web.service, "start").await
            }
            RealServerKind::Hang => {
                run_ok(conn, node, &sh::undo_cancel(&self.undo_tag())).await?;
                run_ok(conn, node, &sh::thaw(web.process)).await
            }
            RealServerKind::Blackhole => {
                run_ok(conn, node, &sh::undo_cancel(&self.undo_tag())).await?;
                run_ok(conn, node, &self.vip_back()).await
            }
            RealServerKind::Drain => self.set_weight(self.saved.get().unwrap_or(1), None).await,
        }
    }

    /// The clients' errors in `record`, read against when the server left the table and when
    /// it was restored.
    fn errors(&self, record: &Record, fault_at: i64, steps: &Steps) -> Errors {
        let removed_ms = match self.kind {
            // The last answer from the drained server after the drain began.
            RealServerKind::Drain => Some(
                record
                    .requests
                    .iter()
                    .filter(|r| {
                        r.who.as_deref() == Some(self.node_name())
                            && r.start_ms >= fault_at
                            && r.start_ms < steps.restored_at
                    })
                    .map(|r| r.start_ms - fault_at)
                    .max()
                    .unwrap_or(0),
            ),
            _ => steps.removed,
        };
        // The health check's part ends when the director takes the server out of its table: a
        // request sent after that can still fail, but not by a scheduler's choice (IPVS
        // schedules nothing to a server out of its table). Its client port reused one of a
        // connection to the server still in the table, and IPVS drops such packets while
        // net.ipv4.vs.expire_nodest_conn=0 (the default): reported apart, not in the window.
        let removed_at = match self.kind {
            RealServerKind::Drain => None,
            _ => steps.removed.map(|ms| fault_at + ms),
        };
        let judged_until = removed_at.map_or(steps.restored_at, |r| r.min(steps.restored_at));
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
        Errors {
            removed_ms,
            window_ms: record.error_window_ms(fault_at, judged_until),
            stale,
            after_restore,
        }
    }

    /// Whether every director lists the server again with a weight above 0, and it answers.
    async fn back_as_before(&self) -> bool {
        for h in &self.directors {
            match server_in(self.lvs(), h, &self.endpoint).await {
                Some(s) if s.weight > 0 => {}
                _ => return false,
            }
        }
        true
    }
}

impl Fault for Target<'_, '_> {
    type Measured = Steps;

    fn name(&self) -> String {
        format!(
            "drill realserver {} --kind {}",
            self.node_name(),
            self.kind.word()
        )
    }

    fn words(&self) -> String {
        let node = self.node_name();
        let web = self.web();
        match self.kind {
            RealServerKind::Stop => format!("{} stopped on {node}", web.service),
            RealServerKind::Kill => format!("every {} process killed on {node}", web.process),
            RealServerKind::Hang => format!(
                "every {} process frozen on {node} (it accepts, never answers)",
                web.process
            ),
            RealServerKind::Drain => format!("{node} drained (weight 0)"),
            RealServerKind::Blackhole => format!(
                "the VIP taken off {node}'s {} (its own address answers; clients' packets to the VIP are dropped)",
                self.vip_device().0
            ),
        }
    }

    fn probe(&self) -> Probe {
        Probe::Http(self.drill.hosts.lvs.service().endpoint())
    }

    fn asks_arp(&self) -> bool {
        false
    }

    fn longest(&self) -> Duration {
        SETTLE * 4 + self.wait + RESTORE_WAIT + Duration::from_secs(120)
    }

    fn limit(&self) -> &Limit {
        &self.limit
    }

    async fn inject(&self, _run: &Underway<'_>) -> Result<(), String> {
        let node = self.node_name();
        let web = self.web();
        let conn = &self.node.conn;
        // A weight saved by an earlier run is not this run's.
        self.saved.set(None);
        // The undo first: a drill that dies after the fault leaves it undone in time.
        if self.kind != RealServerKind::Drain {
            let undo = sh::undo_after(&self.undo_tag(), self.undo_secs(), &self.undo_line());
            run_ok(conn, node, &undo).await?;
        }
        match self.kind {
            RealServerKind::Stop => service(conn, node, web.service, "stop").await,
            RealServerKind::Kill => run_ok(conn, node, &sh::kill_all_at_once(web.process)).await,
            RealServerKind::Hang => run_ok(conn, node, &sh::freeze(web.process)).await,
            RealServerKind::Blackhole => {
                let dev = self.vip_device().0;
                run_ok(conn, node, &sh::address_del(dev, &self.vip_host())).await
            }
            RealServerKind::Drain => {
                let weight = server_in(self.lvs(), &self.active, &self.endpoint)
                    .await
                    .map_or(1, |s| s.weight);
                self.saved.set(Some(weight));
                self.set_weight(0, Some(weight)).await
            }
        }
    }

    /// The director removes the server (a drain: read from the answers at the end), the drill
    /// restores it, every director lists it again.
    async fn follow(&self, run: &Underway<'_>) -> Result<Steps, String> {
        let d = self.drill;
        let (watch, fault_at) = (run.watch, run.fault_at);
        let node = self.node_name();
        let web = self.web();
        let removed = match self.kind {
            // Drained once requests stop reaching it: read from the client's answers at the end.
            RealServerKind::Drain => None,
            _ => wait_until(self.wait, || async {
                !serving(self.lvs(), &self.active, &self.endpoint).await
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
            RealServerKind::Blackhole => {
                format!("the VIP back on {node}'s {}", self.vip_device().0)
            }
            RealServerKind::Drain => format!("{node}'s weight restored"),
        };
        watch.mark(restore.clone());
        d.info(format!("  restoring: {restore}"));
        let restored_at = watch.now_ms();
        self.restore().await?;
        run.restored();
        let returned = wait_until(RESTORE_WAIT, || self.back_as_before())
            .await
            .map(|_| watch.now_ms() - restored_at);
        if returned.is_some() {
            watch.mark(format!("{node} back in service"));
        }
        d.info(format!("  {node} back in service {}", after(returned)));
        Ok(Steps {
            restored_at,
            removed,
            returned,
        })
    }

    async fn undo(&self, applied: bool) -> Undone {
        let node = self.node_name();
        if !applied {
            return Undone::Reverted(format!("nothing of {node} was left changed"));
        }
        let web = self.web();
        let what = match self.kind {
            RealServerKind::Stop | RealServerKind::Kill => {
                format!("{} started again on {node}", web.service)
            }
            RealServerKind::Hang => format!("{} thawed on {node}", web.process),
            RealServerKind::Blackhole => {
                format!("the VIP put back on {node}'s {}", self.vip_device().0)
            }
            RealServerKind::Drain => format!("{node}'s weight put back"),
        };
        Undone::Reverted(match self.restore().await {
            Ok(()) => {
                let back = wait_until(
                    Duration::from_millis(self.limit.ms.max(5000) + self.limit.margin_ms),
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
        })
    }

    /// Judged by the error window: from the first failed request to the last, until the
    /// director took the server out of its table.
    async fn judge(&self, record: Record, fault_at: i64, steps: Steps) -> Run {
        let node = self.node_name();
        let returned_ms = steps.returned;
        let outage_ms = record.outage_ms();
        let Errors {
            removed_ms,
            window_ms: errors_ms,
            stale,
            after_restore,
        } = self.errors(&record, fault_at, &steps);
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
        if self.kind == RealServerKind::Blackhole
            && removed_ms.is_none()
            && !self.lvs().health_check.via_vip
        {
            words.push(format!(
                "its check passed all along (it asks {node}'s own address): clients failed until the drill put the VIP back; `health_check: {{ via_vip: true }}` checks the clients' way"
            ));
        }
        if stale > 0 {
            words.push(format!(
                "{stale} request(s) sent after it left the table failed too: IPVS schedules \
                 nothing to it then, so their client ports met connections to {node} still in \
                 {}'s table: {}",
                self.active.director.name,
                self.lvs().stale_entries_why()
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
        Run {
            outage_ms,
            error_window_ms: Some(errors_ms),
            limit: self.limit.clone(),
            pass: within && removed_ms.is_some() && returned_ms.is_some() && back,
            summary: words.join("; "),
            removed_ms,
            returned_ms,
            record,
            ..Run::default()
        }
    }
}
