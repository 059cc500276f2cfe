//! `process` over the fake host: it only reads, in check mode too.

use super::{Lab, State};
use crate::report::Status;
use crate::transport::sh;

const NGINX: &str = "process: { name: nginx }\nregister: web\nfailed_when: web.pids | length != 2";

fn host() -> State {
    let mut s = State::new();
    s.start("nginx");
    s.start("nginx");
    s
}

#[tokio::test]
async fn it_reports_the_processes_and_registers_their_pids() {
    let lab = Lab::new(host());
    let run = lab.run(NGINX).await;
    assert_eq!(
        (run.status, run.msg.as_str()),
        (Status::Ok, "nginx runs (2 process(es))")
    );
    assert_eq!(run.sent, [sh::process_ids("nginx").line()]);
    let run = lab.run("process: { name: keepalived }").await;
    assert_eq!(
        (run.status, run.msg.as_str()),
        (Status::Ok, "keepalived does not run")
    );
}

#[tokio::test]
async fn check_mode_reads_as_well_and_nothing_changes() {
    let lab = Lab::new(host());
    let run = lab.check(NGINX).await;
    assert_eq!(run.status, Status::Ok, "{run:?}");
    assert!(run.changes.is_empty(), "{run:?}");
    assert_eq!(lab.state(), host());
}

#[tokio::test]
async fn a_name_that_is_no_process_name_fails() {
    let run = Lab::new(host()).run(r#"process: { name: "a;b" }"#).await;
    assert_eq!(
        (run.status, run.msg.as_str()),
        (Status::Failed, "`a;b` is not a process name")
    );
    assert!(run.sent.is_empty(), "{run:?}");
}
