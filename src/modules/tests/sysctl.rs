//! `sysctl` over the fake host.

use super::{Lab, State};
use crate::report::Status;
use crate::transport::sh::{self, STATE_DIR, SYSCTL_FILE};

const KEY: &str = "net.ipv4.ip_forward";
const FORWARD: &str = "sysctl: { key: net.ipv4.ip_forward, value: 1 }";
const RESTORED: &str = "sysctl: { key: net.ipv4.ip_forward, state: restored }";

fn host() -> State {
    State::new().sysctl(KEY, "0")
}

fn kept(key: &str) -> String {
    format!("{STATE_DIR}/sysctl-orig/{key}")
}

#[tokio::test]
async fn the_first_run_sets_persists_and_keeps_the_original() {
    let lab = Lab::new(host());
    let run = lab.run(FORWARD).await;
    assert_eq!(
        (run.status, run.msg.as_str()),
        (Status::Changed, "net.ipv4.ip_forward 0 -> 1")
    );
    assert_eq!(run.changes, [sh::sysctl_set(KEY, "1")]);
    let s = lab.state();
    assert_eq!(s.sysctls[KEY], "1");
    assert_eq!(
        s.content(SYSCTL_FILE).as_deref(),
        Some("net.ipv4.ip_forward = 1\n")
    );
    assert_eq!(s.content(&kept(KEY)).as_deref(), Some("0\n"));
}

#[tokio::test]
async fn a_second_run_changes_nothing() {
    let lab = Lab::new(host());
    let (_, second) = lab.twice(FORWARD).await;
    assert_eq!(
        (second.status, second.msg.as_str()),
        (Status::Ok, "net.ipv4.ip_forward = 1")
    );
    assert!(second.changes.is_empty(), "{second:?}");
}

#[tokio::test]
async fn check_mode_shows_the_diff_and_changes_nothing() {
    let lab = Lab::new(host());
    let run = lab.check_diff(FORWARD).await;
    assert_eq!(run.status, Status::Changed);
    assert_eq!(
        run.diff.as_deref(),
        Some("-net.ipv4.ip_forward = 0\n+net.ipv4.ip_forward = 1")
    );
    assert!(run.changes.is_empty(), "{run:?}");
    assert_eq!(lab.state(), host());
}

#[tokio::test]
async fn a_value_the_kernel_has_already_is_only_persisted() {
    let lab = Lab::new(State::new().sysctl(KEY, "1"));
    let run = lab.run(FORWARD).await;
    assert_eq!(
        (run.status, run.msg.as_str()),
        (Status::Changed, "net.ipv4.ip_forward = 1 (persisting)")
    );
    assert_eq!(
        lab.state().content(SYSCTL_FILE).as_deref(),
        Some("net.ipv4.ip_forward = 1\n")
    );
    assert_eq!(lab.run(FORWARD).await.status, Status::Ok);
}

#[tokio::test]
async fn restored_puts_the_original_back_and_forgets_it() {
    let lab = Lab::new(host());
    lab.run(FORWARD).await;
    let run = lab.check_diff(RESTORED).await;
    assert_eq!(
        (run.status, run.diff.as_deref()),
        (
            Status::Changed,
            Some("-net.ipv4.ip_forward = 1\n+net.ipv4.ip_forward = 0")
        )
    );
    assert!(run.changes.is_empty(), "{run:?}");
    let (first, second) = lab.twice(RESTORED).await;
    assert_eq!(
        (first.status, first.msg.as_str()),
        (Status::Changed, "net.ipv4.ip_forward 1 -> 0 (restored)")
    );
    assert_eq!(lab.state(), host(), "the value, lvslab's file and its copy");
    assert_eq!(
        (second.status, second.msg.as_str()),
        (Status::Ok, "net.ipv4.ip_forward = 0 (not set by lvslab)")
    );
    assert!(second.changes.is_empty(), "{second:?}");
}

#[tokio::test]
async fn other_keys_in_lvslab_s_file_stay() {
    let lab = Lab::new(host().sysctl("net.ipv4.conf.all.arp_ignore", "0"));
    lab.run(FORWARD).await;
    lab.run("sysctl: { key: net.ipv4.conf.all.arp_ignore, value: 1 }")
        .await;
    lab.run(RESTORED).await;
    assert_eq!(
        lab.state().content(SYSCTL_FILE).as_deref(),
        Some("net.ipv4.conf.all.arp_ignore = 1\n")
    );
}

#[tokio::test]
async fn several_numbers_compare_as_the_kernel_prints_them() {
    let key = "net.ipv4.tcp_rmem";
    let lab = Lab::new(State::new().sysctl(key, "4096\t87380\t6291456"));
    let task = "sysctl: { key: net.ipv4.tcp_rmem, value: \"4096 131072  6291456\" }";
    let (first, second) = lab.twice(task).await;
    assert_eq!(
        (first.status, first.msg.as_str()),
        (
            Status::Changed,
            "net.ipv4.tcp_rmem 4096 87380 6291456 -> 4096 131072 6291456"
        )
    );
    assert_eq!(lab.state().sysctls[key], "4096\t131072\t6291456");
    assert_eq!(second.status, Status::Ok, "{second:?}");
}

#[tokio::test]
async fn a_setting_the_kernel_lacks() {
    let lab = Lab::new(State::new());
    let run = lab
        .run("sysctl: { key: net.ipv4.conf.tunl0.rp_filter, value: 0 }")
        .await;
    assert_eq!(run.status, Status::Failed);
    assert_eq!(
        run.msg,
        "the kernel has no setting net.ipv4.conf.tunl0.rp_filter (no /proc/sys entry)"
    );
    assert!(run.changes.is_empty(), "{run:?}");

    // Gone since lvslab set it (tunl0 without its module): only what lvslab kept is forgotten.
    let key = "net.ipv4.conf.tunl0.rp_filter";
    let lab = Lab::new(State::new().sysctl(key, "1"));
    lab.run("sysctl: { key: net.ipv4.conf.tunl0.rp_filter, value: 0 }")
        .await;
    let mut gone = lab.state();
    gone.sysctls.remove(key);
    let lab = Lab::new(gone);
    let task = "sysctl: { key: net.ipv4.conf.tunl0.rp_filter, state: restored }";
    let (first, second) = lab.twice(task).await;
    assert_eq!(first.status, Status::Changed, "{first:?}");
    assert_eq!(lab.state(), State::new());
    assert_eq!(
        (second.status, second.msg.as_str()),
        (
            Status::Ok,
            "net.ipv4.conf.tunl0.rp_filter (no such setting)"
        )
    );
}

#[tokio::test]
async fn a_refusal_fails_the_task_in_the_host_s_words() {
    let lab = Lab::new(host().unprivileged());
    let run = lab.run(FORWARD).await;
    assert_eq!(run.status, Status::Failed);
    assert_eq!(
        run.msg,
        "setting the sysctl failed (exit status 1): mkdir: cannot create directory '/var/lib/lvslab': Permission denied"
    );
    assert_eq!(lab.state(), host().unprivileged());
}

#[tokio::test]
async fn a_refused_restore_fails_the_task_in_the_host_s_words() {
    let lab = Lab::new(host());
    lab.run(FORWARD).await;
    let set = lab.state();
    let lab = Lab::new(State {
        unprivileged: true,
        ..set.clone()
    });
    let run = lab.run(RESTORED).await;
    assert_eq!(run.status, Status::Failed);
    assert_eq!(
        run.msg,
        "restoring the sysctl failed (exit status 2): sh: 1: cannot create /proc/sys/net/ipv4/ip_forward: Permission denied"
    );
    assert_eq!(lab.state().sysctls, set.sysctls);
}
