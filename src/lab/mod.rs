//! The local lab (`lvslab lab ...`): hosts as network namespaces on one bridge, each with a real
//! sshd in its own mount, UTS and pid namespaces. Tier 1 of the lab; the qemu tier builds on it.
//!
//! For other parts of lvslab (the demo, tests): [`up`] builds a lab and returns a [`Lab`] with its
//! inventory and nodes, [`down`] removes one, [`status`] probes one, and [`node_command`] runs a
//! command inside a node.

mod demo;
mod down;
mod error;
mod exec;
mod files;
mod inventory_file;
mod netns;
mod node;
mod plan;
mod procs;
mod requirements;
mod state;
mod status;
mod sys;
mod up;
mod up_vm;
mod view;
pub mod vm;

// The API for the demo and the VM tier; not all of it is used by the CLI itself.
#[allow(unused_imports)]
pub use down::{DownReport, down};
pub use error::LabError;
pub use exec::node_command;
#[allow(unused_imports)]
pub use plan::{NodeSpec, Role};
#[allow(unused_imports)]
pub use status::{LabStatus, NodeHealth, status};
#[allow(unused_imports)]
pub use up::{GuestLink, Lab, UpOptions, up};
pub use up_vm::up_vm;

use serde::Serialize;

use crate::cli::{Global, LabCommand, LabUpArgs};
use crate::exit;

/// Runs one `lvslab lab` command; returns the exit code.
pub async fn run(cmd: LabCommand, global: &Global) -> miette::Result<i32> {
    let outcome = match cmd {
        LabCommand::Up(args) => run_up(args, global).await,
        LabCommand::Down(args) => down(&args.name).await.map(|report| {
            print(global, &report, || view::down(&report));
            exit::OK
        }),
        LabCommand::Status(args) => status(&args.name).await.map(|status| {
            print(global, &status, || view::status(&status));
            if status.all_healthy() {
                exit::OK
            } else {
                exit::FAILED
            }
        }),
        LabCommand::Exec { lab, node, command } => run_exec(&lab.name, &node, &command).await,
        LabCommand::VmRun { script } => return vm::vm_run_command(&script).await,
        LabCommand::Demo(args) => return demo::demo(args, global).await,
        // The VM tier's commands are wired by the VM tier.
        #[allow(unreachable_patterns)]
        _ => Err(LabError::Usage(
            "this `lvslab lab` command is not available yet".into(),
        )),
    };
    match outcome {
        Ok(code) => Ok(code),
        Err(e) => exit_for(e),
    }
}

/// A lab error as the user sees it: one sentence and exit 1 for their own problems, 130 after
/// Ctrl-C, the full report otherwise.
fn exit_for(e: LabError) -> miette::Result<i32> {
    match e {
        e if e.is_for_the_user() => {
            eprintln!("lvslab: {e}");
            Ok(exit::INPUT)
        }
        e @ LabError::Interrupted(_) => {
            eprintln!("lvslab: {e}");
            Ok(exit::INTERRUPTED)
        }
        e => Err(e.into()),
    }
}

async fn run_up(args: LabUpArgs, global: &Global) -> Result<i32, LabError> {
    let lab = up_for(&args).await?;
    print(global, &lab, || view::up(&lab, global.verbose > 0));
    Ok(exit::OK)
}

/// `lab up` as asked: here, or in a VM with `--vm`.
pub async fn up_for(args: &LabUpArgs) -> Result<Lab, LabError> {
    let options = UpOptions {
        name: args.lab.name.clone(),
        real_servers: args.real_servers,
        install_deps: args.install_deps,
        guest: match (&args.guest_keys, &args.uplink) {
            (Some(keys), Some(uplink)) => Some(GuestLink {
                keys: keys.clone(),
                uplink: uplink.clone(),
            }),
            _ => None,
        },
    };
    let built = if args.vm {
        up_vm(&options).await
    } else {
        up(&options).await
    };
    if built.is_err() {
        state::Lock::remove_if_unused(&state::LabPaths::new(&options.name));
    }
    built
}

/// Runs the command with our stdin/stdout/stderr and returns its exit code
/// (128 + signal number when a signal ended it, as shells do).
async fn run_exec(lab: &str, node: &str, argv: &[String]) -> Result<i32, LabError> {
    let mut command = node_command(lab, node, argv)?;
    let status = command.status().await.map_err(|e| LabError::Command {
        command: format!("nsenter into {node}"),
        detail: e.to_string(),
    })?;
    use std::os::unix::process::ExitStatusExt;
    Ok(status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(exit::FAILED))
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
