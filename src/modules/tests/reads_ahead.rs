//! The runner fetches a play's reads ahead in batches (see `Runner::fetch_reads_ahead`): the
//! round trips a run costs, and that an answer read before a change is never taken after it.

use super::{Lab, State};
use crate::report::Status;

const KEYS: [&str; 5] = [
    "net.ipv4.conf.all.arp_ignore",
    "net.ipv4.conf.all.arp_announce",
    "net.ipv4.conf.eth0.arp_ignore",
    "net.ipv4.conf.eth0.arp_announce",
    "net.ipv4.ip_forward",
];

fn task(key: &str, value: &str) -> String {
    format!("sysctl: {{ key: {key}, value: {value} }}")
}

/// A host with every key of [`KEYS`] at 0, and a task setting each to 2.
fn five_settings() -> (Lab, Vec<String>) {
    let mut state = State::new();
    for key in KEYS {
        state = state.sysctl(key, "0");
    }
    (Lab::new(state), KEYS.iter().map(|k| task(k, "2")).collect())
}

#[tokio::test]
async fn a_converged_host_answers_a_plays_reads_in_a_few_round_trips() {
    let (lab, tasks) = five_settings();
    let tasks: Vec<&str> = tasks.iter().map(String::as_str).collect();
    let (first, _) = lab.run_all(&tasks).await;
    assert!(
        first.iter().all(|r| r.status == Status::Changed),
        "{first:?}"
    );

    let (again, round_trips) = lab.run_all(&tasks).await;
    let statuses: Vec<Status> = again.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [Status::Ok; 5], "{again:?}");
    let reads = again[0].sent.len();
    assert!(
        reads >= 5,
        "each task read its setting: {:?}",
        again[0].sent
    );
    // The facts, then one batch for every task's reads: not one round trip per read.
    assert_eq!(
        round_trips, 2,
        "{round_trips} round trips for {reads} reads: {:?}",
        again[0].sent
    );
}

#[tokio::test]
async fn an_answer_fetched_before_a_change_is_not_taken_after_it() {
    let lab = Lab::new(State::new());
    // The second task reads, in its own words, the file the first one writes: fetched ahead,
    // its answer said "no such file"; taken after the write, the file would stay.
    let (runs, _) = lab
        .run_all(&[
            r#"copy: { dest: /etc/app.conf, content: "port = 80\n" }"#,
            "file: { path: /etc/app.conf, state: absent }",
        ])
        .await;
    let statuses: Vec<Status> = runs.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [Status::Changed, Status::Changed], "{runs:?}");
    assert_eq!(lab.state().content("/etc/app.conf"), None);
}

#[tokio::test]
async fn a_host_being_changed_does_not_run_its_later_queries_again_and_again() {
    let (lab, tasks) = five_settings();
    let tasks: Vec<&str> = tasks.iter().map(String::as_str).collect();
    let (runs, _) = lab.run_all(&tasks).await;
    assert!(runs.iter().all(|r| r.status == Status::Changed), "{runs:?}");
    // The last task's read: fetched ahead once (thrown away by the first change), then asked
    // when it runs; not once more after every change before it.
    let last = &runs[0]
        .sent
        .iter()
        .filter(|l| l.starts_with("if [ -r /proc/sys/net/ipv4/ip_forward ]"))
        .count();
    assert_eq!(*last, 2, "{:?}", runs[0].sent);
}
