//! Running a program on this machine: the one place that starts it, feeds its stdin, waits
//! for it (within a bound, if given; it is killed when the wait ends early) and collects its
//! output. The lab's tools, the VM tier's image builder and the local transport all use it.

use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

/// A finished program.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Finished {
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Its stderr, or its exit status when stderr is empty: why it failed, in one string.
    pub fn why(&self) -> String {
        match String::from_utf8_lossy(&self.stderr).trim() {
            "" => self.status.to_string(),
            text => text.to_string(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("cannot start `{command}`: {source}")]
    Start {
        command: String,
        source: std::io::Error,
    },
    #[error("`{command}`: {source}")]
    Io {
        command: String,
        source: std::io::Error,
    },
    #[error("`{command}` did not finish within {} s (killed)", .after.as_secs())]
    Timeout { command: String, after: Duration },
}

/// The command as a line, for messages.
pub fn describe(command: &Command) -> String {
    let std = command.as_std();
    std::iter::once(std.get_program())
        .chain(std.get_args())
        .map(|s| s.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs `command` with `stdin` (or /dev/null) and collects its output; with `timeout`, kills it
/// when it runs longer.
pub async fn run(
    command: &mut Command,
    stdin: Option<&[u8]>,
    timeout: Option<Duration>,
) -> Result<Finished, ProcessError> {
    let shown = describe(command);
    let io = |source| ProcessError::Io {
        command: shown.clone(),
        source,
    };
    command
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn().map_err(|source| ProcessError::Start {
        command: shown.clone(),
        source,
    })?;
    if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(data).await.map_err(io)?;
    }
    let wait = child.wait_with_output();
    let output = match timeout {
        None => wait.await.map_err(io)?,
        Some(after) => match tokio::time::timeout(after, wait).await {
            Ok(out) => out.map_err(io)?,
            Err(_) => {
                return Err(ProcessError::Timeout {
                    command: shown,
                    after,
                });
            }
        },
    };
    Ok(Finished {
        status: output.status,
        stdout: output.stdout,
        stderr: output.stderr,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn feeds_stdin_collects_output_and_bounds_the_wait() {
        let done = run(Command::new("cat").arg("-"), Some(b"abc"), None)
            .await
            .unwrap();
        assert!(done.status.success());
        assert_eq!(done.stdout_str(), "abc");
        let failed = run(
            Command::new("sh").args(["-c", "echo no >&2; exit 3"]),
            None,
            None,
        )
        .await
        .unwrap();
        assert_eq!(failed.status.code(), Some(3));
        assert_eq!(failed.why(), "no");
        let slow = run(
            Command::new("sleep").arg("5"),
            None,
            Some(Duration::from_millis(100)),
        )
        .await
        .unwrap_err();
        assert!(
            slow.to_string().contains("`sleep 5` did not finish"),
            "{slow}"
        );
        let missing = run(&mut Command::new("lvslab-no-such-program"), None, None)
            .await
            .unwrap_err();
        assert!(matches!(missing, ProcessError::Start { .. }));
    }
}
