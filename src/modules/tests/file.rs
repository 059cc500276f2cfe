//! `copy`, `template` and `file` over the fake host.

use super::{Lab, State};
use crate::report::Status;
use crate::transport::sh;

const CONF: &str = "/etc/app.conf";
const COPY: &str = r#"copy: { dest: /etc/app.conf, content: "port = 80\nworkers = 4\n" }"#;
const WANT: &str = "port = 80\nworkers = 4\n";

#[tokio::test]
async fn copy_creates_the_file() {
    let lab = Lab::new(State::new());
    let run = lab.run(COPY).await;
    assert_eq!(
        (run.status, run.msg.as_str()),
        (Status::Changed, "create /etc/app.conf")
    );
    assert_eq!(run.changes, [sh::file_write(CONF, None, None, None)]);
    let s = lab.state();
    assert_eq!(s.content(CONF).as_deref(), Some(WANT));
    assert_eq!(
        (s.files[CONF].mode.as_str(), s.files[CONF].owner.as_str()),
        ("644", "root:root")
    );
}

#[tokio::test]
async fn copy_with_diff_shows_what_it_wrote() {
    let lab = Lab::new(State::new());
    let run = lab.run_diff(COPY).await;
    assert_eq!(
        run.diff.as_deref(),
        Some(
            "--- /etc/app.conf (host)\n+++ /etc/app.conf (new)\n@@ -0,0 +1,2 @@\n+port = 80\n+workers = 4\n"
        )
    );
    assert_eq!(lab.state().content(CONF).as_deref(), Some(WANT));
}

#[tokio::test]
async fn copy_a_second_time_changes_nothing() {
    let lab = Lab::new(State::new());
    let (_, second) = lab.twice(COPY).await;
    assert_eq!(
        (second.status, second.msg.as_str()),
        (Status::Ok, "/etc/app.conf up to date")
    );
    assert!(second.changes.is_empty(), "{second:?}");
}

#[tokio::test]
async fn copy_in_check_mode_shows_the_diff_and_writes_nothing() {
    let before = State::new().file(CONF, "port = 80\n");
    let lab = Lab::new(before.clone());
    let run = lab.check_diff(COPY).await;
    assert_eq!(
        (run.status, run.msg.as_str()),
        (Status::Changed, "update /etc/app.conf")
    );
    assert_eq!(
        run.diff.as_deref(),
        Some(
            "--- /etc/app.conf (host)\n+++ /etc/app.conf (new)\n@@ -1 +1,2 @@\n port = 80\n+workers = 4\n"
        )
    );
    assert!(run.changes.is_empty(), "{run:?}");
    assert_eq!(lab.state(), before);
    // Without --diff the old content is not even read.
    let run = lab.check(COPY).await;
    assert!(!run.sent.contains(&sh::file_read(CONF)), "{:?}", run.sent);
}

#[tokio::test]
async fn copy_over_a_file_keeps_its_mode_and_owner_and_the_previous_version() {
    let mut before = State::new().file(CONF, "port = 80\n");
    if let Some(f) = before.files.get_mut(CONF) {
        f.mode = "640".into();
        f.owner = "app:app".into();
    }
    let lab = Lab::new(before);
    let run = lab.run(COPY).await;
    assert_eq!(run.status, Status::Changed);
    let s = lab.state();
    let (new, prev) = (&s.files[CONF], &s.files["/etc/app.conf.lvslab-prev"]);
    assert_eq!((new.mode.as_str(), new.owner.as_str()), ("640", "app:app"));
    assert_eq!(prev.content, b"port = 80\n");
}

#[tokio::test]
async fn copy_sets_only_the_mode_and_owner_when_the_content_is_right() {
    let lab = Lab::new(State::new().file(CONF, WANT));
    let task = r#"copy: { dest: /etc/app.conf, content: "port = 80\nworkers = 4\n", mode: "0600", owner: www-data }"#;
    let (first, second) = lab.twice(task).await;
    assert_eq!(
        (first.status, first.msg.as_str()),
        (Status::Changed, "mode/owner of /etc/app.conf")
    );
    assert_eq!(
        first.changes,
        [sh::file_chmod_chown(CONF, Some("600"), Some("www-data"))]
    );
    let s = lab.state();
    assert_eq!(
        (s.files[CONF].mode.as_str(), s.files[CONF].owner.as_str()),
        ("600", "www-data:root")
    );
    assert!(!s.files.contains_key("/etc/app.conf.lvslab-prev"));
    assert_eq!(second.status, Status::Ok, "{second:?}");
}

#[tokio::test]
async fn copy_keeps_the_old_file_when_the_new_one_fails_validation() {
    let lab = Lab::new(State::new().file(CONF, "port = 80\n"));
    lab.validator("app --check %s", |content| {
        if content.starts_with(b"port") {
            Err("line 2: unknown key `workers`".into())
        } else {
            Ok(())
        }
    });
    let run = lab
        .run(r#"copy: { dest: /etc/app.conf, content: "port = 80\nworkers = 4\n", validate: "app --check %s" }"#)
        .await;
    assert_eq!(run.status, Status::Failed);
    assert_eq!(
        run.msg,
        "/etc/app.conf was not replaced: the new version failed validation; the old file is unchanged. validation failed: line 2: unknown key `workers`"
    );
    assert_eq!(lab.state().content(CONF).as_deref(), Some("port = 80\n"));
}

#[tokio::test]
async fn copy_refused_by_the_host_fails_in_its_words() {
    let lab = Lab::new(State::new().unprivileged());
    let run = lab.run(COPY).await;
    assert_eq!(run.status, Status::Failed);
    assert_eq!(
        run.msg,
        "writing /etc/app.conf failed (exit status 1): mktemp: failed to create file via template '/etc/.lvslab.XXXXXX': Permission denied"
    );
    assert_eq!(lab.state(), State::new().unprivileged());
}

#[tokio::test]
async fn copy_onto_a_directory_fails() {
    let lab = Lab::new(State::new().dir(CONF, "755"));
    let run = lab.run(COPY).await;
    assert_eq!(
        (run.status, run.msg.as_str()),
        (
            Status::Failed,
            "/etc/app.conf exists and is not a regular file"
        )
    );
    assert!(run.changes.is_empty(), "{run:?}");
}

const PAGE: &str = "/var/www/html/index.html";
const TEMPLATE: &str = "template: { src: index.html.j2, dest: /var/www/html/index.html }";

#[tokio::test]
async fn template_renders_for_the_host_once() {
    let lab = Lab::new(State::new());
    let (first, second) = lab.twice(TEMPLATE).await;
    assert_eq!(
        (first.status, first.msg.as_str()),
        (Status::Changed, "create /var/www/html/index.html")
    );
    let page = lab.state().content(PAGE).unwrap_or_default();
    assert!(page.starts_with("a 10.0.0.11\n"), "{page}");
    assert_eq!(
        (second.status, second.msg.as_str()),
        (Status::Ok, "/var/www/html/index.html up to date")
    );
    assert!(second.changes.is_empty(), "{second:?}");
}

#[tokio::test]
async fn template_in_check_mode_shows_the_diff_and_writes_nothing() {
    let before = State::new().file(PAGE, "old page\n");
    let lab = Lab::new(before.clone());
    let run = lab.check_diff(TEMPLATE).await;
    assert_eq!(run.status, Status::Changed);
    let diff = run.diff.clone().unwrap_or_default();
    assert!(diff.contains("-old page\n+a 10.0.0.11\n"), "{diff}");
    assert!(run.changes.is_empty());
    assert_eq!(lab.state(), before);
}

#[tokio::test]
async fn template_refused_by_the_host_fails_in_its_words() {
    let lab = Lab::new(State::new().unprivileged());
    let run = lab.run(TEMPLATE).await;
    assert_eq!(run.status, Status::Failed);
    assert!(
        run.msg.ends_with(
            "mktemp: failed to create file via template '/var/www/html/.lvslab.XXXXXX': Permission denied"
        ),
        "{}",
        run.msg
    );
}

const DIR: &str = "file: { path: /srv/www, state: directory }";

#[tokio::test]
async fn file_makes_a_directory_once() {
    let lab = Lab::new(State::new());
    let (first, second) = lab.twice(DIR).await;
    assert_eq!(
        (first.status, first.msg.as_str()),
        (Status::Changed, "create directory /srv/www")
    );
    assert_eq!(first.changes, [sh::make_dir("/srv/www", "755")]);
    assert_eq!(lab.state().dirs["/srv/www"], "755");
    assert_eq!(
        (second.status, second.msg.as_str()),
        (Status::Ok, "/srv/www is a directory")
    );
    assert!(second.changes.is_empty(), "{second:?}");
}

#[tokio::test]
async fn file_sets_the_mode_of_a_directory_there_only_when_given() {
    let lab = Lab::new(State::new().dir("/srv/www", "755"));
    let task = r#"file: { path: /srv/www, state: directory, mode: "0750" }"#;
    let (first, second) = lab.twice(task).await;
    assert_eq!(
        (first.status, first.msg.as_str()),
        (Status::Changed, "mode of /srv/www 755 -> 750")
    );
    assert_eq!(lab.state().dirs["/srv/www"], "750");
    assert_eq!(second.status, Status::Ok, "{second:?}");
    assert!(second.changes.is_empty(), "{second:?}");
    // Without `mode:`, a directory keeps its own.
    let run = lab.run(DIR).await;
    assert_eq!(run.status, Status::Ok, "{run:?}");
    assert_eq!(lab.state().dirs["/srv/www"], "750");
}

#[tokio::test]
async fn file_in_check_mode_changes_nothing() {
    let lab = Lab::new(State::new().file(CONF, WANT));
    for task in [DIR, "file: { path: /etc/app.conf, state: absent }"] {
        let run = lab.check_diff(task).await;
        assert_eq!(run.status, Status::Changed, "{task}");
        assert!(run.changes.is_empty(), "{run:?}");
    }
    assert_eq!(lab.state(), State::new().file(CONF, WANT));
}

#[tokio::test]
async fn file_absent_removes_a_file_or_a_tree_once() {
    let lab = Lab::new(
        State::new()
            .file(CONF, WANT)
            .dir("/srv/www", "755")
            .file("/srv/www/index.html", "hi\n"),
    );
    for (task, path) in [
        ("file: { path: /etc/app.conf, state: absent }", CONF),
        ("file: { path: /srv/www, state: absent }", "/srv/www"),
    ] {
        let (first, second) = lab.twice(task).await;
        assert_eq!(
            (first.status, first.msg.clone()),
            (Status::Changed, format!("remove {path}"))
        );
        assert_eq!(
            (second.status, second.msg.clone()),
            (Status::Ok, format!("{path} absent"))
        );
        assert!(second.changes.is_empty(), "{second:?}");
    }
    assert_eq!(lab.state(), State::new());
}

#[tokio::test]
async fn file_will_not_make_a_directory_of_a_file() {
    let lab = Lab::new(State::new().file("/srv/www", "not a dir\n"));
    let run = lab.run(DIR).await;
    assert_eq!(
        (run.status, run.msg.as_str()),
        (Status::Failed, "/srv/www exists as a file, not a directory")
    );
    assert!(run.changes.is_empty(), "{run:?}");
}

#[tokio::test]
async fn file_refused_by_the_host_fails_in_its_words() {
    let lab = Lab::new(State::new().file(CONF, WANT).unprivileged());
    let run = lab
        .run("file: { path: /etc/app.conf, state: absent }")
        .await;
    assert_eq!(run.status, Status::Failed);
    assert_eq!(
        run.msg,
        "/etc/app.conf failed (exit status 1): rm: cannot remove '/etc/app.conf': Permission denied"
    );
    let run = lab.run(DIR).await;
    assert_eq!(
        run.msg,
        "/srv/www failed (exit status 1): mkdir: cannot create directory '/srv/www': Permission denied"
    );
}
