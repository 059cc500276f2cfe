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
    /// undoing), each change marked on `run.watch`; what was measured. A run that gets to its
    /// end has nothing left to undo.
    async fn follow(&self, run: &Underway<'_>) -> Result<Self::Measured, String>;
    /// After an error or Ctrl-C: puts back what may still be in effect (`applied`: injected,
    /// or being injected, and not declared [`Underway::restored`] since), and says what was
    /// done and what is left. Not `applied`: it changes nothing, only says so.
    async fn undo(&self, applied: bool) -> Undone;
    /// The verdict on a run that went to its end.
    async fn judge(&self, record: Record, fault_at: i64, measured: Self::Measured) -> Run;
}

/// The summary with the slowest answers after its first part (the requests and how many
/// failed), beside the outage that follows it.
fn with_slowest(summary: &str, slowest: &super::record::Slowest) -> String {
    match summary.split_once("; ") {
        Some((requests, rest)) => format!("{requests}; {}; {rest}", slowest.words()),
        None => format!("{summary}; {}", slowest.words()),
    }
}

/// What [`Fault::undo`] came to.
#[derive(Debug)]
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
            let mut run = fault.judge(record, fault_at, measured).await;
            run.slowest = run.record.slowest(fault_at);
            if let Some(slowest) = run.slowest {
                run.summary = with_slowest(&run.summary, &slowest);
            }
            Ok(run)
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

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::cancel::Cancel;
    use crate::drills::{DrillOptions, Repair};
    use crate::live::LvsHosts;
    use crate::report::{Event, Observer, Reporter};
    use crate::transport::fake::{FakeHosts, out};
    use crate::transport::{BoxFuture, Session};

    /// A lab over the scripted transport: director d1, real server node2, a client; every
    /// command answers `0` (a clock, an empty sample, a load that sent nothing).
    const LAB: &str = "lvs: { vip: 10.0.0.100, scheduler: rr }\nhosts:\n  \
        d1: { address: 10.0.0.11, interface: eth0 }\n  \
        node2: { address: 10.0.0.12, interface: eth0 }\n  \
        client: { address: 10.0.0.10, interface: eth0 }\ngroups:\n  \
        directors: { hosts: [d1] }\n  real_servers: { hosts: [node2] }\n  \
        clients: { hosts: [client] }\n";

    struct NoRepair;

    impl Repair for NoRepair {
        fn converge<'a>(&'a self, host: &'a str) -> BoxFuture<'a, Result<String, String>> {
            Box::pin(async move { Err(format!("no repair of {host} here")) })
        }
        fn reconnect<'a>(&'a self, host: &'a str) -> BoxFuture<'a, Result<Session, String>> {
            Box::pin(async move { Err(format!("no new connection to {host} here")) })
        }
    }

    /// The info lines a drill emitted.
    #[derive(Default)]
    struct Lines(Mutex<Vec<String>>);

    impl Observer for Arc<Lines> {
        fn event(&self, event: &Event) {
            if let (Event::Info { text }, Ok(mut lines)) = (event, self.0.lock()) {
                lines.push(text.clone());
            }
        }
    }

    /// How the fake fault's steps go.
    #[derive(Clone, Copy, PartialEq)]
    enum Course {
        /// Injected, restored, over.
        Whole,
        /// The injection fails.
        InjectFails,
        /// Restored, then a later step fails.
        FailsAfterRestore,
        /// Ctrl-C while the fault is in effect.
        InterruptedMidway,
    }

    /// A fault that does nothing to any host and notes each call.
    struct Scripted {
        course: Course,
        irreversible: bool,
        cancel: Cancel,
        limit: Limit,
        calls: RefCell<Vec<String>>,
    }

    impl Scripted {
        fn new(course: Course, cancel: &Cancel) -> Scripted {
            Scripted {
                course,
                irreversible: false,
                cancel: cancel.clone(),
                limit: Limit::new(1000, "a test"),
                calls: RefCell::new(Vec::new()),
            }
        }

        fn call(&self, what: impl Into<String>) {
            self.calls.borrow_mut().push(what.into());
        }

        fn calls(&self) -> Vec<String> {
            self.calls.borrow().clone()
        }
    }

    impl Fault for Scripted {
        type Measured = i64;

        fn name(&self) -> String {
            "drill test".into()
        }

        fn words(&self) -> String {
            "node2 broken".into()
        }

        fn probe(&self) -> Probe {
            Probe::Ping("10.0.0.100".into())
        }

        fn asks_arp(&self) -> bool {
            false
        }

        fn longest(&self) -> Duration {
            Duration::from_secs(30)
        }

        fn limit(&self) -> &Limit {
            &self.limit
        }

        async fn inject(&self, run: &Underway<'_>) -> Result<(), String> {
            self.call(format!("inject at the fault's mark: {}", run.fault_at >= 0));
            match self.course {
                Course::InjectFails => Err("node2: inject failed".into()),
                _ => Ok(()),
            }
        }

        async fn follow(&self, run: &Underway<'_>) -> Result<i64, String> {
            self.call("follow");
            match self.course {
                Course::InterruptedMidway => {
                    self.cancel.cancel();
                    std::future::pending::<()>().await;
                    Ok(0)
                }
                Course::FailsAfterRestore => {
                    run.restored();
                    Err("node2 did not come back".into())
                }
                _ => {
                    run.watch.mark("node2 restored");
                    run.restored();
                    Ok(42)
                }
            }
        }

        async fn undo(&self, applied: bool) -> Undone {
            self.call(format!("undo, applied: {applied}"));
            let words = format!("node2 put back (it was applied: {applied})");
            if self.irreversible {
                Undone::Irreversible(words)
            } else {
                Undone::Reverted(words)
            }
        }

        async fn judge(&self, record: Record, _fault_at: i64, measured: i64) -> Run {
            self.call(format!("judge {measured}"));
            Run {
                pass: true,
                summary: format!("{} marks", record.marks.len()),
                record,
                ..Run::default()
            }
        }
    }

    /// Drives `fault` once on the scripted lab; the run, and the lines the drill said.
    async fn drive_on_lab(fault: &Scripted, cancel: &Cancel) -> (Result<Run, String>, Vec<String>) {
        let (inventory, _) =
            crate::inventory::load_str(std::path::Path::new("i.yml"), LAB.to_string())
                .expect("the test's inventory");
        let lvs = inventory.lvs.as_ref().expect("the test's lvs");
        let fakes = ["d1", "node2", "client"]
            .into_iter()
            .fold(FakeHosts::default(), |f, name| {
                f.host(name, |_| out(0, "0"))
            });
        let fleet = crate::fleet::Fleet::new(Arc::new(fakes), Duration::from_secs(5));
        let lines = Arc::new(Lines::default());
        let reporter = Reporter::new(
            vec![Box::new(lines.clone())],
            crate::secrets::Secrets::new(vec![]),
        );
        let hosts = LvsHosts::connect(&inventory, lvs, &fleet, &reporter).await;
        let drill = Drill {
            hosts: &hosts,
            reporter: &reporter,
            cancel,
            options: DrillOptions {
                rate: 10,
                repeat: 1,
                svg: None,
                margin_ms: crate::drills::limits::DEFAULT_MARGIN_MS,
            },
            repair: &NoRepair,
        };
        let run = drive(&drill, fault).await;
        let said = lines.0.lock().map(|l| l.clone()).unwrap_or_default();
        (run, said)
    }

    fn marks(run: &Run) -> Vec<&str> {
        run.record.marks.iter().map(|m| m.text.as_str()).collect()
    }

    #[tokio::test]
    async fn a_whole_run_is_judged_and_leaves_nothing_to_undo() {
        let cancel = Cancel::new();
        let fault = Scripted::new(Course::Whole, &cancel);
        let (run, said) = drive_on_lab(&fault, &cancel).await;
        let run = run.expect("a whole run");
        assert_eq!(
            said,
            ["drill test: node2 broken while client sends 10 requests a second"]
        );
        assert_eq!(run.record.title, "drill test: node2 broken");
        assert_eq!(marks(&run), ["node2 broken", "node2 restored"]);
        assert_eq!((run.pass, run.summary.as_str()), (true, "2 marks"));
        assert_eq!(run.interrupted, None);
        assert_eq!(
            fault.calls(),
            ["inject at the fault's mark: true", "follow", "judge 42"]
        );
    }

    #[tokio::test]
    async fn a_failed_injection_is_undone_and_the_error_says_so() {
        let cancel = Cancel::new();
        let fault = Scripted::new(Course::InjectFails, &cancel);
        let (run, _) = drive_on_lab(&fault, &cancel).await;
        assert_eq!(
            run.err().as_deref(),
            Some("node2: inject failed; node2 put back (it was applied: true)")
        );
        assert_eq!(
            fault.calls(),
            ["inject at the fault's mark: true", "undo, applied: true"]
        );
    }

    #[tokio::test]
    async fn a_step_failing_after_the_restore_leaves_the_undo_nothing_to_put_back() {
        let cancel = Cancel::new();
        let fault = Scripted::new(Course::FailsAfterRestore, &cancel);
        let (run, _) = drive_on_lab(&fault, &cancel).await;
        assert_eq!(
            run.err().as_deref(),
            Some("node2 did not come back; node2 put back (it was applied: false)")
        );
        assert_eq!(
            fault.calls(),
            [
                "inject at the fault's mark: true",
                "follow",
                "undo, applied: false"
            ]
        );
    }

    #[tokio::test]
    async fn ctrl_c_midway_undoes_the_fault_and_ends_the_run_as_interrupted() {
        let cancel = Cancel::new();
        let fault = Scripted::new(Course::InterruptedMidway, &cancel);
        let (run, _) = drive_on_lab(&fault, &cancel).await;
        let run = run.expect("an interrupted run is a run");
        assert_eq!(marks(&run), ["node2 broken", "interrupted"]);
        assert!(!run.pass);
        assert_eq!(
            run.summary,
            "interrupted: node2 put back (it was applied: true)"
        );
        assert_eq!(
            run.interrupted.as_deref(),
            Some("node2 put back (it was applied: true)")
        );
        assert_eq!((run.limit.ms, run.limit.why.as_str()), (1000, "a test"));
        assert_eq!(
            fault.calls(),
            [
                "inject at the fault's mark: true",
                "follow",
                "undo, applied: true"
            ]
        );
    }

    #[tokio::test]
    async fn ctrl_c_before_the_fault_undoes_nothing() {
        let cancel = Cancel::new();
        cancel.cancel();
        let fault = Scripted::new(Course::Whole, &cancel);
        let (run, _) = drive_on_lab(&fault, &cancel).await;
        let run = run.expect("an interrupted run is a run");
        assert_eq!(marks(&run), ["interrupted"]);
        assert_eq!(fault.calls(), ["undo, applied: false"]);
    }

    #[tokio::test]
    async fn a_fault_past_undoing_is_told_as_it_is() {
        let cancel = Cancel::new();
        let mut fault = Scripted::new(Course::InjectFails, &cancel);
        fault.irreversible = true;
        let (run, _) = drive_on_lab(&fault, &cancel).await;
        // The error alone: nothing was put back.
        assert_eq!(run.err().as_deref(), Some("node2: inject failed"));

        let cancel = Cancel::new();
        let mut fault = Scripted::new(Course::InterruptedMidway, &cancel);
        fault.irreversible = true;
        let (run, _) = drive_on_lab(&fault, &cancel).await;
        let run = run.expect("an interrupted run is a run");
        // As a reboot's run has always said it, in both.
        let left = "interrupted: node2 put back (it was applied: true)";
        assert_eq!(
            (run.summary.as_str(), run.interrupted.as_deref()),
            (left, Some(left))
        );
    }
}
