//! The machine lvslab runs on, as a transport (`sh -c`), for probes sent from the control side.

use std::time::Duration;

use super::{BoxFuture, ExecOutput, Transport, TransportError};
use crate::process::{self, ProcessError};

pub struct Local;

impl Transport for Local {
    fn exec<'a>(
        &'a self,
        command: &'a str,
        stdin: Option<&'a [u8]>,
        timeout: Duration,
        _as_root: bool,
    ) -> BoxFuture<'a, Result<ExecOutput, TransportError>> {
        Box::pin(async move {
            let mut sh = tokio::process::Command::new("sh");
            sh.arg("-c").arg(command);
            match process::run(&mut sh, stdin, Some(timeout)).await {
                Ok(done) => {
                    use std::os::unix::process::ExitStatusExt;
                    Ok(ExecOutput {
                        status: done.status.code().map(|c| c as u32),
                        signal: done.status.signal().map(|s| s.to_string()),
                        stdout: done.stdout,
                        stderr: done.stderr,
                    })
                }
                Err(ProcessError::Timeout { .. }) => Err(TransportError::Timeout {
                    secs: timeout.as_secs(),
                    command: command.to_string(),
                }),
                Err(e) => Err(TransportError::Lost {
                    target: "localhost".into(),
                    reason: e.to_string(),
                }),
            }
        })
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }

    fn exchange<'a>(
        &'a self,
        address: &'a str,
        port: u16,
        request: &'a [u8],
        timeout: Duration,
    ) -> Option<BoxFuture<'a, Result<Vec<u8>, String>>> {
        Some(Box::pin(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let work = async {
                let mut stream = tokio::net::TcpStream::connect((address, port))
                    .await
                    .map_err(|e| e.to_string())?;
                stream.write_all(request).await.map_err(|e| e.to_string())?;
                let mut answer = Vec::new();
                stream
                    .read_to_end(&mut answer)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(answer)
            };
            super::within_exchange(timeout, work).await
        }))
    }

    fn tcp_stream<'a>(
        &'a self,
        address: &'a str,
        port: u16,
    ) -> Option<BoxFuture<'a, Result<super::TcpStream, String>>> {
        Some(Box::pin(async move {
            let stream = tokio::net::TcpStream::connect((address, port))
                .await
                .map_err(|e| e.to_string())?;
            Ok(Box::new(stream) as super::TcpStream)
        }))
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
                false,
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
            .exec("cat", Some(b"abc"), Duration::from_secs(5), false)
            .await
            .unwrap();
        assert_eq!(out.stdout_str(), "abc");
        let err = Local
            .exec("sleep 5", None, Duration::from_millis(100), false)
            .await
            .unwrap_err();
        assert!(matches!(err, TransportError::Timeout { .. }));
    }
}
