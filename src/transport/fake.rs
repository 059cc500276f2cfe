//! A scripted transport for unit tests of the engine's semantics: each command line is answered
//! by a function (`sleep MS` also takes that long), and every line is logged. A test scripts what
//! the host answers (a tool's captured output, an exit status) to test lvslab's own logic; whether
//! the hosts, daemons and kernel really behave so is tested against the real lab.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{BoxFuture, Connector, ExecOutput, Transport, TransportError, sh};
use crate::inventory::Host;

/// Answers a command line, given what it was sent on stdin (`None`: nothing).
pub type Responder = Arc<dyn Fn(&str, Option<&[u8]>) -> ExecOutput + Send + Sync>;

/// What the fake facts script prints (a Debian host with systemd and IPVS).
pub const FACTS: &str = "os_id=debian\nos_like=\nos_version=12\npkg=apt-get\ninit=systemd\nhostname=h\nkernel=6.1.0\nipvs=loaded\naddr=eth0 10.0.0.11/24\n";

/// An exit status and stdout.
pub fn out(status: u32, stdout: &str) -> ExecOutput {
    ExecOutput {
        status: Some(status),
        signal: None,
        stdout: stdout.as_bytes().to_vec(),
        stderr: Vec::new(),
    }
}

/// An exit status and stderr: a command that failed and said why.
pub fn failed(status: u32, stderr: &str) -> ExecOutput {
    ExecOutput {
        status: Some(status),
        signal: None,
        stdout: Vec::new(),
        stderr: stderr.as_bytes().to_vec(),
    }
}

/// One fake host: answers with `responder`, logs every line but the facts script.
pub struct Scripted {
    responder: Responder,
    facts: String,
    log: Arc<Mutex<Vec<String>>>,
    closed: Arc<AtomicBool>,
}

impl Transport for Scripted {
    fn exec<'a>(
        &'a self,
        command: &'a str,
        stdin: Option<&'a [u8]>,
        _timeout: Duration,
        _as_root: bool,
    ) -> BoxFuture<'a, Result<ExecOutput, TransportError>> {
        Box::pin(async move {
            if command == sh::facts().line() {
                return Ok(out(0, &self.facts));
            }
            if let Ok(mut log) = self.log.lock() {
                log.push(command.to_string());
            }
            // `sleep MS` takes that long, as a slow command would.
            if let Some(ms) = command.strip_prefix("sleep ").and_then(|m| m.parse().ok()) {
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            Ok((self.responder)(command, stdin))
        })
    }

    /// A batch is answered line by line, each line logged as if sent alone: a test sees what
    /// the host was asked, whichever way; the framing of a real batch is tested on a real `sh`.
    fn exec_batch<'a>(
        &'a self,
        commands: &'a [String],
        timeout: Duration,
        as_root: bool,
    ) -> BoxFuture<'a, Result<Vec<ExecOutput>, TransportError>> {
        Box::pin(async move {
            let mut answers = Vec::with_capacity(commands.len());
            for command in commands {
                answers.push(self.exec(command, None, timeout, as_root).await?);
            }
            Ok(answers)
        })
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        self.closed.store(true, Ordering::SeqCst);
        Box::pin(async {})
    }
}

/// What the fake hosts saw of one host: its connections, their lines, whether it was closed.
#[derive(Default)]
struct Seen {
    connections: usize,
    log: Arc<Mutex<Vec<String>>>,
    closed: Arc<AtomicBool>,
}

/// Fake hosts by name; a host without a script cannot be reached.
#[derive(Default)]
pub struct FakeHosts {
    scripts: HashMap<String, Responder>,
    facts: HashMap<String, String>,
    seen: Mutex<HashMap<String, Seen>>,
}

impl FakeHosts {
    pub fn host(
        self,
        name: &str,
        responder: impl Fn(&str) -> ExecOutput + Send + Sync + 'static,
    ) -> Self {
        self.host_with_stdin(name, move |command, _| responder(command))
    }

    /// A host whose responder also reads what a command is sent on stdin (a file's content).
    pub fn host_with_stdin(
        mut self,
        name: &str,
        responder: impl Fn(&str, Option<&[u8]>) -> ExecOutput + Send + Sync + 'static,
    ) -> Self {
        self.scripts.insert(name.to_string(), Arc::new(responder));
        self
    }

    /// What `host`'s facts script prints (default [`FACTS`]).
    pub fn facts(mut self, host: &str, facts: &str) -> Self {
        self.facts.insert(host.to_string(), facts.to_string());
        self
    }

    /// Every command line `host` was sent on its last connection, in order.
    pub fn log(&self, host: &str) -> Vec<String> {
        self.seen
            .lock()
            .ok()
            .and_then(|s| s.get(host).map(|s| s.log.clone()))
            .and_then(|l| l.lock().ok().map(|v| v.clone()))
            .unwrap_or_default()
    }

    /// How many connections to `host` were opened.
    pub fn connections(&self, host: &str) -> usize {
        self.seen
            .lock()
            .ok()
            .and_then(|s| s.get(host).map(|s| s.connections))
            .unwrap_or(0)
    }

    /// Whether `host`'s last connection was closed.
    pub fn closed(&self, host: &str) -> bool {
        self.seen
            .lock()
            .ok()
            .and_then(|s| s.get(host).map(|s| s.closed.load(Ordering::SeqCst)))
            .unwrap_or(false)
    }
}

impl Connector for FakeHosts {
    fn connect<'a>(
        &'a self,
        host: &'a Host,
    ) -> BoxFuture<'a, Result<Arc<dyn Transport>, TransportError>> {
        Box::pin(async move {
            let Some(responder) = self.scripts.get(&host.name) else {
                return Err(TransportError::Connect {
                    target: host.name.clone(),
                    reason: "no answer within 1 s".into(),
                });
            };
            let log = Arc::new(Mutex::new(Vec::new()));
            let closed = Arc::new(AtomicBool::new(false));
            if let Ok(mut seen) = self.seen.lock() {
                let seen = seen.entry(host.name.clone()).or_default();
                seen.connections += 1;
                seen.log = log.clone();
                seen.closed = closed.clone();
            }
            Ok(Arc::new(Scripted {
                responder: responder.clone(),
                facts: self
                    .facts
                    .get(&host.name)
                    .cloned()
                    .unwrap_or_else(|| FACTS.to_string()),
                log,
                closed,
            }) as Arc<dyn Transport>)
        })
    }
}
