//! `package` over the fake host.

use super::{Lab, State};
use crate::report::Status;
use crate::transport::sh;

const IPVSADM: &str = "package: { name: ipvsadm }";

fn host() -> State {
    State::new().available("ipvsadm").installed("keepalived")
}

#[tokio::test]
async fn the_first_run_installs_what_is_missing() {
    let lab = Lab::new(host());
    let run = lab.run("package: { name: [keepalived, ipvsadm] }").await;
    assert_eq!(
        (run.status, run.msg.as_str()),
        (Status::Changed, "install ipvsadm")
    );
    assert_eq!(
        run.changes,
        [sh::packages_install("apt-get", &["ipvsadm".into()])]
    );
    assert!(lab.state().installed.contains("ipvsadm"));
}

#[tokio::test]
async fn a_second_run_changes_nothing() {
    let lab = Lab::new(host());
    let (_, second) = lab.twice(IPVSADM).await;
    assert_eq!(
        (second.status, second.msg.as_str()),
        (Status::Ok, "installed ipvsadm")
    );
    assert!(second.changes.is_empty(), "{second:?}");
}

#[tokio::test]
async fn check_mode_changes_nothing() {
    let lab = Lab::new(host());
    let run = lab.check(IPVSADM).await;
    assert_eq!(
        (run.status, run.msg.as_str()),
        (Status::Changed, "install ipvsadm")
    );
    assert!(run.changes.is_empty(), "{run:?}");
    assert_eq!(lab.state(), host());
}

#[tokio::test]
async fn absent_removes_once() {
    let lab = Lab::new(host());
    let task = "package: { name: [keepalived, ipvsadm], state: absent }";
    let (first, second) = lab.twice(task).await;
    assert_eq!(
        (first.status, first.msg.as_str()),
        (Status::Changed, "remove keepalived")
    );
    assert!(lab.state().installed.is_empty());
    assert_eq!(
        (second.status, second.msg.as_str()),
        (Status::Ok, "absent keepalived ipvsadm")
    );
    assert!(second.changes.is_empty(), "{second:?}");
}

#[tokio::test]
async fn dnf_where_the_host_has_it() {
    let mut rocky = host();
    rocky.pkg = "dnf".into();
    let lab = Lab::new(rocky);
    let (first, second) = lab.twice(IPVSADM).await;
    assert_eq!(first.changes, ["dnf install -y -q ipvsadm"]);
    assert_eq!(second.status, Status::Ok, "{second:?}");
    let run = lab.run("package: { name: nosuch }").await;
    assert_eq!(
        run.msg,
        "dnf for nosuch failed (exit status 1): Error: Unable to find a match: nosuch"
    );
}

#[tokio::test]
async fn the_host_s_refusals_fail_the_task_in_its_words() {
    let lab = Lab::new(host());
    let run = lab.run("package: { name: [ipvsadm, nosuch] }").await;
    assert_eq!(
        (run.status, run.msg.as_str()),
        (
            Status::Failed,
            "apt-get for ipvsadm nosuch failed (exit status 100): E: Unable to locate package nosuch"
        )
    );
    assert_eq!(lab.state(), host());
    let run = Lab::new(host().unprivileged()).run(IPVSADM).await;
    assert_eq!(run.status, Status::Failed);
    assert!(
        run.msg.starts_with(
            "apt-get for ipvsadm failed (exit status 100): E: Could not open lock file /var/lib/dpkg/lock-frontend - open (13: Permission denied)"
        ),
        "{}",
        run.msg
    );
}

#[tokio::test]
async fn a_host_without_a_package_manager() {
    let mut bare = host();
    bare.pkg = String::new();
    let run = Lab::new(bare).run(IPVSADM).await;
    assert_eq!(
        (run.status, run.msg.as_str()),
        (
            Status::Failed,
            "a has no package manager lvslab knows (apt-get, dnf, yum)"
        )
    );
    assert!(run.sent.is_empty(), "{run:?}");
}
