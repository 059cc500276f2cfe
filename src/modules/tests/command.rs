//! `command` and `shell` over the fake host: guarded by `creates`, `removes` and `unless`, never
//! run in check mode; a failing command fails the task with what it said.

use super::host::File;
use super::{Kind, Lab, State};
use crate::report::Status;
use crate::transport::fake::{failed, out};

const FLAG: &str = "/srv/flag";
const TOUCH: &str = "command: { cmd: touch /srv/flag, creates: /srv/flag }";

/// A host where `touch /srv/flag` makes the flag (or fails as its user may not).
fn lab(state: State) -> Lab {
    let lab = Lab::new(state);
    lab.program("touch /srv/flag", Kind::Change, |s| {
        if s.unprivileged {
            return failed(1, "touch: cannot touch '/srv/flag': Permission denied\n");
        }
        s.files.insert(FLAG.into(), File::new(""));
        out(0, "")
    });
    lab
}

#[tokio::test]
async fn the_first_run_runs_it() {
    let lab = lab(State::new());
    let run = lab.run(TOUCH).await;
    assert_eq!(
        (run.status, run.msg.as_str()),
        (Status::Changed, "touch /srv/flag")
    );
    assert_eq!(run.changes, ["touch /srv/flag"]);
    assert!(lab.state().files.contains_key(FLAG));
}

#[tokio::test]
async fn a_second_run_is_kept_off_by_its_guard() {
    let lab = lab(State::new());
    let (_, second) = lab.twice(TOUCH).await;
    assert_eq!(
        (second.status, second.msg.as_str()),
        (Status::Ok, "/srv/flag exists")
    );
    assert!(second.changes.is_empty(), "{second:?}");
}

#[tokio::test]
async fn check_mode_runs_nothing_not_even_its_guards() {
    let lab = lab(State::new());
    for task in [
        TOUCH,
        "shell: { cmd: touch /srv/flag, unless: \"grep -q x /srv/flag\" }",
    ] {
        let run = lab.check(task).await;
        assert_eq!(
            (run.status, run.msg.as_str()),
            (Status::Skipped, "commands do not run in check mode")
        );
        assert!(run.sent.is_empty(), "{run:?}");
    }
    assert_eq!(lab.state(), State::new());
}

#[tokio::test]
async fn removes_and_unless_guard_it_too() {
    let lab = lab(State::new());
    let run = lab
        .run("command: { cmd: touch /srv/flag, removes: /srv/flag }")
        .await;
    assert_eq!(
        (run.status, run.msg.as_str()),
        (Status::Ok, "/srv/flag does not exist")
    );
    lab.program("test -e /srv/flag", Kind::Read, |s| {
        out(if s.files.contains_key(FLAG) { 0 } else { 1 }, "")
    });
    let task = "shell: { cmd: touch /srv/flag, unless: test -e /srv/flag }";
    let (first, second) = lab.twice(task).await;
    assert_eq!(first.status, Status::Changed, "{first:?}");
    assert_eq!(
        (second.status, second.msg.as_str()),
        (Status::Ok, "`unless` succeeded")
    );
    assert!(second.changes.is_empty(), "{second:?}");
}

#[tokio::test]
async fn command_quotes_its_words_and_shell_sends_the_line_as_written() {
    let lab = Lab::new(State::new());
    lab.program("echo 'a b' '$HOME'", Kind::Change, |_| {
        out(0, "a b $HOME\n")
    });
    lab.program("echo $HOME", Kind::Change, |_| out(0, "/root\n"));
    let run = lab.run(r#"command: "echo 'a b' '$HOME'""#).await;
    assert_eq!(run.sent, ["echo 'a b' '$HOME'"]);
    let run = lab.run("shell: echo $HOME").await;
    assert_eq!(run.sent, ["echo $HOME"]);
}

#[tokio::test]
async fn its_result_is_judged_by_failed_when() {
    let lab = Lab::new(State::new());
    lab.program("check-config", Kind::Read, |_| {
        out(0, "error: no listen port\n")
    });
    let run = lab
        .run("command: check-config\nfailed_when: \"'error' in result.stdout\"")
        .await;
    assert_eq!(run.status, Status::Failed, "{run:?}");
}

#[tokio::test]
async fn a_command_that_fails_fails_the_task_in_its_words() {
    let lab = lab(State::new().unprivileged());
    let run = lab.run(TOUCH).await;
    assert_eq!(
        (run.status, run.msg.as_str()),
        (
            Status::Failed,
            "touch /srv/flag (exit status 1): touch: cannot touch '/srv/flag': Permission denied"
        )
    );
}

#[tokio::test]
async fn a_command_that_says_why_on_stdout_fails_in_those_words() {
    let lab = Lab::new(State::new());
    lab.program("check-config", Kind::Read, |_| {
        out(1, "line 3: unknown key `workers`\n")
    });
    lab.program("false", Kind::Read, |_| out(1, ""));
    let run = lab.run("command: check-config").await;
    assert_eq!(
        (run.status, run.msg.as_str()),
        (
            Status::Failed,
            "check-config (exit status 1): line 3: unknown key `workers`"
        )
    );
    let run = lab.run("command: \"false\"").await;
    assert_eq!(run.msg, "false (exit status 1)");
}

#[tokio::test]
#[should_panic(expected = "the fake host does not know this command line:\nreboot")]
async fn a_line_the_fake_host_does_not_know_fails_the_test() {
    Lab::new(State::new()).run("command: reboot").await;
}
