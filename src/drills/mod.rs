//! Drills: break something on purpose while the client's requests flow through the VIP, measure
//! what a user of the service sees, then restore and measure again, and judge the outage against
//! what the protocol promises for that failure ([`limits`]). Every drill keeps a record on one
//! clock ([`record`]), shows it as a text timeline and writes it as a picture ([`svg`]).
//! Ctrl-C during a drill undoes what the drill did before it returns, or says exactly what is
//! left. Each drill is a fault that one driver runs ([`driver`]).
//!
//! - `failover --kind stop|kill|link-down|freeze|partition`: the MASTER director's keepalived
//!   stopped (SIGTERM), killed (SIGKILL, all its processes at once), its lab interface down,
//!   keepalived frozen (SIGSTOP), or VRRP between the directors blocked while both stay
//!   reachable (a split brain);
//! - `realserver NODE --kind stop|kill|hang|drain`: its web server stopped, killed, frozen (it
//!   accepts connections but never answers), or drained (weight 0 on the directors);
//! - `reboot NODE`: a real server, the BACKUP or the MASTER rebooted; what comes back is what
//!   the node brings back by itself (the caller verifies without converging).

mod driver;
mod failover;
mod held;
pub mod limits;
mod realserver;
mod reboot;
pub mod record;
mod svg;
mod watch;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;

pub use failover::{FailoverKind, failover};
pub use realserver::{RealServerKind, realserver};
pub use reboot::reboot;

use crate::cancel::Cancel;
use crate::live::{DirectorHost, LvsHosts};
use crate::probes::{Findings, Verdict};
use crate::report::{Event, Reporter};
use crate::transport::{BoxFuture, sh};
use record::Record;
use watch::Probe;

/// What the caller offers a drill that must bring a host back to the inventory's state (a
/// killed keepalived leaves a stale VIP: `lvslab up` is the repair).
pub trait Repair: Sync {
    /// Converges `host` (the built-in playbooks, limited to it); says what changed.
    fn converge<'a>(&'a self, host: &'a str) -> BoxFuture<'a, Result<String, String>>;
    /// A new connection to `host` (a rebooted host's old one is gone), or why there is none.
    fn reconnect<'a>(
        &'a self,
        host: &'a str,
    ) -> BoxFuture<'a, Result<crate::transport::Session, String>>;
}

/// How a drill runs.
#[derive(Debug, Clone)]
pub struct DrillOptions {
    /// The client's requests per second.
    pub rate: u32,
    /// How many times; the outages are summarised (p50, p99, max).
    pub repeat: u32,
    /// Where the timeline picture goes (`None`: no picture). With `repeat`, `-2`, `-3`, ... are
    /// added before the extension for the later runs.
    pub svg: Option<PathBuf>,
    /// The lateness forgiven beyond each limit, in ms.
    pub margin_ms: u64,
}

/// What a drill works with.
pub struct Drill<'a, 'h> {
    pub hosts: &'a LvsHosts<'h>,
    pub reporter: &'a Reporter,
    pub cancel: &'a Cancel,
    pub options: DrillOptions,
    pub repair: &'a dyn Repair,
}

/// How a drill ended.
pub struct DrillOutcome {
    pub findings: Findings,
}

/// One run of a drill: its record, the measured values, and the verdict.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Run {
    pub record: Record,
    /// The longest stretch without a successful answer (see [`Record::outage_ms`]).
    pub outage_ms: i64,
    /// A real-server drill: from the first failed request to the last (the clients that met
    /// the failed server); it is what that drill judges.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_window_ms: Option<i64>,
    pub limit: limits::Limit,
    pub pass: bool,
    pub summary: String,
    /// Failover: from the fault until the BACKUP held the VIP.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub takeover_ms: Option<i64>,
    /// Failover: from the restore until the MASTER held the VIP again, alone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failback_ms: Option<i64>,
    /// Failover, partition: how long both directors held the VIP.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub double_master_ms: Option<i64>,
    /// Failover, partition: from healing until the client was answered again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reachable_after_heal_ms: Option<i64>,
    /// Failover, kill: whether the dead MASTER kept the VIP.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stale_vip: Option<bool>,
    /// Failover with `--hold`: the connections held open across it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held: Option<held::HeldOutcome>,
    /// Real server: from the fault until the director removed it (drain: until its last
    /// answer).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub removed_ms: Option<i64>,
    /// Real server: from the restore until every director listed it again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub returned_ms: Option<i64>,
    /// The slowest answers from the fault on (p99, max): a client's wait that no request's
    /// failure shows (a SYN sent again, answered late).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slowest: Option<record::Slowest>,
    /// Where the picture was written.
    pub svg: Option<PathBuf>,
    /// Interrupted (Ctrl-C): what was undone, or what is left.
    pub interrupted: Option<String>,
}

impl Run {
    /// What the run is judged by: the error window of a real-server drill, else the outage.
    pub fn judged_ms(&self) -> i64 {
        self.error_window_ms.unwrap_or(self.outage_ms)
    }
}

/// How long requests go on before the fault and after the drill's last change.
const SETTLE: Duration = Duration::from_secs(2);

/// How long a drill waits for the lab to return to how it was (fail-back, the client's ARP entry,
/// a real server back in service). Not a claim under test, only patience: a slow host (an
/// emulated CPU, a loaded machine) restarts its daemons in seconds, not milliseconds.
const RESTORE_WAIT: Duration = Duration::from_secs(60);

/// What a drill says when no director holds the VIP.
const NO_ACTIVE: &str = "no director holds the VIP: run `lvslab up` first";

impl<'h> Drill<'_, 'h> {
    fn info(&self, text: String) {
        self.reporter.emit(Event::Info { text });
    }

    /// The director that holds the VIP, once the directors (when they run VRRP) have elected
    /// their MASTER: right after `lvslab up` the pair may still be electing it.
    async fn elected(&self) -> Option<DirectorHost<'h>> {
        if self.hosts.lvs.vrrp.is_some() {
            crate::live::wait_for_election(self.hosts).await;
        }
        self.hosts.active_director().await
    }

    /// What the client sends: GETs through the VIP, or pings of the VIP where the directors'
    /// kernel has no IPVS (said so); checked that the hosts have what it needs.
    fn client_probe(&self) -> Result<Probe, String> {
        let ipvs = self.hosts.directors.iter().all(|h| h.conn.facts.has_ipvs());
        let probe = if ipvs {
            Probe::Http(self.hosts.lvs.service().endpoint())
        } else {
            self.info(format!(
                "the directors' kernel has no IPVS: the client pings the VIP {} (who holds it), it cannot ask for pages",
                self.hosts.vip()
            ));
            Probe::Ping(self.hosts.vip())
        };
        self.hosts.require(&probe.needs(self.hosts))?;
        Ok(probe)
    }

    /// The picture's path for run `i` (1-based).
    fn svg_path(&self, i: u32) -> Option<PathBuf> {
        let base = self.options.svg.clone()?;
        if i <= 1 {
            return Some(base);
        }
        let stem = base
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "drill".into());
        let ext = base
            .extension()
            .map(|e| format!(".{}", e.to_string_lossy()))
            .unwrap_or_default();
        Some(base.with_file_name(format!("{stem}-{i}{ext}")))
    }

    /// Shows a run: its text timeline, its picture's path, its verdict.
    fn show(&self, run: &mut Run, i: u32) -> Verdict {
        self.info(run.record.text_timeline());
        if let Some(path) = self.svg_path(i) {
            match std::fs::write(&path, svg::render(&run.record, &run.summary)) {
                Ok(()) => {
                    self.info(format!("  timeline picture: {}", path.display()));
                    run.svg = Some(path);
                }
                Err(e) => self.info(format!(
                    "  the timeline picture could not be written to {}: {e}",
                    path.display()
                )),
            }
        }
        Verdict::new(run.record.title.clone(), run.pass, run.summary.clone())
    }

    /// Runs `one` `repeat` times (stopping at Ctrl-C) and reports each run and the summary.
    async fn repeated<F, Fut>(&self, what: &str, mut one: F) -> Result<DrillOutcome, String>
    where
        F: FnMut(u32) -> Fut,
        Fut: std::future::Future<Output = Result<Run, String>>,
    {
        let mut findings = Findings {
            unreachable: self.hosts.unreachable.clone(),
            ..Findings::default()
        };
        let mut runs = Vec::new();
        let repeat = self.options.repeat.max(1);
        for i in 1..=repeat {
            if repeat > 1 {
                self.info(format!("\n{what}: run {i} of {repeat}"));
            }
            let mut run = one(i).await?;
            let verdict = self.show(&mut run, i);
            findings.push(self.reporter, verdict);
            let interrupted = run.interrupted.is_some();
            runs.push(run);
            if interrupted || self.cancel.is_cancelled() {
                findings.interrupted = true;
                break;
            }
        }
        if runs.len() > 1 {
            let mut outages: Vec<i64> = runs.iter().map(Run::judged_ms).collect();
            outages.sort_unstable();
            let pct = |p: f64| {
                let i = ((p * outages.len() as f64).ceil() as usize).clamp(1, outages.len()) - 1;
                outages[i]
            };
            let passed = runs.iter().filter(|r| r.pass).count();
            self.info(format!(
                "\n{what}: {} runs, {} p50 {} ms, p99 {} ms, max {} ms; {passed} passed",
                runs.len(),
                if runs.iter().any(|r| r.error_window_ms.is_some()) {
                    "errors for"
                } else {
                    "outage"
                },
                pct(0.5),
                pct(0.99),
                outages.last().copied().unwrap_or(0)
            ));
        }
        self.reporter.emit(Event::Result {
            what: what.to_string(),
            data: serde_json::to_value(&runs).unwrap_or_default(),
        });
        Ok(DrillOutcome { findings })
    }
}

/// Polls `probe` every 100 ms until it holds or `limit` passes; how long it took.
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
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

/// `after N ms`, or that it did not happen.
fn after(ms: Option<i64>) -> String {
    ms.map_or_else(
        || "did not happen within the wait".into(),
        |ms| format!("after {ms} ms"),
    )
}

/// `action` (stop, start) on `service`, the way the host's init system does it.
async fn service(
    conn: &crate::fleet::Connected,
    name: &str,
    service: &str,
    action: &str,
) -> Result<(), String> {
    run_ok(
        conn,
        name,
        &sh::service_action(&conn.facts.init, service, action),
    )
    .await
}

/// Runs `command` on a host; an error names the host.
async fn run_ok(conn: &crate::fleet::Connected, name: &str, command: &str) -> Result<(), String> {
    let out = conn
        .session
        .run(command)
        .await
        .map_err(|e| format!("{name}: {e}"))?;
    if out.success() {
        Ok(())
    } else {
        Err(format!(
            "{name}: `{command}` failed ({}): {}",
            out.describe_status(),
            out.stderr_str().trim()
        ))
    }
}

/// Whether a session's host holds `address` on any device but lo and tunl0.
async fn holds(session: &crate::transport::Session, address: &str) -> bool {
    session
        .read_timeout(&sh::address_holders(address), Duration::from_secs(2))
        .await
        .is_ok_and(|held| {
            held.iter()
                .any(|h| crate::lvs::names::holds_vip_on(&h.device))
        })
}

/// The verdict words of an outage against its limit.
fn judged(outage_ms: i64, limit: &limits::Limit) -> (bool, String) {
    let (pass, words) = against(outage_ms, limit);
    (pass, format!("outage {outage_ms} ms, {words}"))
}

/// Whether `ms` is within `limit` and its margin, and the words that say so.
fn against(ms: i64, limit: &limits::Limit) -> (bool, String) {
    let bound = i64::try_from(limit.bound_ms()).unwrap_or(i64::MAX);
    let pass = ms <= bound;
    (
        pass,
        format!(
            "{} the limit {} ms + {} ms margin ({})",
            if pass { "within" } else { "OVER" },
            limit.ms,
            limit.margin_ms,
            limit.why
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_forgives_its_margin_and_says_which() {
        let limit = limits::Limit::new(3000, "delay_loop 2 s + retry 1 x delay_before_retry 1 s");
        let (pass, words) = against(4401, &limit);
        assert!(!pass, "{words}");
        assert!(
            words.starts_with("OVER the limit 3000 ms + 1000 ms margin (delay_loop"),
            "{words}"
        );
        let (pass, words) = against(4401, &limit.clone().with_margin(2000));
        assert!(pass, "{words}");
        assert!(
            words.starts_with("within the limit 3000 ms + 2000 ms margin"),
            "{words}"
        );
        assert!(against(3000, &limit.clone().with_margin(0)).0);
        assert!(!against(3001, &limit.with_margin(0)).0);
    }
}
