//! `lvslab exec` (one shell command on hosts) and `lvslab ping` (log in to every host).

use std::time::Instant;

use super::Setup;
use crate::cli::{ExecArgs, Global};
use crate::playbook::runner::RunResult;
use crate::report::{Event, Status};

pub async fn exec(args: &ExecArgs, global: &Global) -> miette::Result<i32> {
    let line = args.command.join(" ");
    each_host(global, "exec", Some(line), args.r#become).await
}

pub async fn ping(global: &Global) -> miette::Result<i32> {
    each_host(global, "ping", None, false).await
}

async fn each_host(
    global: &Global,
    what: &str,
    line: Option<String>,
    become_root: bool,
) -> miette::Result<i32> {
    let setup = Setup::new(global)?;
    let hosts = setup.host_names();
    setup.reporter.emit(Event::RunStart {
        what: format!("lvslab {what}"),
        hosts: hosts.clone(),
        check: false,
    });
    let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(usize::from(global.forks)));
    let jobs = hosts
        .iter()
        .filter_map(|name| setup.inventory.host(name))
        .map(|host| {
            let (setup, line, sem) = (&setup, line.clone(), sem.clone());
            async move {
                let _permit = sem.acquire().await.ok();
                let started = Instant::now();
                let conn = match setup.fleet.connect(host).await {
                    Ok(c) => c,
                    Err(e) => {
                        setup.reporter.emit(Event::Unreachable {
                            host: host.name.clone(),
                            error: e.to_string(),
                        });
                        return (host.name.clone(), Status::Unreachable);
                    }
                };
                let Some(line) = line else {
                    let f = &conn.facts;
                    let msg = format!(
                        "{} {} kernel {} ipvs {} init {}",
                        f.os_id, f.os_version, f.kernel, f.ipvs, f.init
                    );
                    setup.reporter.emit(task(
                        host,
                        "ping",
                        Status::Ok,
                        msg,
                        String::new(),
                        started,
                    ));
                    return (host.name.clone(), Status::Ok);
                };
                let session = if become_root {
                    conn.session.with_become(true)
                } else {
                    conn.session.clone()
                };
                let (status, msg, output) = match session.run(&line).await {
                    Ok(out) if out.success() => (
                        Status::Changed,
                        out.describe_status(),
                        out.stdout_str() + &out.stderr_str(),
                    ),
                    Ok(out) => (
                        Status::Failed,
                        out.describe_status(),
                        out.stdout_str() + &out.stderr_str(),
                    ),
                    Err(e) => (Status::Failed, e.to_string(), String::new()),
                };
                setup
                    .reporter
                    .emit(task(host, &line, status, msg, output, started));
                (host.name.clone(), status)
            }
        });
    let outcomes = futures::future::join_all(jobs).await;
    let mut result = RunResult::default();
    for (name, status) in outcomes {
        match status {
            Status::Unreachable => {
                result.unreachable.insert(name);
            }
            Status::Failed => {
                result.failed.insert(name);
            }
            _ => {}
        }
    }
    let code = setup.finish(&result, false, &hosts).await;
    setup.fleet.close().await;
    Ok(code)
}

fn task(
    host: &crate::inventory::Host,
    name: &str,
    status: Status,
    msg: String,
    output: String,
    started: Instant,
) -> Event {
    // Ad hoc output is what the user asked for: always show it.
    let msg = if output.trim().is_empty() {
        msg
    } else {
        format!("{msg}\n{}", output.trim_end())
    };
    Event::Task {
        host: host.name.clone(),
        task: name.to_string(),
        status,
        msg,
        diff: None,
        output: String::new(),
        ms: started.elapsed().as_millis() as u64,
    }
}
