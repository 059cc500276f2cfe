//! `address` over the fake host.

use super::{Lab, State};
use crate::report::Status;
use crate::transport::sh::{self, BOOT_DIR};

const VIP: &str = r#"address: { address: 198.18.0.100/32, dev: lo, label: "lo:3" }"#;
const GONE: &str =
    r#"address: { address: 198.18.0.100/32, dev: lo, label: "lo:3", state: absent }"#;
const ENTRY: &str = "30-address-lo-198.18.0.100";
const LINE: &str = "ip addr replace 198.18.0.100/32 dev lo label lo:3\n";

fn entry() -> String {
    format!("{BOOT_DIR}/{ENTRY}")
}

#[tokio::test]
async fn the_first_run_adds_announces_and_keeps_it_for_boot() {
    let lab = Lab::new(State::new());
    let run = lab.run(VIP).await;
    assert_eq!(run.status, Status::Changed);
    assert_eq!(
        run.msg,
        "add 198.18.0.100/32 to lo as lo:3; kept for boot in /etc/lvslab-boot.d/30-address-lo-198.18.0.100"
    );
    assert_eq!(
        run.changes,
        [
            sh::address_add("lo", "198.18.0.100/32", Some("lo:3")),
            sh::address_announce("lo", "198.18.0.100"),
            sh::boot_entry_write(ENTRY),
        ]
    );
    let s = lab.state();
    assert_eq!(s.addresses("lo"), ["127.0.0.1/8 -", "198.18.0.100/32 lo:3"]);
    assert_eq!(s.content(&entry()).as_deref(), Some(LINE));
}

#[tokio::test]
async fn a_second_run_changes_nothing() {
    let lab = Lab::new(State::new());
    let (_, second) = lab.twice(VIP).await;
    assert_eq!(
        (second.status, second.msg.as_str()),
        (Status::Ok, "198.18.0.100/32 on lo")
    );
    assert!(second.changes.is_empty(), "{second:?}");
}

#[tokio::test]
async fn check_mode_shows_the_boot_entry_and_changes_nothing() {
    let lab = Lab::new(State::new());
    let run = lab.check_diff(VIP).await;
    assert_eq!(run.status, Status::Changed);
    assert!(
        run.diff
            .as_deref()
            .is_some_and(|d| d.contains("+ip addr replace 198.18.0.100/32 dev lo label lo:3")),
        "{run:?}"
    );
    assert!(run.changes.is_empty(), "{run:?}");
    assert_eq!(lab.state(), State::new());
}

#[tokio::test]
async fn another_prefix_or_label_is_replaced() {
    let lab = Lab::new(State::new().address("lo", "198.18.0.100/24", Some("lo:9")));
    let (first, second) = lab.twice(VIP).await;
    assert_eq!(
        first.msg,
        "replace 198.18.0.100/24 with 198.18.0.100/32 on lo; kept for boot in /etc/lvslab-boot.d/30-address-lo-198.18.0.100"
    );
    assert_eq!(
        first.changes[..2],
        [
            sh::address_del("lo", "198.18.0.100/24"),
            sh::address_add("lo", "198.18.0.100/32", Some("lo:3")),
        ]
    );
    assert_eq!(
        lab.state().addresses("lo"),
        ["127.0.0.1/8 -", "198.18.0.100/32 lo:3"]
    );
    assert_eq!(second.status, Status::Ok, "{second:?}");
}

#[tokio::test]
async fn absent_removes_the_address_and_its_boot_entry_once() {
    let lab = Lab::new(State::new());
    lab.run(VIP).await;
    let (first, second) = lab.twice(GONE).await;
    assert_eq!(
        (first.status, first.msg.as_str()),
        (
            Status::Changed,
            "remove 198.18.0.100 from lo; removed from boot: 30-address-lo-198.18.0.100"
        )
    );
    assert_eq!(lab.state(), State::new());
    assert_eq!(
        (second.status, second.msg.as_str()),
        (Status::Ok, "198.18.0.100 not on lo")
    );
    assert!(second.changes.is_empty(), "{second:?}");
}

#[tokio::test]
async fn absent_with_a_label_leaves_the_same_address_under_another() {
    // keepalived's VIP (eth0:3) stays when the hand-set one (eth0:2) goes.
    let before = State::new().address("eth0", "10.0.0.100/24", Some("eth0:3"));
    let lab = Lab::new(before.clone());
    let run = lab
        .run(r#"address: { address: 10.0.0.100/24, dev: eth0, label: "eth0:2", state: absent }"#)
        .await;
    assert_eq!(run.status, Status::Ok, "{run:?}");
    assert_eq!(lab.state(), before);
}

#[tokio::test]
async fn a_device_that_is_not_there() {
    let lab = Lab::new(State::new());
    let run = lab
        .run("address: { address: 198.18.0.100/32, dev: tunl0 }")
        .await;
    assert_eq!(
        (run.status, run.msg.as_str()),
        (Status::Failed, "a has no interface `tunl0`")
    );
    let run = lab
        .run("address: { address: 198.18.0.100/32, dev: tunl0, state: absent }")
        .await;
    assert_eq!(
        (run.status, run.msg.as_str()),
        (Status::Ok, "198.18.0.100 not on tunl0 (no such device)")
    );
    assert!(run.changes.is_empty(), "{run:?}");
}

#[tokio::test]
async fn boot_false_keeps_no_entry() {
    let lab = Lab::new(State::new());
    let run = lab
        .run(r#"address: { address: 198.18.0.100/32, dev: lo, label: "lo:3", boot: false }"#)
        .await;
    assert_eq!(run.msg, "add 198.18.0.100/32 to lo as lo:3");
    assert!(lab.state().content(&entry()).is_none());
}

#[tokio::test]
async fn a_refusal_fails_the_task_in_the_host_s_words() {
    let lab = Lab::new(State::new().unprivileged());
    let run = lab.run(VIP).await;
    assert_eq!(run.status, Status::Failed);
    assert_eq!(
        run.msg,
        "adding 198.18.0.100/32 to lo failed (exit status 2): RTNETLINK answers: Operation not permitted"
    );
    assert_eq!(lab.state(), State::new().unprivileged());
}

#[tokio::test]
async fn a_boot_entry_the_host_refuses_fails_the_task_in_its_words() {
    // The address is there already; only its boot entry is missing.
    let before = State::new()
        .address("lo", "198.18.0.100/32", Some("lo:3"))
        .unprivileged();
    let lab = Lab::new(before.clone());
    let run = lab.run(VIP).await;
    assert_eq!(run.status, Status::Failed);
    assert_eq!(
        run.msg,
        "writing the boot entry failed (exit status 1): mkdir: cannot create directory '/etc/lvslab-boot.d': Permission denied"
    );
    assert_eq!(run.changes, [sh::boot_entry_write(ENTRY)]);
    assert_eq!(lab.state(), before);
}
