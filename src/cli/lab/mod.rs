//! `lvslab lab ...`: the local lab's commands, printed for people or as JSON.

mod demo;
mod view;
mod vm_run;

use serde::Serialize;

use super::args::{Global, LabCommand, LabDepsArgs, LabUpArgs};
use crate::cli::outcome::Outcome;
use crate::lab::{self, GuestLink, Lab, LabError, UpOptions};

/// Runs one `lvslab lab` command.
pub async fn run(cmd: LabCommand, global: &Global) -> miette::Result<Outcome> {
    let outcome = match cmd {
        LabCommand::Up(args) => build(&args).await.map(|lab| {
            print(global, &lab, || view::up(&lab, global.verbose > 0));
            Outcome::Ok
        }),
        LabCommand::Down(args) => lab::down(&args.name, view::say).await.map(|report| {
            print(global, &report, || view::down(&report));
            Outcome::Ok
        }),
        LabCommand::Status(args) => lab::status(&args.name).await.map(|status| {
            print(global, &status, || view::status(&status));
            if status.all_healthy() {
                Outcome::Ok
            } else {
                Outcome::Failed
            }
        }),
        LabCommand::Deps(args) => deps(&args, global).await,
        LabCommand::Exec { lab, node, command } => exec(&lab.name, &node, &command).await,
        LabCommand::VmRun { script } => return vm_run::vm_run(&script).await,
        LabCommand::Demo(args) => return demo::demo(args, global).await,
    };
    match outcome {
        Ok(o) => Ok(o),
        Err(e) => outcome_of(e),
    }
}

/// A lab error as the user sees it: one sentence and exit 1 for their own problems, 130 after
/// Ctrl-C, the full report otherwise.
fn outcome_of(e: LabError) -> miette::Result<Outcome> {
    match e {
        e if e.is_for_the_user() => {
            eprintln!("lvslab: {e}");
            Ok(Outcome::Input)
        }
        e @ LabError::Interrupted(_) => {
            eprintln!("lvslab: {e}");
            Ok(Outcome::Interrupted)
        }
        e => Err(e.into()),
    }
}

/// `lab deps`: the list, installed first with `--install`; fails while anything is missing.
async fn deps(args: &LabDepsArgs, global: &Global) -> Result<Outcome, LabError> {
    use crate::lab::requirements;
    let places = match (args.tests, args.vm) {
        (true, _) => requirements::TESTS.to_vec(),
        (false, true) => [requirements::LAB, requirements::VM].concat(),
        (false, false) => requirements::LAB.to_vec(),
    };
    let installed = requirements::ensure(&places, args.install, view::say).await;
    let deps = requirements::deps(&places);
    print(global, &deps, || view::deps(&deps));
    installed.map(|_| Outcome::Ok)
}

/// `lab up` as asked: here, or in a VM with `--vm`.
async fn build(args: &LabUpArgs) -> Result<Lab, LabError> {
    let options = UpOptions {
        name: args.lab.name.clone(),
        real_servers: args.real_servers,
        forwarding: args.forwarding,
        install_deps: args.install_deps,
        init: args.init,
        guest: args.guest_keys.as_ref().map(|keys| GuestLink {
            keys: keys.clone(),
            uplinks: args.uplink.clone(),
        }),
        say: view::say,
    };
    lab::build(&options, args.vm).await
}

/// Runs the command with our stdin/stdout/stderr and passes its exit code through
/// (128 + signal number when a signal ended it, as shells do).
async fn exec(lab: &str, node: &str, argv: &[String]) -> Result<Outcome, LabError> {
    crate::lab::procs::require_root("lvslab lab exec", "it enters the node's namespaces")?;
    let mut command = lab::node_command(lab, node, argv)?;
    let status = command.status().await.map_err(|e| LabError::Command {
        command: format!("nsenter into {node}"),
        detail: e.to_string(),
    })?;
    use std::os::unix::process::ExitStatusExt;
    Ok(Outcome::Exited(
        status
            .code()
            .or_else(|| status.signal().map(|s| 128 + s))
            .unwrap_or(Outcome::Failed.code()),
    ))
}

/// JSON (one line) with `--json`, the human text otherwise.
fn print<T: Serialize>(global: &Global, value: &T, human: impl FnOnce() -> String) {
    if global.json {
        match serde_json::to_string(value) {
            Ok(line) => println!("{line}"),
            Err(e) => eprintln!("lvslab: cannot write JSON: {e}"),
        }
    } else {
        print!("{}", human());
    }
}
