//! `drill failover --kind`: the MASTER director fails the way directors really fail, while the
//! client's requests flow; the outage the client saw is judged against what VRRP promises for
//! that failure.
//!
//! - `stop`: keepalived stopped (SIGTERM): it sends a priority-0 advert, the BACKUP takes over
//!   after its skew;
//! - `kill`: every keepalived process killed at once (SIGKILL): nothing is sent, the BACKUP waits
//!   Master_Down_Interval, and the VIP stays on the dead MASTER (the seed's flaw) until
//!   `lvslab up` repairs it;
//! - `link-down`: the MASTER's VRRP interface down for a while;
//! - `freeze`: keepalived frozen (SIGSTOP) for a while, its VIP still configured;
//! - `partition`: VRRP between the directors dropped for a while, both reachable from the
//!   client: two MASTERs, two MACs answering ARP, and after healing a client that may still
//!   send to the wrong one (stale ARP).
//!
//! After the fault the MASTER takes the VIP back (preemption), after `preempt_delay` when the
//! inventory sets one; with `preempt: false` (nopreempt) the drill checks the opposite: the
//! BACKUP keeps the VIP and the MASTER comes back as BACKUP.

use std::time::Duration;

use serde::Serialize;

use super::driver::{Fault, Underway, Undone, drive};
use super::held::{self, Held, HeldOutcome};
use super::limits::{self, Limit};
use super::record::Record;
use super::watch::Probe;
use super::{
    Drill, DrillOutcome, NO_ACTIVE, RESTORE_WAIT, Run, SETTLE, after, holds, judged, run_ok,
    service, wait_until,
};
use crate::live::DirectorHost;
use crate::lvs::Forwarding;
use crate::transport::sh;

/// How the MASTER fails (the CLI's `--kind`, its help from these lines).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum FailoverKind {
    /// keepalived stopped (SIGTERM)
    Stop,
    /// every keepalived process killed at once (SIGKILL); repaired by `lvslab up` on that host
    Kill,
    /// the MASTER's VRRP interface down for Master_Down_Interval + 3 s
    LinkDown,
    /// keepalived frozen (SIGSTOP) for Master_Down_Interval + 3 s
    Freeze,
    /// VRRP between the directors dropped for Master_Down_Interval + 3 s (both stay reachable)
    Partition,
}

impl FailoverKind {
    pub fn word(self) -> &'static str {
        match self {
            FailoverKind::Stop => "stop",
            FailoverKind::Kill => "kill",
            FailoverKind::LinkDown => "link-down",
            FailoverKind::Freeze => "freeze",
            FailoverKind::Partition => "partition",
        }
    }
}

/// The pair a failover drill works on.
struct Pair<'a, 'h> {
    master: DirectorHost<'h>,
    backup: DirectorHost<'h>,
    probe: Probe,
    limit: Limit,
    /// How long a timed fault lasts: long enough for the BACKUP to give up on the MASTER.
    hold: Duration,
    /// How long the drill waits for a takeover or a fail-back before it calls it missing.
    wait: Duration,
    kind: FailoverKind,
    drill: &'a Drill<'a, 'h>,
    /// How many connections each run holds open across the fault (`--hold`), and those of the
    /// run under way, from before its fault until the takeover.
    held_count: u32,
    held: std::sync::Mutex<Option<Held>>,
}

/// How long the connections held before the fault may take to reach the BACKUP's table: the
/// kernel's flush, and two seconds for an emulated director to read them.
const SYNC_WAIT: Duration = crate::lvs::ipvs::SYNC_FLUSH.saturating_add(Duration::from_secs(2));
/// How long the held connections wait for the client's ARP entry to name the BACKUP before
/// they are asked again (after a kill, the dead MASTER still holds the VIP and its table).
const HELD_ARP_WAIT: Duration = Duration::from_secs(8);

/// `drill failover --kind KIND`: see the module's documentation.
pub async fn failover(
    d: &Drill<'_, '_>,
    kind: FailoverKind,
    hold: u32,
) -> Result<DrillOutcome, String> {
    let lvs = d.hosts.lvs;
    if lvs.vrrp.is_none() {
        return Err(
            "drill failover needs keepalived: the inventory has no `vrrp:` (manual mode has one director and no failover)"
                .into(),
        );
    }
    {
        use crate::programs::{IP, PGREP, PKILL, TC};
        let directors = match kind {
            FailoverKind::Stop | FailoverKind::LinkDown => vec![IP],
            FailoverKind::Kill | FailoverKind::Freeze => vec![PGREP, PKILL],
            FailoverKind::Partition => vec![TC],
        };
        d.hosts.require(&crate::live::Needs {
            directors,
            ..Default::default()
        })?;
    }
    if d.options.repeat > 1 && !lvs.preempts() {
        return Err(
            "with `preempt: false` (nopreempt) each run leaves the VIP on the other director: run the drill once at a time (each run drills whichever director holds the VIP then)"
                .into(),
        );
    }
    let master = d.elected().await.ok_or(NO_ACTIVE)?;
    let Some(backup) = d
        .hosts
        .directors
        .iter()
        .filter(|h| h.director.name != master.director.name)
        .max_by_key(|h| h.director.vrrp.as_ref().map(|v| v.priority))
        .cloned()
    else {
        return Err("drill failover needs two directors (one reachable besides the MASTER)".into());
    };
    for h in [&master, &backup] {
        if !crate::live::keepalived_runs(&h.conn.session, &d.hosts.vip()).await {
            return Err(format!(
                "keepalived does not run on {}: run `lvslab up` first",
                h.director.name
            ));
        }
    }
    let backup_priority = backup.director.vrrp.as_ref().map_or(100, |v| v.priority);
    let master_down = limits::master_down(lvs.vrrp.as_ref(), backup_priority);
    let limit = match kind {
        FailoverKind::Stop => limits::clean_stop(backup_priority),
        FailoverKind::Kill | FailoverKind::LinkDown | FailoverKind::Freeze => master_down.clone(),
        FailoverKind::Partition => partition_limit(d, &master_down).await,
    }
    .with_margin(d.options.margin_ms);
    let probe = d.client_probe()?;
    if hold > 0 && !matches!(probe, Probe::Http(_)) {
        return Err(
            "--hold needs IPVS on the directors: the held connections go through the virtual service"
                .into(),
        );
    }
    let pair = Pair {
        hold: Duration::from_secs((master_down.ms + 3000).div_ceil(1000)),
        wait: Duration::from_millis(limit.bound_ms().max(master_down.ms) + 5000),
        master,
        backup,
        probe,
        limit,
        kind,
        drill: d,
        held_count: hold,
        held: std::sync::Mutex::new(None),
    };
    let what = format!("failover --kind {}", kind.word());
    d.repeated(&what, |_| async {
        if pair.held_count > 0 {
            pair.hold_connections().await?;
        }
        drive(d, &pair).await
    })
    .await
}

/// A partition's promise: the BACKUP takes over after Master_Down_Interval and serves; after
/// healing, a client whose ARP entry still names the former BACKUP gets through once it asks
/// again.
async fn partition_limit(d: &Drill<'_, '_>, master_down: &Limit) -> Limit {
    let iface = d
        .hosts
        .client
        .host
        .and_then(|h| h.interface.clone())
        .unwrap_or_else(|| "eth0".into());
    let timers = d
        .hosts
        .client
        .session
        .read(&sh::neigh_timers(&iface))
        .await
        .ok();
    match timers {
        Some(t) => {
            let stale = limits::stale_arp(&t);
            if stale.ms >= master_down.ms {
                stale
            } else {
                master_down.clone()
            }
        }
        None => {
            d.info(format!(
                "the client's ARP timers on {iface} could not be read: the partition is judged by Master_Down_Interval alone"
            ));
            master_down.clone()
        }
    }
}

/// What a run measured, on the drill's clock.
#[derive(Default)]
struct Measured {
    takeover_ms: Option<i64>,
    failback_ms: Option<i64>,
    stale_vip: Option<bool>,
    repaired: Option<String>,
    gateway_moved: Option<bool>,
    healed_at: Option<i64>,
    /// From the fail-back until the client's ARP entry for the VIP named the MASTER again.
    client_arp_ms: Option<i64>,
    /// Whether that was looked at (the MASTER's MAC known).
    client_arp_checked: bool,
    /// When the drill restored (or the fault ended), on the drill's clock.
    restored_at: Option<i64>,
    /// nopreempt: whether the BACKUP kept the VIP after the MASTER came back.
    kept: Option<bool>,
    /// What the connections held across the fault came to.
    held: Option<HeldOutcome>,
}

impl Pair<'_, '_> {
    fn m(&self) -> &str {
        &self.master.director.name
    }

    fn b(&self) -> &str {
        &self.backup.director.name
    }

    fn vip(&self) -> String {
        self.drill.hosts.vip()
    }

    /// The inventory's preempt_delay, in ms (0: none).
    fn preempt_delay_ms(&self) -> i64 {
        self.drill
            .hosts
            .lvs
            .vrrp
            .as_ref()
            .map_or(0, |v| i64::from(v.preempt_delay) * 1000)
    }

    fn hold_secs(&self) -> u32 {
        u32::try_from(self.hold.as_secs().max(1)).unwrap_or(u32::MAX)
    }

    /// A stop or a kill leaves keepalived's start on the MASTER as its undo, in case the drill
    /// dies ([`sh::undo_after`]): after the takeover's wait, the restore and a margin, never
    /// before the drill's own restore. (A timed fault ends by itself.)
    const UNDO_TAG: &'static str = "failover-keepalived";

    fn undo_secs(&self) -> u32 {
        let secs = (self.wait + SETTLE * 2 + Duration::from_secs(10)).as_secs();
        u32::try_from(secs).unwrap_or(u32::MAX)
    }

    /// The undo left on the MASTER not run: the drill puts keepalived back itself.
    async fn cancel_undo(&self) -> Result<(), String> {
        run_ok(
            &self.master.conn,
            self.m(),
            &sh::undo_cancel(Self::UNDO_TAG),
        )
        .await
    }

    /// Opens the connections held across this run's fault; with connection sync, waits until
    /// the BACKUP holds their entries (or [`SYNC_WAIT`] passed) and says how many it holds.
    async fn hold_connections(&self) -> Result<(), String> {
        let d = self.drill;
        let Probe::Http(endpoint) = &self.probe else {
            return Ok(());
        };
        let held = Held::open(&d.hosts.client.session, endpoint, self.held_count).await?;
        let opened = held.opened();
        d.info(format!(
            "holding {opened} connections to {endpoint} open from {} (first answered by {})",
            d.hosts.client.name,
            held.answered_by()
        ));
        if d.hosts.lvs.vrrp.as_ref().is_some_and(|v| v.sync_daemon) {
            let client = d.hosts.client.host.map(|h| h.address);
            let backup = &self.backup.conn.session;
            let established = || async {
                backup
                    .read(&sh::ipvs_connections())
                    .await
                    .unwrap_or_default()
                    .iter()
                    .filter(|c| {
                        c.state == "ESTABLISHED"
                            && c.virtual_address == *endpoint
                            && client.is_none_or(|ip| c.client.address == ip)
                    })
                    .count()
            };
            let synced = wait_until(SYNC_WAIT, || async { established().await >= opened }).await;
            let count = if synced.is_some() {
                opened
            } else {
                established().await
            };
            d.info(format!(
                "  {} holds {count} of them in its connection table (synced from {})",
                self.b(),
                self.m()
            ));
        }
        if let Ok(mut slot) = self.held.lock() {
            *slot = Some(held);
        }
        Ok(())
    }

    /// The connections held since before the fault, asked again once the client's ARP entry
    /// names the BACKUP (a client still sending to a killed MASTER's stale VIP and table would
    /// prove nothing), or after [`HELD_ARP_WAIT`].
    async fn ask_held(&self, run: &Underway<'_>) -> Option<HeldOutcome> {
        let held = self.held.lock().ok()?.take()?;
        let d = self.drill;
        let b = self.b();
        if let Some(mac) = run.watch.mac_of(b) {
            let client = &d.hosts.client.session;
            let query = sh::neigh_lladdr(&self.vip());
            wait_until(HELD_ARP_WAIT, || async {
                client
                    .read(&query)
                    .await
                    .is_ok_and(|seen| seen.is_some_and(|seen| seen == mac))
            })
            .await;
        }
        let outcome = held.ask_again(held::promise(d.hosts.lvs)).await;
        run.watch.mark(format!(
            "held connections asked: {} of {} answered",
            outcome.survived, outcome.opened
        ));
        d.info(format!("  {}", outcome.words(b)));
        Some(outcome)
    }

    /// The BACKUP takes the VIP (and, with NAT, the real servers' gateway with it).
    async fn takeover(&self, run: &Underway<'_>, measured: &mut Measured) {
        let d = self.drill;
        let b = self.b();
        let backup = &self.backup.conn;
        let vip = self.vip();
        let took = wait_until(self.wait, || holds(&backup.session, &vip)).await;
        if took.is_some() {
            measured.takeover_ms = Some(run.watch.now_ms() - run.fault_at);
            run.watch.mark(format!("{b} holds the VIP"));
        }
        d.info(format!(
            "  {b} holds the VIP (seen from here {})",
            after(measured.takeover_ms)
        ));
        // NAT: the real servers' gateway must move with the VIP, or answers get lost.
        if let Some(nat) = &d.hosts.lvs.nat
            && d.hosts.lvs.forwarding() == Forwarding::Nat
        {
            let moved = holds(&backup.session, &nat.gateway.to_string()).await;
            d.info(format!(
                "  the gateway {} moved to {b} too: {}",
                nat.gateway,
                if moved { "yes" } else { "NO" }
            ));
            measured.gateway_moved = Some(moved);
        }
    }

    /// The fault's end: the drill restores a stop or a kill, a timed fault ends by itself.
    /// When, on the drill's clock.
    async fn restore(&self, run: &Underway<'_>, measured: &mut Measured) -> Result<i64, String> {
        let d = self.drill;
        let watch = run.watch;
        let m = self.m();
        let master = &self.master.conn;
        match self.kind {
            FailoverKind::Stop => {
                tokio::time::sleep(SETTLE).await;
                watch.quiet_arp().await;
                watch.mark(format!("keepalived started on {m}"));
                d.info(format!("  restoring: starting keepalived on {m}"));
                self.cancel_undo().await?;
                service(master, m, "keepalived", "start").await?;
                Ok(watch.now_ms())
            }
            FailoverKind::Kill => {
                let stale = holds(&master.session, &self.vip()).await;
                measured.stale_vip = Some(stale);
                if stale {
                    watch.mark(format!("stale VIP on {m}"));
                    d.info(format!(
                        "  {m} still holds the VIP with keepalived dead: two hosts hold it (the seed's flaw)"
                    ));
                } else {
                    d.info(format!(
                        "  {m} dropped the VIP this time (keepalived's order of deaths decides)"
                    ));
                }
                tokio::time::sleep(SETTLE).await;
                watch.quiet_arp().await;
                watch.mark(format!("lvslab up on {m}"));
                d.info(format!("  repairing: lvslab up on {m}"));
                self.cancel_undo().await?;
                let repaired = d.repair.converge(m).await?;
                d.info(format!("  lvslab up on {m}: {repaired}"));
                measured.repaired = Some(repaired);
                Ok(watch.now_ms())
            }
            FailoverKind::LinkDown | FailoverKind::Freeze | FailoverKind::Partition => {
                self.timed_fault_ends(run, measured).await
            }
        }
    }

    /// A timed fault (link down, freeze, partition) ends by itself when its script says; the
    /// client is quiet a moment before, so that its ARP entry is left as the fault made it.
    async fn timed_fault_ends(
        &self,
        run: &Underway<'_>,
        measured: &mut Measured,
    ) -> Result<i64, String> {
        let (watch, fault_at) = (run.watch, run.fault_at);
        let ends = Duration::from_millis(
            u64::try_from(fault_at).unwrap_or(0) + self.hold.as_millis() as u64,
        );
        let now = Duration::from_millis(u64::try_from(watch.now_ms()).unwrap_or(0));
        tokio::time::sleep(ends.saturating_sub(now + Duration::from_millis(1500))).await;
        watch.quiet_arp().await;
        let now = Duration::from_millis(u64::try_from(watch.now_ms()).unwrap_or(0));
        tokio::time::sleep(ends.saturating_sub(now)).await;
        let over = wait_until(Duration::from_secs(30), || self.fault_over()).await;
        if over.is_none() {
            return Err(format!(
                "the {} fault on {} did not end by itself",
                self.kind.word(),
                self.m()
            ));
        }
        let what = match self.kind {
            FailoverKind::LinkDown => "link up",
            FailoverKind::Freeze => "keepalived thawed",
            _ => "healed",
        };
        // The fault ended when its script said (the check above only confirms it).
        let scheduled = fault_at + i64::try_from(self.hold.as_millis()).unwrap_or(0);
        let at = scheduled.min(watch.now_ms());
        watch.mark_at(at, what);
        if self.kind == FailoverKind::Partition {
            measured.healed_at = Some(at);
        }
        self.drill.info(format!("  {what}"));
        Ok(at)
    }

    /// The MASTER takes the VIP back (after the preempt_delay, if any), and the client's ARP
    /// entry names it again; with nopreempt the BACKUP keeps the VIP instead.
    async fn failback(&self, run: &Underway<'_>, restored_at: i64, measured: &mut Measured) {
        let d = self.drill;
        let watch = run.watch;
        let (m, b) = (self.m(), self.b());
        let (master, backup) = (&self.master.conn, &self.backup.conn);
        let vip = self.vip();
        if !d.hosts.lvs.preempts() {
            // Long enough for the MASTER to have taken the VIP back, were it to.
            tokio::time::sleep(self.hold).await;
            let kept = holds(&backup.session, &vip).await && !holds(&master.session, &vip).await;
            measured.kept = Some(kept);
            watch.mark(format!("{b} keeps the VIP (nopreempt)"));
            d.info(format!(
                "  {}",
                if kept {
                    format!("{b} keeps the VIP: {m} came back and stays BACKUP (nopreempt)")
                } else {
                    format!(
                        "{b} did NOT keep the VIP, although nopreempt should have kept it there"
                    )
                }
            ));
            return;
        }
        let delay = self.preempt_delay_ms();
        let wait = RESTORE_WAIT + Duration::from_millis(delay.unsigned_abs());
        let back = wait_until(wait, || async {
            holds(&master.session, &vip).await && !holds(&backup.session, &vip).await
        })
        .await;
        if back.is_some() {
            measured.failback_ms = Some(watch.now_ms() - restored_at);
            watch.mark(format!("{m} holds the VIP again"));
        }
        d.info(format!(
            "  {m} holds the VIP again (seen from here {}; preemption by priority{})",
            after(measured.failback_ms),
            if delay > 0 {
                format!(", after preempt_delay {} s", delay / 1000)
            } else {
                String::new()
            }
        ));
        // The client must send to the MASTER again: its ARP entry follows the gratuitous ARPs
        // (a burst at the takeover, another 5 s later) unless one came too soon after the last
        // change (the kernel's locktime).
        if let Some(mac) = watch.mac_of(m) {
            let since = watch.now_ms();
            let client = &d.hosts.client.session;
            let query = sh::neigh_lladdr(&vip);
            let named = wait_until(RESTORE_WAIT, || async {
                client
                    .read(&query)
                    .await
                    .is_ok_and(|seen| seen.is_none_or(|seen| seen == mac))
            })
            .await;
            measured.client_arp_ms = named.map(|_| watch.now_ms() - since);
            measured.client_arp_checked = true;
            d.info(format!(
                "  the client's ARP entry for the VIP names {m} {}",
                after(measured.client_arp_ms)
            ));
        }
    }

    /// The verdict's words after the outage's: the takeover, what the fault left, the
    /// fail-back; and whether the client's ARP entry named the MASTER again.
    fn course_words(
        &self,
        record: &Record,
        measured: &Measured,
        partition: Partition,
        words: &mut Vec<String>,
    ) -> bool {
        let m = self.m();
        words.push(format!("takeover {}", after(measured.takeover_ms)));
        if let Some(moved) = measured.gateway_moved {
            words.push(format!(
                "the NAT gateway moved with it: {}",
                if moved { "yes" } else { "NO" }
            ));
        }
        if let Some(stale) = measured.stale_vip {
            words.push(if stale {
                format!("the VIP stayed on {m} with keepalived dead (the seed's flaw)")
            } else {
                format!("no stale VIP was left on {m} this time")
            });
        }
        if let Some(repair) = &measured.repaired {
            words.push(format!("lvslab up on {m}: {repair}"));
        }
        if let Some(ms) = partition.double_master_ms {
            words.push(format!(
                "two MASTERs for {ms} ms, up to {} MACs answering ARP for the VIP",
                record.most_macs()
            ));
        }
        if let Some(ms) = partition.reachable_after_heal_ms {
            words.push(format!("reachable {ms} ms after healing"));
        }
        let b = self.b();
        match (measured.kept, self.preempt_delay_ms()) {
            (Some(true), _) => words.push(format!(
                "no fail-back: {b} kept the VIP when {m} came back (nopreempt)"
            )),
            (Some(false), _) => words.push(format!(
                "{b} did NOT keep the VIP when {m} came back, although nopreempt should have kept it"
            )),
            (None, 0) => words.push(format!("fail-back {}", after(measured.failback_ms))),
            (None, delay) => words.push(format!(
                "fail-back {} (preempt_delay {} s{})",
                after(measured.failback_ms),
                delay / 1000,
                if measured.failback_ms.is_some_and(|ms| ms < delay) {
                    ": TOO SOON, keepalived did not wait"
                } else {
                    ""
                }
            )),
        }
        if record.arp_from_client {
            words.push(
                "the ARP requests came from the client itself (no macvlan could be made there): their answers refreshed its own entry"
                    .into(),
            );
        }
        match measured.client_arp_ms {
            Some(ms) if ms > 0 => {
                words.push(format!(
                    "the client's ARP entry named {m} again {ms} ms later"
                ));
                true
            }
            Some(_) => true,
            None if measured.client_arp_checked => {
                words.push(format!(
                    "the client's ARP entry for the VIP still does NOT name {m}"
                ));
                false
            }
            None => true,
        }
    }

    /// Takeover and fail-back from the directors' own VIP events where they were seen (the
    /// drill's polling from this machine is late by a round trip or more); the marks follow.
    fn exact_times(&self, record: &mut Record, fault_at: i64, measured: &mut Measured) {
        let (m, b) = (self.m(), self.b());
        if let Some(t) = record.vip_change(b, true, fault_at) {
            measured.takeover_ms = Some(t - fault_at);
            move_mark(record, &format!("{b} holds the VIP"), t);
        }
        if let Some(restored) = measured.restored_at
            && measured.failback_ms.is_some()
            && let Some(dropped) = record.vip_change(b, false, restored)
        {
            let t = record
                .vip_change(m, true, restored)
                .map_or(dropped, |added| added.max(dropped));
            measured.failback_ms = Some(t - restored);
            move_mark(record, &format!("{m} holds the VIP again"), t);
        }
    }

    /// The fault undone, as far as it goes: what was done, or why it could not be.
    async fn put_back(&self) -> Result<String, String> {
        let m = self.m();
        let master = &self.master.conn;
        if matches!(self.kind, FailoverKind::Stop | FailoverKind::Kill) {
            self.cancel_undo().await?;
        }
        match self.kind {
            FailoverKind::Stop => service(master, m, "keepalived", "start")
                .await
                .map(|()| format!("keepalived started again on {m}")),
            FailoverKind::Kill => self
                .drill
                .repair
                .converge(m)
                .await
                .map(|r| format!("keepalived started again on {m} by lvslab up ({r})")),
            FailoverKind::Freeze => run_ok(master, m, &sh::thaw("keepalived"))
                .await
                .map(|()| format!("keepalived thawed on {m}")),
            FailoverKind::LinkDown => {
                let iface = &self.master.director.interface;
                // The link comes back by itself; asking now is quicker when the host hears it.
                let _ = master
                    .session
                    .run_timeout(&sh::link_up(iface), Duration::from_secs(3))
                    .await;
                let up =
                    wait_until(self.hold + Duration::from_secs(10), || self.fault_over()).await;
                match up {
                    Some(_) => Ok(format!("{m}'s {iface} up again")),
                    None => Err(format!(
                        "{m}'s {iface} is still down (it was set to come back up by itself)"
                    )),
                }
            }
            FailoverKind::Partition => {
                let mut errors = Vec::new();
                for h in [&self.master, &self.backup] {
                    if let Err(e) = run_ok(
                        &h.conn,
                        &h.director.name,
                        &sh::unblock_vrrp(&h.director.interface),
                    )
                    .await
                    {
                        errors.push(e);
                    }
                }
                if errors.is_empty() {
                    Ok(format!(
                        "VRRP between {m} and {} let through again",
                        self.b()
                    ))
                } else {
                    Err(errors.join("; "))
                }
            }
        }
    }

    /// Whether a timed fault has ended (the link up, keepalived running, no VRRP filter).
    async fn fault_over(&self) -> bool {
        let check = |h: &DirectorHost<'_>, cmd: String| {
            let session = h.conn.session.clone();
            async move {
                session
                    .run_timeout(&cmd, Duration::from_secs(2))
                    .await
                    .is_ok_and(|o| o.success())
            }
        };
        match self.kind {
            FailoverKind::LinkDown => {
                let up = sh::link_is_up(&self.master.director.interface);
                if check(&self.master, up.clone()).await {
                    return true;
                }
                // The run's connection crossed the downed link: its TCP may wait out a long
                // retransmission timer after the link is back. A new connection does not.
                let name = &self.master.director.name;
                match self.drill.repair.reconnect(name).await {
                    Ok(fresh) => fresh
                        .run_timeout(&up, Duration::from_secs(2))
                        .await
                        .is_ok_and(|o| o.success()),
                    Err(_) => false,
                }
            }
            FailoverKind::Freeze => check(&self.master, sh::not_frozen("keepalived")).await,
            FailoverKind::Partition => {
                let free = |h: &DirectorHost<'_>| {
                    check(
                        h,
                        format!("! {{ {}; }}", sh::vrrp_blocked(&h.director.interface)),
                    )
                };
                free(&self.master).await && free(&self.backup).await
            }
            FailoverKind::Stop | FailoverKind::Kill => true,
        }
    }
}

/// What a partition left, from the record.
#[derive(Clone, Copy)]
struct Partition {
    /// How long both directors held the VIP.
    double_master_ms: Option<i64>,
    /// From healing until the client was answered again.
    reachable_after_heal_ms: Option<i64>,
}

impl Fault for Pair<'_, '_> {
    type Measured = Measured;

    fn name(&self) -> String {
        format!("drill failover --kind {}", self.kind.word())
    }

    fn words(&self) -> String {
        let (m, b) = (self.m(), self.b());
        match self.kind {
            FailoverKind::Stop => format!("keepalived stopped on {m} (SIGTERM)"),
            FailoverKind::Kill => format!("every keepalived process killed on {m} (SIGKILL)"),
            FailoverKind::LinkDown => format!(
                "{m}'s {} down for {} s",
                self.master.director.interface,
                self.hold_secs()
            ),
            FailoverKind::Freeze => {
                format!(
                    "keepalived frozen on {m} (SIGSTOP) for {} s",
                    self.hold_secs()
                )
            }
            FailoverKind::Partition => format!(
                "VRRP dropped between {m} and {b} for {} s",
                self.hold_secs()
            ),
        }
    }

    fn announce(&self, words: &str, load: &str) -> String {
        format!(
            "{}: {} holds the VIP; {words} while {load}",
            self.name(),
            self.m()
        )
    }

    fn probe(&self) -> Probe {
        self.probe.clone()
    }

    fn asks_arp(&self) -> bool {
        true
    }

    fn longest(&self) -> Duration {
        SETTLE * 4 + self.hold + self.wait + RESTORE_WAIT * 2 + Duration::from_secs(120)
    }

    fn limit(&self) -> &Limit {
        &self.limit
    }

    async fn inject(&self, _run: &Underway<'_>) -> Result<(), String> {
        let m = self.m();
        let master = &self.master.conn;
        let iface = &self.master.director.interface;
        if matches!(self.kind, FailoverKind::Stop | FailoverKind::Kill) {
            let start = sh::service_action(&master.facts.init, "keepalived", "start");
            run_ok(
                master,
                m,
                &sh::undo_after(Self::UNDO_TAG, self.undo_secs(), &start),
            )
            .await?;
        }
        match self.kind {
            FailoverKind::Stop => service(master, m, "keepalived", "stop").await,
            FailoverKind::Kill => run_ok(master, m, &sh::kill_all_at_once("keepalived")).await,
            FailoverKind::LinkDown => {
                run_ok(master, m, &sh::link_down_for(iface, self.hold_secs())).await
            }
            FailoverKind::Freeze => {
                run_ok(master, m, &sh::freeze_for("keepalived", self.hold_secs())).await
            }
            FailoverKind::Partition => {
                let block = |h: &DirectorHost<'_>| {
                    let cmd = sh::block_vrrp_for(&h.director.interface, self.hold_secs());
                    let conn = h.conn.clone();
                    let name = h.director.name.clone();
                    async move { run_ok(&conn, &name, &cmd).await }
                };
                let (x, y) = tokio::join!(block(&self.master), block(&self.backup));
                x?;
                y
            }
        }
    }

    /// The takeover, the restore, the fail-back, each change marked on the record.
    async fn follow(&self, run: &Underway<'_>) -> Result<Measured, String> {
        let mut measured = Measured::default();
        self.takeover(run, &mut measured).await;
        if measured.takeover_ms.is_some() {
            measured.held = self.ask_held(run).await;
        }
        let restored_at = self.restore(run, &mut measured).await?;
        measured.restored_at = Some(restored_at);
        self.failback(run, restored_at, &mut measured).await;
        Ok(measured)
    }

    async fn undo(&self, applied: bool) -> Undone {
        let d = self.drill;
        let m = self.m();
        if !applied {
            return Undone::Reverted("the fault was not applied yet: nothing to undo".into());
        }
        let master = &self.master.conn;
        let done = self.put_back().await;
        let vip = self.vip();
        let settled = wait_until(self.wait, || async {
            holds(&master.session, &vip).await && !holds(&self.backup.conn.session, &vip).await
        })
        .await;
        Undone::Reverted(match (done, settled) {
            (Ok(done), Some(_)) => format!("{done}; {m} holds the VIP: the lab is as before"),
            (Ok(done), None) => {
                let holders = d.hosts.vip_holders().await;
                format!(
                    "{done}, but the VIP is on {}: `lvslab up` restores the inventory's state",
                    holder_words(&holders)
                )
            }
            (Err(e), _) => format!(
                "{} could not be undone ({e}): `lvslab up` restores the inventory's state",
                self.kind.word()
            ),
        })
    }

    /// Judged by the outage against VRRP's promise for the fault; it passes only when the
    /// BACKUP took over, the MASTER took the VIP back alone, and the client follows it.
    async fn judge(&self, mut record: Record, fault_at: i64, mut measured: Measured) -> Run {
        let m = self.m();
        self.exact_times(&mut record, fault_at, &mut measured);
        let outage_ms = record.outage_ms();
        let (within, judgement) = judged(outage_ms, &self.limit);
        let holders = self.drill.hosts.vip_holders().await;
        // With nopreempt the VIP stays where the takeover put it.
        let holder = if measured.kept.is_some() { self.b() } else { m };
        let as_before = holders.len() == 1 && holders[0].0 == holder;
        let partition = Partition {
            double_master_ms: (self.kind == FailoverKind::Partition)
                .then(|| record.double_master_ms()),
            reachable_after_heal_ms: measured.healed_at.map(|h| record.outage_from(h)),
        };
        let mut words = vec![format!(
            "{} requests, {}; {judgement}",
            record.sent(),
            record.failed_words()
        )];
        let client_arp_ok = self.course_words(&record, &measured, partition, &mut words);
        words.push(format!(
            "{}: {}",
            if measured.kept.is_some() {
                format!("VIP on {holder} as nopreempt leaves it")
            } else {
                "lab as before".to_string()
            },
            if as_before {
                "yes".to_string()
            } else {
                format!("NO (VIP on {})", holder_words(&holders))
            }
        ));
        let returned = match measured.kept {
            Some(kept) => kept,
            None => measured
                .failback_ms
                .is_some_and(|ms| ms >= self.preempt_delay_ms()),
        };
        let held_ok = measured.held.as_ref().is_none_or(HeldOutcome::kept_promise);
        if let Some(held) = &measured.held {
            words.push(held.words(self.b()));
        } else if self.held_count > 0 {
            words.push("held connections: not asked again (no takeover)".into());
        }
        let pass = within
            && held_ok
            && measured.takeover_ms.is_some()
            && returned
            && as_before
            && client_arp_ok
            && measured.gateway_moved != Some(false);
        Run {
            record,
            outage_ms,
            limit: self.limit.clone(),
            pass,
            summary: words.join("; "),
            takeover_ms: measured.takeover_ms,
            failback_ms: measured.failback_ms,
            double_master_ms: partition.double_master_ms,
            reachable_after_heal_ms: partition.reachable_after_heal_ms,
            stale_vip: measured.stale_vip,
            held: measured.held,
            ..Run::default()
        }
    }
}

fn holder_words(holders: &[(String, String)]) -> String {
    if holders.is_empty() {
        "no host".into()
    } else {
        holders
            .iter()
            .map(|(h, dev)| format!("{h} ({dev})"))
            .collect::<Vec<_>>()
            .join(" and ")
    }
}

/// The mark `text` moved to `t_ms` (a moment known better after the run).
fn move_mark(record: &mut Record, text: &str, t_ms: i64) {
    if let Some(m) = record.marks.iter_mut().find(|m| m.text == text) {
        m.t_ms = t_ms;
    }
    record.marks.sort_by_key(|m| m.t_ms);
}
