//! Running plays. This file is the scheduling: plays in order; in a play, hosts in parallel (at
//! most `forks`), each host's tasks in order; a failed host stops for the rest of the run while
//! the others go on; handlers at the end of a play for the hosts that notified them; Ctrl-C
//! arrives as a [`Cancel`] and stops launching work. What a task means (loop, when, register,
//! changed_when, ...) is in [`task`]; which variables it sees, in [`vars`].

mod task;
mod vars;

pub use vars::BUILTINS;

#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;

use minijinja::Value;
use tokio::sync::Semaphore;

use super::Playbook;
use super::model::{Play, Task};
use crate::cancel::Cancel;
use crate::fleet::{Connected, Fleet};
use crate::inventory::{Host, Inventory, Vars};
use crate::report::{Event, Reporter};
use crate::templates::Templates;

/// The plays a run goes through from `start` (playbook, play, task indexes, as
/// [`Runner::start_of`] gives them), each with how many of its first tasks it skips: the plays
/// before the start's are left out, and in the start's play the tasks before it.
fn plays_from(
    playbooks: &[Playbook],
    (start_pb, start_play, start_task): (usize, usize, usize),
) -> impl Iterator<Item = (&Play, usize)> {
    playbooks.iter().enumerate().flat_map(move |(b, pb)| {
        pb.plays.iter().enumerate().filter_map(move |(p, play)| {
            match (b, p).cmp(&(start_pb, start_play)) {
                std::cmp::Ordering::Less => None,
                std::cmp::Ordering::Equal => Some((play, start_task)),
                std::cmp::Ordering::Greater => Some((play, 0)),
            }
        })
    })
}

#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub check: bool,
    pub diff: bool,
    pub forks: usize,
    /// Only tasks with one of these tags (`None`: all).
    pub tags: Option<Vec<String>>,
    /// Not the tasks with one of these tags.
    pub skip_tags: Vec<String>,
    /// Start at the first task of this name (the ones before it, in earlier plays too, are
    /// skipped).
    pub start_at_task: Option<String>,
    pub extra_vars: Vars,
    /// Hosts the run may touch (`--limit`); `None`: all.
    pub limit: Option<HashSet<String>>,
}

/// How the run ended, for the exit code.
#[derive(Debug, Clone, Default)]
pub struct RunResult {
    pub failed: HashSet<String>,
    pub unreachable: HashSet<String>,
    pub interrupted: bool,
}

/// How one host's part of a play ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostEnd {
    Done,
    Failed,
    Unreachable,
}

pub struct Runner {
    pub inventory: Arc<Inventory>,
    pub templates: Arc<Templates>,
    pub fleet: Arc<Fleet>,
    pub reporter: Reporter,
    pub options: RunOptions,
    pub cancel: Cancel,
    /// The template variables that are the same for every host and task (`lvs`, `groups`,
    /// `hostvars`), converted once per run: with 50 hosts, rebuilding `hostvars` for every task
    /// of every host was a quarter of lvslab's CPU time.
    shared: std::sync::OnceLock<Value>,
}

/// How many rounds of reads [`Runner::fetch_reads_ahead`] fetches before the tasks run: a
/// task's first reads, then those that need their answers.
const READ_AHEAD_LEVELS: usize = 2;

/// Per-host state that lives across plays: registered results.
type Registered = Arc<std::sync::Mutex<HashMap<String, Vars>>>;

impl Runner {
    pub fn new(
        inventory: Arc<Inventory>,
        templates: Arc<Templates>,
        fleet: Arc<Fleet>,
        reporter: Reporter,
        options: RunOptions,
        cancel: Cancel,
    ) -> Self {
        Runner {
            inventory,
            templates,
            fleet,
            reporter,
            options,
            cancel,
            shared: std::sync::OnceLock::new(),
        }
    }

    /// Run playbooks one after another. Stops launching work when cancelled.
    pub async fn run(&self, playbooks: &[Playbook], result: &mut RunResult) {
        let registered: Registered = Arc::default();
        self.connect_ahead(playbooks);
        // `--start-at-task`: the plays before the one holding it are skipped, and in that one
        // the tasks before it (the command refuses a name no task has).
        let start = match &self.options.start_at_task {
            None => Some((0, 0, 0)),
            Some(name) => Self::start_of(playbooks, name),
        };
        let Some(start) = start else {
            return;
        };
        self.reporter.emit(Event::RunPlan {
            tasks: self.planned(playbooks, start),
        });
        for (play, skip) in plays_from(playbooks, start) {
            if result.interrupted {
                return;
            }
            self.run_play(play, skip, result, &registered).await;
        }
    }

    /// Where `--start-at-task NAME` starts, as (playbook, play, task) indexes; `None`: no
    /// task has that name.
    pub fn start_of(playbooks: &[Playbook], name: &str) -> Option<(usize, usize, usize)> {
        playbooks.iter().enumerate().find_map(|(b, pb)| {
            pb.plays.iter().enumerate().find_map(|(p, play)| {
                play.tasks
                    .iter()
                    .position(|t| t.value.name.as_deref() == Some(name))
                    .map(|t| (b, p, t))
            })
        })
    }

    /// The task results the run expects from `start` on: each play's selected tasks times
    /// the hosts it runs on.
    fn planned(&self, playbooks: &[Playbook], start: (usize, usize, usize)) -> u64 {
        let mut total = 0;
        for (play, skip) in plays_from(playbooks, start) {
            let tasks = play
                .tasks
                .iter()
                .skip(skip)
                .filter(|t| self.tag_selected(&t.value))
                .count();
            total += (tasks * self.in_scope(&play.hosts.value).len()) as u64;
        }
        total
    }

    /// Hosts of the inventory matched by `pattern`, within `--limit`.
    fn in_scope(&self, pattern: &str) -> Vec<Host> {
        self.inventory
            .select(pattern)
            .unwrap_or_default()
            .into_iter()
            .filter(|h| {
                self.options
                    .limit
                    .as_ref()
                    .is_none_or(|l| l.contains(&h.name))
            })
            .cloned()
            .collect()
    }

    /// Open every connection the run will need now, in the background, so a later play's hosts
    /// do not wait for their handshakes after the earlier plays (errors surface when used).
    fn connect_ahead(&self, playbooks: &[Playbook]) {
        let mut names: Vec<String> = Vec::new();
        for play in playbooks.iter().flat_map(|p| p.plays.iter()) {
            for h in self.in_scope(&play.hosts.value) {
                if !names.contains(&h.name) {
                    names.push(h.name.clone());
                }
            }
        }
        for name in names {
            if let Some(host) = self.inventory.host(&name).cloned() {
                let fleet = self.fleet.clone();
                tokio::spawn(async move {
                    let _ = fleet.connect(&host).await;
                });
            }
        }
    }

    async fn run_play(
        &self,
        play: &Play,
        skip: usize,
        result: &mut RunResult,
        registered: &Registered,
    ) {
        let hosts: Vec<Host> = self
            .in_scope(&play.hosts.value)
            .into_iter()
            .filter(|h| !result.failed.contains(&h.name) && !result.unreachable.contains(&h.name))
            .collect();
        if hosts.is_empty() {
            return;
        }
        self.reporter.emit(Event::PlayStart {
            play: play.name.clone(),
            hosts: hosts.iter().map(|h| h.name.clone()).collect(),
        });
        self.fan_out(&hosts, result, |host, conn| {
            self.run_host(play, skip, host, conn, registered)
        })
        .await;
    }

    /// Runs `work` on each host, at most `forks` at once, after connecting to it; a host that
    /// cannot be reached is reported and counted as unreachable. When cancelled, the work in
    /// flight is dropped (its remote commands are ended) and the result says so.
    pub async fn fan_out<'h, F, Fut>(&self, hosts: &'h [Host], result: &mut RunResult, work: F)
    where
        F: Fn(&'h Host, Arc<Connected>) -> Fut,
        Fut: Future<Output = HostEnd>,
    {
        let forks = Arc::new(Semaphore::new(self.options.forks.max(1)));
        let work = &work;
        let runs = hosts.iter().map(|host| {
            let forks = forks.clone();
            async move {
                let _permit = forks.acquire().await.ok();
                let end = match self.fleet.connect(host).await {
                    Ok(conn) => work(host, conn).await,
                    Err(e) => {
                        self.reporter.emit(Event::Unreachable {
                            host: host.name.clone(),
                            error: e.to_string(),
                        });
                        HostEnd::Unreachable
                    }
                };
                (host.name.clone(), end)
            }
        });
        match self.cancel.guard(futures::future::join_all(runs)).await {
            Some(outcomes) => {
                for (name, end) in outcomes {
                    match end {
                        HostEnd::Done => {}
                        HostEnd::Failed => {
                            result.failed.insert(name);
                        }
                        HostEnd::Unreachable => {
                            result.unreachable.insert(name);
                        }
                    }
                }
            }
            None => {
                result.interrupted = true;
                // The dropped commands send their kill requests from spawned tasks: let them go out.
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                self.reporter.emit(Event::Warning {
                    text: "interrupted: remote commands in flight were ended; nothing more was started".into(),
                });
            }
        }
    }

    async fn run_host(
        &self,
        play: &Play,
        skip: usize,
        host: &Host,
        conn: Arc<Connected>,
        registered: &Registered,
    ) -> HostEnd {
        let mut notified: Vec<String> = Vec::new();
        let tasks: Vec<&Task> = play
            .tasks
            .iter()
            .skip(skip)
            .map(|t| &t.value)
            .filter(|t| self.tag_selected(t))
            .collect();
        // The play's reads, fetched ahead in one round trip; not on a host where a command
        // already forgot answers not taken yet: it is being changed (a first converge), and
        // its next answers would be thrown away too. (Fetched again after each such command,
        // a first `up` in the VM tier took 24 s instead of 18 s: each change ran every later
        // task's queries again.)
        if conn.session.forgotten() == 0 {
            self.fetch_reads_ahead(play, &tasks, host, &conn, registered)
                .await;
        }
        for task in &tasks {
            let outcome = self.run_task(play, task, host, &conn, registered).await;
            if !matches!(outcome, task::TaskEnd::Ok { .. }) {
                conn.session.forget_reads();
            }
            match outcome {
                task::TaskEnd::Ok { changed } => {
                    if changed {
                        for n in &task.notify.0 {
                            if !notified.contains(n) {
                                notified.push(n.clone());
                            }
                        }
                    }
                }
                task::TaskEnd::Failed => return HostEnd::Failed,
                task::TaskEnd::Unreachable => return HostEnd::Unreachable,
            }
        }
        conn.session.forget_reads();
        for handler in &play.handlers {
            let handler = &handler.value;
            if !handler.name.as_ref().is_some_and(|n| notified.contains(n)) {
                continue;
            }
            match self.run_task(play, handler, host, &conn, registered).await {
                task::TaskEnd::Ok { .. } => {}
                task::TaskEnd::Failed => return HostEnd::Failed,
                task::TaskEnd::Unreachable => return HostEnd::Unreachable,
            }
        }
        HostEnd::Done
    }

    /// Fetches ahead, in one round trip per level, the reads `tasks` will make on `host`:
    /// each task's query is run on a session that only collects (nothing runs), the reads it
    /// asks for are sent together, and the queries run again on the answers for the reads
    /// that depend on them (a boot entry after its setting), up to [`READ_AHEAD_LEVELS`]
    /// times. Each task then takes its answers instead of asking the host; a command that may
    /// change the host forgets the rest (see [`crate::transport::Session`]).
    async fn fetch_reads_ahead(
        &self,
        play: &Play,
        tasks: &[&Task],
        host: &Host,
        conn: &Connected,
        registered: &Registered,
    ) {
        let started = std::time::Instant::now();
        let trips_before = conn.session.round_trips();
        let mut fetched = 0;
        // Only the tasks that asked for a read not fetched yet are asked again at the next
        // level: the others' queries ran to their end on the answers already there.
        let mut pending: Vec<&Task> = tasks.to_vec();
        for _ in 0..READ_AHEAD_LEVELS {
            let probe = conn.session.probing();
            let mut asking = Vec::new();
            for task in pending {
                let before = probe.misses();
                self.collect_reads(play, task, host, conn, registered, &probe)
                    .await;
                if probe.misses() > before {
                    asking.push(task);
                }
            }
            pending = asking;
            let reads = probe.collected();
            if reads.is_empty() {
                break;
            }
            fetched += reads.len();
            // A batch that failed (a query that hangs, a connection lost) is not sent again:
            // each task's own read meets the failure and says so.
            if !conn.session.prefetch(&reads).await {
                break;
            }
        }
        if fetched > 0 {
            self.reporter.emit(Event::ReadsAhead {
                host: host.name.clone(),
                reads: fetched,
                round_trips: conn.session.round_trips() - trips_before,
                ms: started.elapsed().as_millis() as u64,
            });
        }
    }

    fn tag_selected(&self, task: &super::model::Task) -> bool {
        if task
            .tags
            .0
            .iter()
            .any(|t| self.options.skip_tags.contains(t))
        {
            return false;
        }
        match &self.options.tags {
            None => true,
            Some(tags) => task
                .tags
                .0
                .iter()
                .any(|t| tags.contains(t) || t == "always"),
        }
    }
}
