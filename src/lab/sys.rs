//! Running the system's tools (ip, ssh-keygen, ...) with errors that say which command failed.

use std::path::{Path, PathBuf};

use tokio::process::Command;

use super::error::LabError;

pub use crate::programs::find_in_path as which;

/// Runs `program args...`, feeding `stdin` if given; returns stdout, or an error with stderr.
pub async fn run(program: &str, args: &[&str], stdin: Option<&str>) -> Result<String, LabError> {
    let mut command = Command::new(program);
    command.args(args);
    let shown = crate::process::describe(&command);
    let done = crate::process::run(&mut command, stdin.map(str::as_bytes), None)
        .await
        .map_err(|e| LabError::Command {
            command: shown.clone(),
            detail: e.to_string(),
        })?;
    if done.status.success() {
        Ok(done.stdout_str())
    } else {
        Err(LabError::Command {
            command: shown,
            detail: done.why(),
        })
    }
}

/// Runs a list of `ip` commands in one process (`ip -batch -`): one fork for the whole lab.
/// With `force`, a failing line does not stop the rest (used for removal).
pub async fn ip_batch(lines: &[String], force: bool) -> Result<(), LabError> {
    if lines.is_empty() {
        return Ok(());
    }
    let mut args = vec!["-batch", "-"];
    if force {
        args.insert(0, "-force");
    }
    let input = lines.join("\n") + "\n";
    run("ip", &args, Some(&input)).await.map(|_| ())
}

/// Removes the cgroups named `prefix...` at the top of the unified hierarchy (a systemd node's
/// keeper makes one; the node's systemd nests its own in it), deepest first. Their processes
/// were killed just before: waits up to 5 s for the kernel to let them go.
pub async fn remove_cgroups(prefix: &str) -> Result<(), LabError> {
    let root = Path::new("/sys/fs/cgroup");
    let Ok(entries) = std::fs::read_dir(root) else {
        return Ok(());
    };
    let tops: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
        .map(|e| e.path())
        .collect();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    for top in tops {
        while top.exists() {
            let mut dirs = Vec::new();
            deepest_first(&top, &mut dirs);
            for dir in &dirs {
                let _ = std::fs::remove_dir(dir);
            }
            if !top.exists() {
                break;
            }
            if std::time::Instant::now() > deadline {
                return Err(LabError::Command {
                    command: format!("rmdir {}", top.display()),
                    detail: "the cgroup still holds processes after 5 s".into(),
                });
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
    Ok(())
}

/// `dir`'s subdirectories, each after its own, then `dir`.
fn deepest_first(dir: &Path, out: &mut Vec<PathBuf>) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.filter_map(Result::ok) {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                deepest_first(&entry.path(), out);
            }
        }
    }
    out.push(dir.to_path_buf());
}
