//! `wait_for` over the fake host: never a change; no waiting in check mode.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use super::{Kind, Lab, State};
use crate::lvs::Endpoint;
use crate::report::Status;
use crate::transport::fake::{failed, out};
use crate::transport::sh;

const PORT: &str = "wait_for: { port: 80, timeout: 1 }";

fn listening() -> State {
    let mut s = State::new();
    s.listening.insert(Endpoint::new([127, 0, 0, 1].into(), 80));
    s
}

#[tokio::test]
async fn a_port_that_answers_is_ready() {
    let run = Lab::new(listening()).run(PORT).await;
    assert_eq!(
        (run.status, run.msg.as_str()),
        (Status::Ok, "127.0.0.1:80 ready")
    );
    assert!(run.changes.is_empty(), "{run:?}");
}

#[tokio::test]
async fn it_waits_until_the_port_answers() {
    let lab = Lab::new(State::new());
    let asked = Arc::new(AtomicU32::new(0));
    let count = asked.clone();
    lab.program(
        &sh::tcp_open([127, 0, 0, 1].into(), 80),
        Kind::Read,
        move |_| {
            if count.fetch_add(1, Ordering::SeqCst) < 2 {
                failed(1, "bash: connect: Connection refused\n")
            } else {
                out(0, "")
            }
        },
    );
    let run = lab.run(PORT).await;
    assert_eq!(run.status, Status::Ok, "{run:?}");
    assert!(
        run.msg.starts_with("127.0.0.1:80 ready after "),
        "{}",
        run.msg
    );
    assert_eq!(asked.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_port_that_never_answers_fails_after_the_timeout() {
    let run = Lab::new(State::new()).run(PORT).await;
    assert_eq!(
        (run.status, run.msg.as_str()),
        (Status::Failed, "127.0.0.1:80 not ready after 1 s")
    );
}

#[tokio::test]
async fn check_mode_does_not_wait_nor_run_the_playbook_s_command() {
    let lab = Lab::new(State::new());
    let run = lab.check(PORT).await;
    assert_eq!(
        (run.status, run.msg.as_str()),
        (
            Status::Skipped,
            "127.0.0.1:80 not ready (no waiting in check mode)"
        )
    );
    let run = lab
        .check("wait_for: { command: \"curl -sf localhost\" }")
        .await;
    assert_eq!(run.status, Status::Skipped);
    assert!(run.sent.is_empty(), "{run:?}");
}

#[tokio::test]
async fn stopped_waits_for_the_opposite() {
    let run = Lab::new(State::new())
        .run("wait_for: { port: 80, state: stopped }")
        .await;
    assert_eq!(run.status, Status::Ok, "{run:?}");
    let run = Lab::new(State::new().file("/run/app.pid", "1\n"))
        .run("wait_for: { path: /run/app.pid, state: stopped, timeout: 1 }")
        .await;
    assert_eq!(
        (run.status, run.msg.as_str()),
        (Status::Failed, "/run/app.pid not ready after 1 s")
    );
}
