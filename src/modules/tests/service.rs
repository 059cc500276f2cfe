//! `service` over the fake host.

use super::{Lab, State};
use crate::report::Status;
use crate::transport::sh;

const UP: &str = "service: { name: nginx, state: started, enabled: true }";
const DOWN: &str = "service: { name: nginx, state: stopped, enabled: false }";

fn host() -> State {
    State::new().service("nginx", false, false)
}

#[tokio::test]
async fn the_first_run_starts_and_enables() {
    let lab = Lab::new(host());
    let run = lab.run(UP).await;
    assert_eq!(
        (run.status, run.msg.as_str()),
        (Status::Changed, "start nginx, enable nginx")
    );
    assert_eq!(
        run.changes,
        [
            sh::service_action("systemd", "nginx", "start"),
            sh::service_enable("systemd", "nginx", true),
        ]
    );
    // Running, and still running a moment later.
    let checks = run
        .sent
        .iter()
        .filter(|l| **l == sh::process_running("nginx"))
        .count();
    assert_eq!(checks, 2, "{:?}", run.sent);
    let s = lab.state();
    assert!(s.runs("nginx") && s.services["nginx"].enabled);
}

#[tokio::test]
async fn a_second_run_changes_nothing() {
    let lab = Lab::new(host());
    let (_, second) = lab.twice(UP).await;
    assert_eq!(
        (second.status, second.msg.as_str()),
        (Status::Ok, "nginx running")
    );
    assert!(second.changes.is_empty(), "{second:?}");
}

#[tokio::test]
async fn check_mode_changes_nothing() {
    let lab = Lab::new(host());
    let run = lab.check(UP).await;
    assert_eq!(
        (run.status, run.msg.as_str()),
        (Status::Changed, "start nginx, enable nginx")
    );
    assert!(run.changes.is_empty(), "{run:?}");
    assert_eq!(lab.state(), host());
}

#[tokio::test]
async fn stopped_and_disabled_once() {
    let lab = Lab::new(State::new().service("nginx", true, true));
    let (first, second) = lab.twice(DOWN).await;
    assert_eq!(
        (first.status, first.msg.as_str()),
        (Status::Changed, "stop nginx, disable nginx")
    );
    let s = lab.state();
    assert!(!s.runs("nginx") && !s.services["nginx"].enabled);
    assert_eq!(
        (second.status, second.msg.as_str()),
        (Status::Ok, "nginx stopped")
    );
    assert!(second.changes.is_empty(), "{second:?}");
}

#[tokio::test]
async fn a_daemon_that_ignores_its_stop_gets_sigterm_and_never_sigkill() {
    let mut before = State::new().service("keepalived", true, true);
    if let Some(s) = before.services.get_mut("keepalived") {
        s.ignores_stop = true;
    }
    let lab = Lab::new(before);
    let run = lab
        .run("service: { name: keepalived, state: stopped }")
        .await;
    assert_eq!(
        (run.status, run.msg.as_str()),
        (Status::Changed, "stop keepalived")
    );
    assert_eq!(
        run.changes,
        [
            sh::service_action("systemd", "keepalived", "stop"),
            sh::process_signal("keepalived", "TERM"),
        ]
    );
    assert!(!lab.state().runs("keepalived"));
}

#[tokio::test]
async fn restarted_and_reloaded_act_every_run_and_start_a_stopped_one() {
    let lab = Lab::new(State::new().service("nginx", true, true));
    let pid = |lab: &Lab| lab.state().processes.get("nginx").cloned();
    let before = pid(&lab);
    let run = lab.run("service: { name: nginx, state: restarted }").await;
    assert_eq!(
        (run.status, run.msg.as_str()),
        (Status::Changed, "restart nginx")
    );
    assert_ne!(pid(&lab), before, "a new process");
    let run = lab.run("service: { name: nginx, state: reloaded }").await;
    assert_eq!(
        (run.status, run.msg.as_str()),
        (Status::Changed, "reload nginx")
    );
    assert_eq!(lab.state().services["nginx"].reloads, 1);
    let lab = Lab::new(host());
    let run = lab.run("service: { name: nginx, state: reloaded }").await;
    assert_eq!(run.msg, "start nginx");
    assert!(lab.state().runs("nginx"));
}

/// A daemon stopped by a signal is not running: reported (by `--check` too), continued,
/// and the next run has nothing to do.
#[tokio::test]
async fn a_frozen_daemon_is_continued() {
    let mut before = State::new().service("nginx", true, true);
    before.frozen.insert("nginx".into());
    let lab = Lab::new(before.clone());
    let check = lab.check(UP).await;
    let said = "continue nginx (stopped by a signal, state T)";
    assert_eq!((check.status, check.msg.as_str()), (Status::Changed, said));
    assert_eq!(lab.state(), before, "--check changes nothing");
    let (first, second) = lab.twice(UP).await;
    assert_eq!((first.status, first.msg.as_str()), (Status::Changed, said));
    assert_eq!(first.changes, [sh::thaw("nginx")]);
    assert!(lab.state().frozen.is_empty() && lab.state().runs("nginx"));
    assert_eq!(
        (second.status, second.msg.as_str()),
        (Status::Ok, "nginx running")
    );
    // Asked to stop: continued first (a frozen process cannot act on SIGTERM), then stopped.
    let mut frozen = State::new().service("nginx", true, true);
    frozen.frozen.insert("nginx".into());
    let lab = Lab::new(frozen);
    let run = lab.run(DOWN).await;
    assert_eq!(
        run.changes[..2],
        [
            sh::thaw("nginx"),
            sh::service_action("systemd", "nginx", "stop")
        ]
    );
    assert!(!lab.state().runs("nginx"));
}

/// keepalived must answer its state dump: a hung one is restarted, saying why; a frozen one
/// that stays silent once continued is restarted too.
#[tokio::test]
async fn a_keepalived_that_does_not_answer_is_restarted() {
    const KA: &str = "service: { name: keepalived, state: started }";
    let mut hung = State::new().service("keepalived", true, true);
    hung.hung.insert("keepalived".into());
    let lab = Lab::new(hung);
    let (first, second) = lab.twice(KA).await;
    assert_eq!(
        (first.status, first.msg.as_str()),
        (
            Status::Changed,
            "restart keepalived (alive, but it does not answer its state dump)"
        )
    );
    assert_eq!(
        first.changes,
        [sh::service_action("systemd", "keepalived", "restart")]
    );
    assert_eq!(
        (second.status, second.msg.as_str()),
        (Status::Ok, "keepalived running")
    );
    let mut both = State::new().service("keepalived", true, true);
    both.frozen.insert("keepalived".into());
    both.hung.insert("keepalived".into());
    let lab = Lab::new(both);
    let run = lab.run(KA).await;
    assert_eq!(
        (run.status, run.msg.as_str()),
        (
            Status::Changed,
            "continue keepalived (stopped by a signal, state T); it still did not answer once continued: restarted"
        )
    );
    assert_eq!(
        run.changes,
        [
            sh::thaw("keepalived"),
            sh::service_action("systemd", "keepalived", "restart")
        ]
    );
    let s = lab.state();
    assert!(s.runs("keepalived") && s.frozen.is_empty() && s.hung.is_empty());
}

/// A daemon with an `answers:` URL must answer a GET of it (made with the host's curl where
/// the transport has no forwarding, as here): one that runs and does not is restarted.
#[tokio::test]
async fn a_daemon_that_does_not_answer_its_url_is_restarted() {
    const URL: &str = "http://10.0.0.11:80/";
    let task = format!("service: {{ name: nginx, state: started, answers: \"{URL}\" }}");
    let mut answering = State::new().service("nginx", true, true);
    answering.http.insert(URL.into(), 404);
    let lab = Lab::new(answering);
    let run = lab.run(&task).await;
    assert_eq!(
        (run.status, run.msg.as_str()),
        (Status::Ok, "nginx running"),
        "any HTTP answer counts"
    );
    assert!(
        run.sent
            .contains(&sh::http_status(URL, 2).line().to_string())
    );
    let lab = Lab::new(State::new().service("nginx", true, true));
    let check = lab.check(&task).await;
    let said = format!("restart nginx (alive, but {URL} gets no answer within 2 s)");
    assert_eq!(
        (check.status, check.msg.as_str()),
        (Status::Changed, said.as_str())
    );
    assert!(check.changes.is_empty());
    let run = lab.run(&task).await;
    assert_eq!(
        (run.status, run.msg.as_str()),
        (Status::Changed, said.as_str())
    );
    assert_eq!(
        run.changes,
        [sh::service_action("systemd", "nginx", "restart")]
    );
    for bad in ["ftp://10.0.0.11/", "http://:80/", "http://10.0.0.11:port/"] {
        let run = Lab::new(State::new().service("nginx", true, true))
            .run(&format!(
                "service: {{ name: nginx, state: started, answers: \"{bad}\" }}"
            ))
            .await;
        assert_eq!(run.status, Status::Failed, "{bad}");
        assert!(
            run.msg
                .contains(&format!("answers: `{bad}` is not an http://")),
            "{}",
            run.msg
        );
    }
}

#[tokio::test]
async fn whether_it_runs_is_read_from_its_process() {
    let mut before = State::new().service("apache2", false, true);
    if let Some(s) = before.services.get_mut("apache2") {
        s.process = "httpd".into();
    }
    before.start("httpd");
    let lab = Lab::new(before);
    let run = lab
        .run("service: { name: apache2, process: httpd, state: started }")
        .await;
    assert_eq!(
        (run.status, run.msg.as_str()),
        (Status::Ok, "apache2 running")
    );
    assert!(run.sent[0].contains("pgrep -x httpd"), "{:?}", run.sent);
}

#[tokio::test]
async fn init_scripts_where_systemd_does_not_run() {
    let mut sysv = host();
    sysv.init = "sysv".into();
    let lab = Lab::new(sysv);
    let (first, second) = lab.twice(UP).await;
    assert_eq!(
        first.changes,
        [
            sh::service_action("sysv", "nginx", "start"),
            sh::service_enable("sysv", "nginx", true),
        ]
    );
    assert_eq!(first.changes[0], "service nginx start");
    assert_eq!(second.status, Status::Ok, "{second:?}");
}

#[tokio::test]
async fn enabling_a_service_without_an_init_script_fails() {
    let mut sysv = State::new();
    sysv.init = "sysv".into();
    let run = Lab::new(sysv)
        .run("service: { name: nosuch, enabled: true }")
        .await;
    assert_eq!(
        (run.status, run.msg.as_str()),
        (
            Status::Failed,
            "nosuch has no init script (/etc/init.d/nosuch) to enable at boot"
        )
    );
    assert!(run.changes.is_empty(), "{run:?}");
    // --check on a fresh host, where an earlier task of the run writes the init script
    // (lvslab-boot's): a change to come, not a failure.
    let mut sysv = State::new();
    sysv.init = "sysv".into();
    let check = Lab::new(sysv)
        .check("service: { name: nosuch, enabled: true }")
        .await;
    assert_eq!(
        (check.status, check.msg.as_str()),
        (
            Status::Changed,
            "enable nosuch (no init script yet: an earlier task of this run writes it)"
        )
    );
    assert!(check.changes.is_empty(), "{check:?}");
}

#[tokio::test]
async fn a_daemon_that_dies_at_start_fails_the_task() {
    let mut before = State::new().service("keepalived", false, true);
    if let Some(s) = before.services.get_mut("keepalived") {
        s.dies_at_start = true;
    }
    let lab = Lab::new(before);
    let run = lab
        .run("service: { name: keepalived, state: started }")
        .await;
    assert_eq!(run.status, Status::Failed);
    assert!(
        run.msg
            .starts_with("keepalived was started but is not running (keepalived exits at start"),
        "{}",
        run.msg
    );
}

#[tokio::test]
async fn the_host_s_refusals_fail_the_task_in_its_words() {
    let mut failing = host();
    if let Some(s) = failing.services.get_mut("nginx") {
        s.start_fails = Some(
            "Job for nginx.service failed because the control process exited with error code.\n"
                .into(),
        );
    }
    let run = Lab::new(failing).run(UP).await;
    assert_eq!(
        (run.status, run.msg.as_str()),
        (
            Status::Failed,
            "start nginx failed (exit status 1): Job for nginx.service failed because the control process exited with error code."
        )
    );
    let run = Lab::new(State::new())
        .run("service: { name: nosuch, state: started }")
        .await;
    assert_eq!(
        run.msg,
        "start nosuch failed (exit status 5): Failed to start nosuch.service: Unit nosuch.service not found."
    );
    let lab = Lab::new(host().unprivileged());
    let run = lab.run(UP).await;
    assert_eq!(
        run.msg,
        "start nginx failed (exit status 1): Failed to start nginx.service: Interactive authentication required."
    );
    assert_eq!(lab.state(), host().unprivileged());
}
