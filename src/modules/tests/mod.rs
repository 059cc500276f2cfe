//! Every module over a fake host with state ([`host`]): one task run as a playbook through the
//! runner, so `converge` decides check mode, `changed`, diffs and boot entries as in a real run.
//! Each module's file tests that the first run reports the change and makes it, a second run
//! on the result changes nothing, `--check` reports without changing, the way back where the
//! module has one, and that a host's refusal fails the task in the host's words.

mod host;

mod address;
mod assert;
mod command;
mod file;
mod ipvs;
mod link;
mod package;
mod process;
mod reads_ahead;
mod route;
mod service;
mod sysctl;
mod wait_for;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use host::{Kind, State};

use crate::cancel::Cancel;
use crate::diagnostic::Source;
use crate::fleet::Fleet;
use crate::playbook::Playbook;
use crate::playbook::runner::{RunOptions, RunResult, Runner};
use crate::report::{Capture, Event, Reporter, Status};
use crate::templates::Templates;
use crate::transport::ExecOutput;
use crate::transport::fake::FakeHosts;

/// The one host `a`, as the inventory has it.
const INVENTORY: &str = "hosts:\n  a: { address: 10.0.0.11 }\n";

/// A fake host to run tasks on, one after another.
pub struct Lab {
    host: Arc<host::FakeHost>,
}

/// What one task did on the host.
#[derive(Debug)]
pub struct TaskRun {
    pub status: Status,
    pub msg: String,
    pub diff: Option<String>,
    /// Every line it sent.
    pub sent: Vec<String>,
    /// The lines it sent that change the host (or tried to).
    pub changes: Vec<String>,
}

impl Lab {
    pub fn new(state: State) -> Lab {
        Lab {
            host: Arc::new(host::FakeHost::new(state)),
        }
    }

    /// The host's state now.
    pub fn state(&self) -> State {
        self.host.state()
    }

    /// The playbook's own command `line` does what `effect` does to the host.
    pub fn program(
        &self,
        line: &str,
        kind: Kind,
        effect: impl Fn(&mut State) -> ExecOutput + Send + Sync + 'static,
    ) {
        self.host.program(line, kind, effect);
    }

    /// The `validate:` command `command` judges a new file's content by `check`.
    pub fn validator(
        &self,
        command: &str,
        check: impl Fn(&[u8]) -> Result<(), String> + Send + Sync + 'static,
    ) {
        self.host.validator(command, check);
    }

    /// Runs `task` (a task's YAML, as under `tasks:`).
    pub async fn run(&self, task: &str) -> TaskRun {
        self.play(task, false, false).await
    }

    /// Runs `task` with `--diff`.
    pub async fn run_diff(&self, task: &str) -> TaskRun {
        self.play(task, false, true).await
    }

    /// Runs `task` with `--check`.
    pub async fn check(&self, task: &str) -> TaskRun {
        self.play(task, true, false).await
    }

    /// Runs `task` with `--check --diff`.
    pub async fn check_diff(&self, task: &str) -> TaskRun {
        self.play(task, true, true).await
    }

    /// Runs `task` twice: the second run is on what the first made.
    pub async fn twice(&self, task: &str) -> (TaskRun, TaskRun) {
        let first = self.run(task).await;
        let second = self.run(task).await;
        (first, second)
    }

    async fn play(&self, task: &str, check: bool, diff: bool) -> TaskRun {
        let (runs, _) = self.play_all(&[task], check, diff).await;
        let [run] = <[TaskRun; 1]>::try_from(runs)
            .unwrap_or_else(|t| panic!("one task event expected, got {t:?}"));
        run
    }

    /// Runs `tasks` in one play, in order; each one's event, and the round trips the run
    /// made to the host (the facts' included). Every line sent is in the first run's `sent`.
    pub async fn run_all(&self, tasks: &[&str]) -> (Vec<TaskRun>, u32) {
        self.play_all(tasks, false, false).await
    }

    async fn play_all(&self, tasks: &[&str], check: bool, diff: bool) -> (Vec<TaskRun>, u32) {
        let (inventory, _) =
            crate::inventory::load_str(Path::new("inv.yml"), INVENTORY.to_string())
                .unwrap_or_else(|e| panic!("{e:?}"));
        let mut text = String::from("- name: p\n  hosts: a\n  tasks:\n");
        for (i, task) in tasks.iter().enumerate() {
            text.push_str(&format!("    - name: t{i}\n"));
            text.extend(task.lines().map(|l| format!("      {l}\n")));
        }
        let playbook =
            Playbook::parse(Source::named("pb.yml", text), None).unwrap_or_else(|e| panic!("{e}"));
        let templates = Templates::new(&[]).unwrap_or_else(|e| panic!("{e}"));
        playbook
            .check(&inventory, &templates, &[])
            .unwrap_or_else(|e| panic!("{e}"));
        let host = self.host.clone();
        let hosts = Arc::new(
            FakeHosts::default()
                .host_with_stdin("a", move |line, stdin| host.answer(line, stdin))
                .facts("a", &self.state().facts()),
        );
        let events = Arc::new(Mutex::new(Vec::new()));
        let reporter = Reporter::new(vec![Box::new(Capture(events.clone()))], Default::default());
        let fleet = Arc::new(Fleet::new(hosts.clone(), Duration::from_secs(5)));
        let runner = Runner::new(
            Arc::new(inventory),
            Arc::new(templates),
            fleet.clone(),
            reporter,
            RunOptions {
                check,
                diff,
                forks: 1,
                ..RunOptions::default()
            },
            Cancel::new(),
        );
        self.host.take_changes();
        runner
            .run(std::slice::from_ref(&playbook), &mut RunResult::default())
            .await;
        assert!(
            self.host.unknown().is_empty(),
            "lines the fake host does not know: {:?}",
            self.host.unknown()
        );
        let events = events.lock().map(|e| e.clone()).unwrap_or_default();
        let tasks: Vec<TaskRun> = events
            .into_iter()
            .filter_map(|e| match e {
                Event::Task {
                    status, msg, diff, ..
                } => Some(TaskRun {
                    status,
                    msg,
                    diff,
                    sent: Vec::new(),
                    changes: Vec::new(),
                }),
                _ => None,
            })
            .collect();
        let round_trips = fleet.round_trips().get("a").copied().unwrap_or(0);
        let (mut sent, mut changes) = (hosts.log("a"), self.host.take_changes());
        let runs = tasks
            .into_iter()
            .map(|run| TaskRun {
                sent: std::mem::take(&mut sent),
                changes: std::mem::take(&mut changes),
                ..run
            })
            .collect();
        (runs, round_trips)
    }
}
