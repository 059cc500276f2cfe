//! The runner's semantics over the scripted fake transport: no hosts, no root.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{RunOptions, RunResult, Runner};
use crate::cancel::Cancel;
use crate::diagnostic::Source;
use crate::fleet::Fleet;
use crate::playbook::Playbook;
use crate::report::{Capture, Event, Reporter, Status};
use crate::templates::Templates;
use crate::transport::ExecOutput;
use crate::transport::fake::{FakeHosts, out};

const INVENTORY: &str = "\
hosts:
  a: { address: 10.0.0.1 }
  b: { address: 10.0.0.2 }
  c: { address: 10.0.0.3 }
groups:
  web: { hosts: [a, b] }
";

struct Run {
    result: RunResult,
    events: Vec<Event>,
    hosts: Arc<FakeHosts>,
}

impl Run {
    /// (status, task title, message) of host `h`'s task events.
    fn tasks(&self, h: &str) -> Vec<(Status, String, String)> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::Task {
                    host,
                    task,
                    status,
                    msg,
                    ..
                } if host == h => Some((*status, task.clone(), msg.clone())),
                _ => None,
            })
            .collect()
    }

    fn statuses(&self, h: &str) -> Vec<Status> {
        self.tasks(h).into_iter().map(|t| t.0).collect()
    }

    fn sent(&self, h: &str) -> Vec<String> {
        self.hosts.log(h)
    }
}

/// A responder: `step N` exits N's number after `rc=`, anything else exits 0 with its line.
fn steps(cmd: &str) -> ExecOutput {
    match cmd.strip_prefix("exit ") {
        Some(n) => out(n.trim().parse().unwrap_or(1), ""),
        None => out(0, &format!("{cmd}\n")),
    }
}

async fn run_with(playbook: &str, hosts: FakeHosts, options: RunOptions, cancel: Cancel) -> Run {
    let (inventory, _) =
        crate::inventory::load_str(Path::new("inv.yml"), INVENTORY.to_string()).unwrap();
    let playbook = Playbook::parse(Source::named("pb.yml", playbook.to_string()), None)
        .unwrap_or_else(|e| panic!("{e}"));
    let templates = Templates::new(&[]).unwrap();
    playbook
        .check(&inventory, &templates, &[])
        .unwrap_or_else(|e| panic!("{e}"));
    let hosts = Arc::new(hosts);
    let events = Arc::new(Mutex::new(Vec::new()));
    let reporter = Reporter::new(vec![Box::new(Capture(events.clone()))], Default::default());
    let runner = Runner::new(
        Arc::new(inventory),
        Arc::new(templates),
        Arc::new(Fleet::new(hosts.clone(), Duration::from_secs(5))),
        reporter,
        RunOptions {
            forks: 8,
            ..options
        },
        cancel,
    );
    let mut result = RunResult::default();
    runner
        .run(std::slice::from_ref(&playbook), &mut result)
        .await;
    let events = events.lock().unwrap().clone();
    Run {
        result,
        events,
        hosts,
    }
}

async fn run(playbook: &str, hosts: FakeHosts) -> Run {
    run_with(playbook, hosts, RunOptions::default(), Cancel::new()).await
}

fn all_hosts() -> FakeHosts {
    FakeHosts::default()
        .host("a", steps)
        .host("b", steps)
        .host("c", steps)
}

#[tokio::test]
async fn loop_and_when_decide_what_is_sent() {
    let r = run(
        "- name: p\n  hosts: web\n  tasks:\n\
         \x20   - name: greet\n      shell: \"echo {{ item }}\"\n      loop: [one, \"{{ inventory_hostname }}\"]\n\
         \x20   - name: only on a\n      shell: echo only-a\n      when: inventory_hostname == 'a'\n",
        all_hosts(),
    )
    .await;
    assert_eq!(r.sent("a"), vec!["echo one", "echo a", "echo only-a"]);
    assert_eq!(r.sent("b"), vec!["echo one", "echo b"]);
    assert_eq!(
        r.statuses("b"),
        vec![Status::Changed, Status::Changed, Status::Skipped]
    );
    assert!(r.sent("c").is_empty(), "c is not in the play's group");
    // The overall progress counts the play's tasks on its hosts (loops add results later).
    let planned: Vec<u64> = r
        .events
        .iter()
        .filter_map(|e| match e {
            Event::RunPlan { tasks } => Some(*tasks),
            _ => None,
        })
        .collect();
    assert_eq!(planned, [4], "2 tasks x hosts a and b");
}

#[tokio::test]
async fn register_feeds_later_tasks_and_changed_when_failed_when_judge() {
    let r = run(
        "- name: p\n  hosts: a\n  tasks:\n\
         \x20   - name: probe\n      shell: exit 3\n      register: probe\n      changed_when: false\n      failed_when: probe.rc not in [0, 3]\n\
         \x20   - name: follow\n      shell: \"echo rc={{ probe.rc }}\"\n      changed_when: \"'rc=3' in result.stdout\"\n\
         \x20   - name: judged failed\n      shell: echo fine\n      failed_when: true\n\
         \x20   - name: never\n      shell: echo never\n",
        all_hosts(),
    )
    .await;
    assert_eq!(r.sent("a"), vec!["exit 3", "echo rc=3", "echo fine"]);
    assert_eq!(
        r.statuses("a"),
        vec![Status::Ok, Status::Changed, Status::Failed]
    );
    assert!(r.result.failed.contains("a"));
}

#[tokio::test]
async fn handlers_run_once_at_the_end_for_hosts_that_changed() {
    let r = run(
        "- name: p\n  hosts: web\n  tasks:\n\
         \x20   - name: change\n      shell: echo change\n      notify: restart\n      when: inventory_hostname == 'a'\n\
         \x20   - name: again\n      shell: echo again\n      notify: restart\n      changed_when: inventory_hostname == 'a'\n\
         \x20   - name: last\n      shell: echo last\n\
         \x20 handlers:\n    - name: restart\n      shell: echo restarted\n",
        all_hosts(),
    )
    .await;
    assert_eq!(
        r.sent("a"),
        vec!["echo change", "echo again", "echo last", "echo restarted"]
    );
    assert_eq!(
        r.sent("b"),
        vec!["echo again", "echo last"],
        "b changed nothing"
    );
}

#[tokio::test]
async fn a_failed_host_stops_and_the_others_go_on() {
    let hosts = FakeHosts::default()
        .host("a", |cmd| {
            if cmd == "echo one" {
                out(1, "")
            } else {
                out(0, "")
            }
        })
        .host("b", steps);
    let r = run(
        "- name: p\n  hosts: web\n  tasks:\n    - shell: echo one\n    - shell: echo two\n\
         - name: q\n  hosts: all\n  tasks:\n    - shell: echo three\n",
        hosts,
    )
    .await;
    assert_eq!(r.sent("a"), vec!["echo one"]);
    assert_eq!(r.sent("b"), vec!["echo one", "echo two", "echo three"]);
    assert!(r.result.failed.contains("a"));
    assert!(
        r.result.unreachable.contains("c"),
        "c has no script: unreachable"
    );
    assert!(r.events.iter().any(
        |e| matches!(e, Event::Unreachable { host, error } if host == "c" && error.contains("no answer"))
    ));
}

#[tokio::test]
async fn ignore_errors_lets_the_host_go_on() {
    let r = run(
        "- name: p\n  hosts: a\n  tasks:\n    - shell: exit 1\n      ignore_errors: true\n    - shell: echo after\n",
        all_hosts(),
    )
    .await;
    assert_eq!(r.sent("a"), vec!["exit 1", "echo after"]);
    assert!(r.result.failed.is_empty());
    assert!(
        r.tasks("a")[0].2.contains("(ignored)"),
        "{:?}",
        r.tasks("a")
    );
}

#[tokio::test]
async fn check_mode_sends_no_command() {
    let r = run_with(
        "- name: p\n  hosts: web\n  tasks:\n    - shell: echo change-me\n    - command: touch /tmp/x\n",
        all_hosts(),
        RunOptions {
            check: true,
            ..RunOptions::default()
        },
        Cancel::new(),
    )
    .await;
    assert!(r.sent("a").is_empty(), "{:?}", r.sent("a"));
    assert_eq!(r.statuses("a"), vec![Status::Skipped, Status::Skipped]);
}

#[tokio::test]
async fn a_play_variable_that_does_not_render_fails_the_task() {
    let r = run(
        "- name: p\n  hosts: a\n  vars:\n    bad: \"{{ 1 / 0 }}\"\n  tasks:\n    - shell: echo x\n",
        all_hosts(),
    )
    .await;
    assert!(r.sent("a").is_empty());
    let (status, _, msg) = &r.tasks("a")[0];
    assert_eq!(*status, Status::Failed);
    assert!(msg.contains("play variable `bad`"), "{msg}");
}

#[tokio::test]
async fn cancellation_ends_the_run_as_interrupted() {
    let cancel = Cancel::new();
    let hosts = FakeHosts::default().host("a", |_| out(0, ""));
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        trigger.cancel();
    });
    let r = run_with(
        "- name: p\n  hosts: a\n  tasks:\n    - shell: sleep 5000\n    - shell: echo after\n\
         - name: q\n  hosts: a\n  tasks:\n    - shell: echo next-play\n",
        hosts,
        RunOptions::default(),
        cancel,
    )
    .await;
    assert!(r.result.interrupted);
    assert_eq!(
        r.sent("a"),
        vec!["sleep 5000"],
        "nothing started after Ctrl-C"
    );
}

/// A host where the VIP is on lo already, and the boot entry for it holds `entry`.
fn vip_on_lo(entry: &'static str) -> FakeHosts {
    let list_lo = crate::transport::sh::address_list("lo").line().to_string();
    FakeHosts::default().host("a", move |cmd| {
        if cmd == list_lo {
            out(0, "198.18.0.100/32 lo:3\n")
        } else if cmd.starts_with("cat /etc/lvslab-boot.d/") {
            out(0, entry)
        } else if cmd.starts_with("cd /etc/lvslab-boot.d") {
            out(
                0,
                if entry.is_empty() {
                    ""
                } else {
                    "30-address-lo-198.18.0.100\n"
                },
            )
        } else {
            out(0, "")
        }
    })
}

const VIP_TASK: &str = "- name: p\n  hosts: a\n  tasks:\n    - address: { address: 198.18.0.100/32, dev: lo, label: \"lo:3\" }\n";
const BOOT_LINE: &str = "ip addr replace 198.18.0.100/32 dev lo label lo:3\n";

#[tokio::test]
async fn a_runtime_setting_is_kept_for_boot_once_and_only_what_differs_is_written() {
    // Set at runtime, but not kept for boot: only the entry is written.
    let r = run(VIP_TASK, vip_on_lo("")).await;
    let (status, _, msg) = &r.tasks("a")[0];
    assert_eq!(*status, Status::Changed);
    assert!(
        msg.contains(
            "198.18.0.100/32 on lo; kept for boot in /etc/lvslab-boot.d/30-address-lo-198.18.0.100"
        ),
        "{msg}"
    );
    let sent = r.sent("a");
    assert!(
        sent.iter()
            .any(|c| c == &crate::transport::sh::boot_entry_write("30-address-lo-198.18.0.100")),
        "{sent:?}"
    );
    assert!(
        !sent.iter().any(|c| c.starts_with("ip addr add")),
        "{sent:?}"
    );

    // Both as desired: nothing is written.
    let r = run(VIP_TASK, vip_on_lo(BOOT_LINE)).await;
    assert_eq!(r.statuses("a"), vec![Status::Ok]);
    assert!(
        !r.sent("a").iter().any(|c| c.contains("mv -f")),
        "{:?}",
        r.sent("a")
    );

    // Check mode says what would be kept, and writes nothing.
    let r = run_with(
        VIP_TASK,
        vip_on_lo(""),
        RunOptions {
            check: true,
            diff: true,
            ..RunOptions::default()
        },
        Cancel::new(),
    )
    .await;
    assert_eq!(r.statuses("a"), vec![Status::Changed]);
    assert!(
        !r.sent("a").iter().any(|c| c.contains("mv -f")),
        "{:?}",
        r.sent("a")
    );
    let diff = r
        .events
        .iter()
        .find_map(|e| match e {
            Event::Task { diff: Some(d), .. } => Some(d.clone()),
            _ => None,
        })
        .unwrap_or_default();
    assert!(
        diff.contains("+ip addr replace 198.18.0.100/32 dev lo label lo:3"),
        "{diff}"
    );

    // `boot: false`: the entry goes.
    let r = run(
        "- name: p\n  hosts: a\n  tasks:\n    - address: { address: 198.18.0.100/32, dev: lo, label: \"lo:3\", boot: false }\n",
        vip_on_lo(BOOT_LINE),
    )
    .await;
    assert_eq!(r.statuses("a"), vec![Status::Changed]);
    assert!(
        r.sent("a")
            .iter()
            .any(|c| c == "rm -f -- /etc/lvslab-boot.d/30-address-lo-198.18.0.100"),
        "{:?}",
        r.sent("a")
    );
}
