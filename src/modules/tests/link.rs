//! `link` over the fake host.

use super::{Lab, State};
use crate::report::Status;
use crate::transport::sh::{self, BOOT_DIR};

const TUNNEL: &str = "link: { name: tunl0, module: ipip }";
const DOWN: &str = "link: { name: tunl0, state: down }";

fn host() -> State {
    State::new().kernel_module("ipip", &["tunl0"])
}

#[tokio::test]
async fn the_first_run_loads_the_module_and_brings_the_device_up() {
    let lab = Lab::new(host());
    let run = lab.run(TUNNEL).await;
    assert_eq!(
        (run.status, run.msg.as_str()),
        (
            Status::Changed,
            "load ipip, bring tunl0 up; kept for boot in /etc/lvslab-boot.d/10-link-tunl0"
        )
    );
    assert_eq!(
        run.changes,
        [
            sh::load_module("ipip"),
            sh::link_set("tunl0", true),
            sh::boot_entry_write("10-link-tunl0"),
        ]
    );
    let s = lab.state();
    assert!(s.devices["tunl0"].up);
    assert_eq!(
        s.content(&format!("{BOOT_DIR}/10-link-tunl0")).as_deref(),
        Some("modprobe ipip; ip link set dev tunl0 up\n")
    );
}

#[tokio::test]
async fn a_second_run_changes_nothing() {
    let lab = Lab::new(host());
    let (_, second) = lab.twice(TUNNEL).await;
    assert_eq!(
        (second.status, second.msg.as_str()),
        (Status::Ok, "tunl0 up")
    );
    assert!(second.changes.is_empty(), "{second:?}");
}

#[tokio::test]
async fn check_mode_changes_nothing() {
    let lab = Lab::new(host());
    let run = lab.check_diff(TUNNEL).await;
    assert_eq!(run.status, Status::Changed);
    assert!(run.changes.is_empty(), "{run:?}");
    assert_eq!(lab.state(), host());
}

#[tokio::test]
async fn down_brings_it_down_and_drops_its_boot_entry_once() {
    let lab = Lab::new(host());
    lab.run(TUNNEL).await;
    let (first, second) = lab.twice(DOWN).await;
    assert_eq!(
        (first.status, first.msg.as_str()),
        (
            Status::Changed,
            "bring tunl0 down; removed from boot: 10-link-tunl0"
        )
    );
    let s = lab.state();
    assert!(!s.devices["tunl0"].up);
    assert!(!s.files.contains_key(&format!("{BOOT_DIR}/10-link-tunl0")));
    assert_eq!(
        (second.status, second.msg.as_str()),
        (Status::Ok, "tunl0 down")
    );
    assert!(second.changes.is_empty(), "{second:?}");
    // A device that is not there is down enough.
    let run = Lab::new(host()).run(DOWN).await;
    assert_eq!((run.status, run.msg.as_str()), (Status::Ok, "tunl0 absent"));
}

#[tokio::test]
async fn a_missing_device_without_a_module_fails() {
    let lab = Lab::new(State::new());
    let run = lab.run("link: { name: tunl0 }").await;
    assert_eq!(
        (run.status, run.msg.as_str()),
        (
            Status::Failed,
            "a has no device tunl0 (and no `module:` to load for it)"
        )
    );
    assert!(run.changes.is_empty(), "{run:?}");
}

#[tokio::test]
async fn the_host_s_refusals_fail_the_task_in_its_words() {
    // A kernel without the module.
    let run = Lab::new(State::new()).run(TUNNEL).await;
    assert_eq!(run.status, Status::Failed);
    assert_eq!(
        run.msg,
        "loading ipip failed (exit status 1): modprobe: FATAL: Module ipip not found in directory /lib/modules/6.1.0"
    );
    // Not root.
    let before = State::new().device("eth1", false).unprivileged();
    let lab = Lab::new(before.clone());
    let run = lab.run("link: { name: eth1 }").await;
    assert_eq!(run.status, Status::Failed);
    assert_eq!(
        run.msg,
        "setting eth1 failed (exit status 2): RTNETLINK answers: Operation not permitted"
    );
    assert_eq!(lab.state(), before);
}
