//! `lvslab exec` (one shell command on hosts) and `lvslab ping` (log in to every host), through
//! the runner's per-host fan-out (forks, unreachable hosts, Ctrl-C) like any playbook.

use std::sync::Arc;
use std::time::Instant;

use super::Setup;
use super::args::{ExecArgs, Global};
use crate::cli::outcome::Outcome;
use crate::fleet::Connected;
use crate::inventory::Host;
use crate::playbook::runner::{HostEnd, RunOptions, RunResult, Runner};
use crate::report::{Event, Status};
use crate::templates::Templates;

pub async fn exec(args: &ExecArgs, global: &Global) -> miette::Result<Outcome> {
    let line = args.command.join(" ");
    each_host(global, "exec", Some(line), args.r#become).await
}

pub async fn ping(global: &Global) -> miette::Result<Outcome> {
    each_host(global, "ping", None, false).await
}

async fn each_host(
    global: &Global,
    what: &str,
    line: Option<String>,
    become_root: bool,
) -> miette::Result<Outcome> {
    let setup = Setup::new(global)?;
    let names = setup.host_names();
    setup.reporter.emit(Event::RunStart {
        what: format!("lvslab {what}"),
        hosts: names.clone(),
        check: false,
    });
    let hosts: Vec<Host> = names
        .iter()
        .filter_map(|n| setup.inventory.host(n).cloned())
        .collect();
    let runner = Runner::new(
        setup.inventory.clone(),
        Arc::new(Templates::new(&[])?),
        setup.fleet.clone(),
        setup.reporter.clone(),
        RunOptions {
            forks: global.forks(),
            ..RunOptions::default()
        },
        setup.cancel.clone(),
    );
    let mut result = RunResult::default();
    let reporter = &setup.reporter;
    runner
        .fan_out(&hosts, &mut result, |host, conn: Arc<Connected>| {
            let line = line.clone();
            async move {
                let started = Instant::now();
                let Some(line) = line else {
                    let f = &conn.facts;
                    let msg = format!(
                        "{} {} kernel {} ipvs {} init {}",
                        f.os_id, f.os_version, f.kernel, f.ipvs, f.init
                    );
                    reporter.emit(task(host, "ping", Status::Ok, msg, String::new(), started));
                    return HostEnd::Done;
                };
                let session = if become_root {
                    conn.session.with_become(true)
                } else {
                    conn.session.clone()
                };
                let (status, msg, output) = match session.run(&line).await {
                    Ok(out) => (
                        if out.success() {
                            Status::Changed
                        } else {
                            Status::Failed
                        },
                        out.describe_status(),
                        out.stdout_str() + &out.stderr_str(),
                    ),
                    Err(e) => (Status::Failed, e.to_string(), String::new()),
                };
                reporter.emit(task(host, &line, status, msg, output, started));
                if status == Status::Failed {
                    HostEnd::Failed
                } else {
                    HostEnd::Done
                }
            }
        })
        .await;
    let outcome = setup.finish(&result, false, &names);
    setup.fleet.close().await;
    Ok(outcome)
}

fn task(
    host: &Host,
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
