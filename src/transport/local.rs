//! The machine lvslab runs on, as a transport (`sh -c`), for probes sent from the control side.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncWriteExt;

use super::{BoxFuture, ExecOutput, Transport, TransportError};

pub struct Local;

impl Transport for Local {
    fn exec<'a>(
        &'a self,
        command: &'a str,
        stdin: Option<&'a [u8]>,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<ExecOutput, TransportError>> {
        Box::pin(async move {
            let lost = |e: std::io::Error| TransportError::Lost {
                target: "localhost".into(),
                reason: e.to_string(),
            };
            let mut child = tokio::process::Command::new("sh")
                .arg("-c")
                .arg(command)
                .stdin(if stdin.is_some() {
                    Stdio::piped()
                } else {
                    Stdio::null()
                })
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .map_err(lost)?;
            if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
                pipe.write_all(data).await.map_err(lost)?;
            }
            match tokio::time::timeout(timeout, child.wait_with_output()).await {
                Ok(out) => {
                    let out = out.map_err(lost)?;
                    use std::os::unix::process::ExitStatusExt;
                    Ok(ExecOutput {
                        status: out.status.code().map(|c| c as u32),
                        signal: out.status.signal().map(|s| s.to_string()),
                        stdout: out.stdout,
                        stderr: out.stderr,
                    })
                }
                Err(_) => Err(TransportError::Timeout {
                    secs: timeout.as_secs(),
                    command: command.to_string(),
                }),
            }
        })
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keeps_stdout_stderr_and_status_apart() {
        let out = Local
            .exec(
                "echo out; echo err >&2; exit 3",
                None,
                Duration::from_secs(5),
            )
            .await
            .unwrap();
        assert_eq!(out.stdout_str(), "out\n");
        assert_eq!(out.stderr_str(), "err\n");
        assert_eq!(out.status, Some(3));
    }

    #[tokio::test]
    async fn passes_stdin_and_times_out() {
        let out = Local
            .exec("cat", Some(b"abc"), Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(out.stdout_str(), "abc");
        let err = Local
            .exec("sleep 5", None, Duration::from_millis(100))
            .await
            .unwrap_err();
        assert!(matches!(err, TransportError::Timeout { .. }));
    }
}
