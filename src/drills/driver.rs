//! The one way a drill's run goes: the client's load and the watch started, the fault marked,
//! injected and followed until it is over, all under the Ctrl-C guard; after an error or Ctrl-C
//! the fault undone; the watch stopped and the record judged, or shown as interrupted. A drill
//! is a [`Fault`]: what it breaks, how it follows it, undoes it and judges the run.

use std::cell::Cell;
use std::time::Duration;

use super::limits::Limit;
use super::record::Record;
use super::watch::{Probe, Watch};
use super::{Drill, Run, SETTLE};

/// What a drill breaks, how a run follows it to its end, how it is undone when the run cannot
/// end, and how a whole run is judged. [`drive`] runs it.
pub(super) trait Fault {
    /// What a run measured on its way, for [`Fault::judge`].
    type Measured;

    /// The run's name: `drill failover --kind stop`.
    fn name(&self) -> String;
    /// The fault in words (`keepalived stopped on node1 (SIGTERM)`): the title ends with it,
    /// and the mark of its moment says it.
    fn words(&self) -> String;
    /// The run's first line, from the fault's words and the load's (`node5 sends 20 requests a
    /// second`).
    fn announce(&self, words: &str, load: &str) -> String {
        format!("{}: {words} while {load}", self.name())
    }
    /// What the client sends.
    fn probe(&self) -> Probe;
    /// Whether the client asks ARP for the VIP from the start (see [`Watch::start`]).
    fn asks_arp(&self) -> bool;
    /// The longest a run may last: the load stops by itself after it.
    fn longest(&self) -> Duration;
    /// What a run is judged against (an interrupted run shows it too).
    fn limit(&self) -> &Limit;

    /// Breaks the lab, at `run.fault_at`.
    async fn inject(&self, run: &Underway<'_>) -> Result<(), String>;
    /// From the fault until it is over (restored by the drill, ended by itself, or past
    /// undoing), each change marked on `run.watch`; what was measured.
    async fn follow(&self, run: &Underway<'_>) -> Result<Self::Measured, String>;
    /// After an error or Ctrl-C: puts back what may still be in effect (`applied`: injected,
    /// or being injected, and not yet restored by [`Underway::restored`]), and says what was
    /// done and what is left.
    async fn undo(&self, applied: bool) -> Undone;
    /// The verdict on a run that went to its end.
    async fn judge(&self, record: Record, fault_at: i64, measured: Self::Measured) -> Run;
}

/// What [`Fault::undo`] came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Undone {
    /// What was put back (or that nothing had changed), and what could not be.
    Reverted(String),
    /// Past undoing (a reboot): what is left. An error is told alone, and an interrupted run
    /// says this in its summary and in its `interrupted` both.
    Irreversible(String),
}

/// A run under way, as its fault sees it.
pub(super) struct Underway<'w> {
    pub watch: &'w Watch,
    /// When the fault began, on the drill's clock.
    pub fault_at: i64,
    applied: &'w Cell<bool>,
}

impl Underway<'_> {
    /// The fault's own restore worked: from now on an undo has nothing to put back.
    pub fn restored(&self) {
        self.applied.set(false);
    }
}

/// One run of `fault` while the client's requests flow; `Err` when a step failed (after the
/// undo, whose words it ends with), an interrupted run when Ctrl-C came first.
pub(super) async fn drive<F: Fault>(d: &Drill<'_, '_>, fault: &F) -> Result<Run, String> {
    let words = fault.words();
    let load = format!(
        "{} sends {} requests a second",
        d.hosts.client.name, d.options.rate
    );
    d.info(fault.announce(&words, &load));
    let watch = Watch::start(
        d.hosts,
        fault.probe(),
        d.options.rate,
        fault.longest(),
        format!("{}: {words}", fault.name()),
        fault.asks_arp(),
    )
    .await?;
    let applied = Cell::new(false);
    let steps = d.cancel.guard(steps(fault, &watch, words, &applied)).await;
    match steps {
        Some(Ok((fault_at, measured))) => {
            let record = watch.finish().await?;
            Ok(fault.judge(record, fault_at, measured).await)
        }
        Some(Err(e)) => {
            let undone = fault.undo(applied.get()).await;
            let _ = watch.finish().await;
            Err(match undone {
                Undone::Reverted(words) => format!("{e}; {words}"),
                Undone::Irreversible(_) => e,
            })
        }
        None => {
            watch.mark("interrupted");
            let undone = fault.undo(applied.get()).await;
            let record = watch.finish().await?;
            Ok(interrupted(record, fault.limit(), undone))
        }
    }
}

/// The run's steps between the first requests and the last: a quiet start, the fault, its
/// course, a quiet end. When the fault began, and what its course measured.
async fn steps<F: Fault>(
    fault: &F,
    watch: &Watch,
    words: String,
    applied: &Cell<bool>,
) -> Result<(i64, F::Measured), String> {
    tokio::time::sleep(SETTLE).await;
    watch.mark(words);
    let run = Underway {
        watch,
        fault_at: watch.now_ms(),
        applied,
    };
    applied.set(true);
    fault.inject(&run).await?;
    let measured = fault.follow(&run).await?;
    tokio::time::sleep(SETTLE).await;
    Ok((run.fault_at, measured))
}

/// A run that Ctrl-C ended: what it saw, and what the undo did or left.
fn interrupted(record: Record, limit: &Limit, undone: Undone) -> Run {
    let (summary, left) = match undone {
        Undone::Reverted(words) => (format!("interrupted: {words}"), words),
        Undone::Irreversible(words) => {
            let summary = format!("interrupted: {words}");
            (summary.clone(), summary)
        }
    };
    Run {
        outage_ms: record.outage_ms(),
        record,
        limit: limit.clone(),
        pass: false,
        summary,
        interrupted: Some(left),
        ..Run::default()
    }
}
