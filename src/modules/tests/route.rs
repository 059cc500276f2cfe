//! `route` over the fake host.

use super::{Lab, State};
use crate::report::Status;
use crate::transport::sh::{self, BOOT_DIR, STATE_DIR};

const GATEWAY: &str = "route: { to: default, via: 10.0.0.254 }";
const RESTORED: &str = "route: { to: default, state: restored }";

fn host() -> State {
    State::new().route("default", "10.0.0.1", "eth0")
}

#[tokio::test]
async fn the_first_run_sets_it_keeps_the_old_one_and_a_boot_entry() {
    let lab = Lab::new(host());
    let run = lab.run(GATEWAY).await;
    assert_eq!(run.status, Status::Changed);
    assert_eq!(
        run.msg,
        "default: via 10.0.0.1 dev eth0 -> via 10.0.0.254; kept for boot in /etc/lvslab-boot.d/40-route-default"
    );
    assert_eq!(
        run.changes,
        [
            sh::route_set("default", "10.0.0.254", None),
            sh::boot_entry_write("40-route-default"),
        ]
    );
    let s = lab.state();
    assert_eq!(s.routes["default"].via.as_deref(), Some("10.0.0.254"));
    assert_eq!(
        s.content(&format!("{STATE_DIR}/route-orig/default"))
            .as_deref(),
        Some("via 10.0.0.1 dev eth0\n")
    );
    assert_eq!(
        s.content(&format!("{BOOT_DIR}/40-route-default"))
            .as_deref(),
        Some("ip route replace default via 10.0.0.254\n")
    );
}

#[tokio::test]
async fn a_second_run_changes_nothing() {
    let lab = Lab::new(host());
    let (_, second) = lab.twice(GATEWAY).await;
    assert_eq!(
        (second.status, second.msg.as_str()),
        (Status::Ok, "default via 10.0.0.254 dev eth0")
    );
    assert!(second.changes.is_empty(), "{second:?}");
}

#[tokio::test]
async fn check_mode_shows_the_diff_and_changes_nothing() {
    let lab = Lab::new(host());
    let run = lab.check_diff(GATEWAY).await;
    assert_eq!(run.status, Status::Changed);
    let diff = run.diff.clone().unwrap_or_default();
    assert!(
        diff.starts_with("-default via 10.0.0.1 dev eth0\n+default via 10.0.0.254"),
        "{diff}"
    );
    assert!(
        diff.contains("+ip route replace default via 10.0.0.254"),
        "{diff}"
    );
    assert!(run.changes.is_empty());
    assert_eq!(lab.state(), host());
}

#[tokio::test]
async fn restored_puts_the_old_route_back_once() {
    let lab = Lab::new(host());
    lab.run(GATEWAY).await;
    let (first, second) = lab.twice(RESTORED).await;
    assert_eq!(
        (first.status, first.msg.as_str()),
        (
            Status::Changed,
            "default: via 10.0.0.254 dev eth0 -> via 10.0.0.1 dev eth0 (restored); removed from boot: 40-route-default"
        )
    );
    assert_eq!(lab.state(), host());
    assert_eq!(
        (second.status, second.msg.as_str()),
        (
            Status::Ok,
            "default via 10.0.0.1 dev eth0 (not set by lvslab)"
        )
    );
    assert!(second.changes.is_empty(), "{second:?}");
}

#[tokio::test]
async fn restored_removes_a_route_there_was_not() {
    let lab = Lab::new(State::new());
    lab.run("route: { to: 198.18.1.0/24, via: 10.0.0.254, dev: eth0 }")
        .await;
    assert!(lab.state().routes.contains_key("198.18.1.0/24"));
    let run = lab
        .run("route: { to: 198.18.1.0/24, state: restored }")
        .await;
    assert_eq!(
        run.msg,
        "198.18.1.0/24: via 10.0.0.254 dev eth0 -> none (restored); removed from boot: 40-route-198.18.1.0_24"
    );
    assert_eq!(lab.state(), State::new());
}

#[tokio::test]
async fn a_gateway_the_host_cannot_reach_fails_in_its_words() {
    let lab = Lab::new(host());
    let run = lab.run("route: { to: default, via: 192.0.2.1 }").await;
    assert_eq!(run.status, Status::Failed);
    assert_eq!(
        run.msg,
        "setting the route failed (exit status 2): RTNETLINK answers: Network is unreachable"
    );
    assert_eq!(lab.state().routes, host().routes);
}

#[tokio::test]
async fn a_refusal_fails_the_task_in_the_host_s_words() {
    let lab = Lab::new(host().unprivileged());
    let run = lab.run(GATEWAY).await;
    assert_eq!(run.status, Status::Failed);
    assert_eq!(
        run.msg,
        "setting the route failed (exit status 1): mkdir: cannot create directory '/var/lib/lvslab': Permission denied"
    );
    assert_eq!(lab.state(), host().unprivileged());
}
