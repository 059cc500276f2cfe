//! A scripted transport for unit tests of the engine's semantics: each command line is answered
//! by a function (`sleep MS` also takes that long), and every line is logged. A test scripts what
//! the host answers (a tool's captured output, an exit status) to test lvslab's own logic; whether
//! the hosts, daemons and kernel really behave so is tested against the real lab.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{BoxFuture, Connector, ExecOutput, Transport, TransportError, sh};
use crate::inventory::Host;

/// Answers a command line.
pub type Responder = Arc<dyn Fn(&str) -> ExecOutput + Send + Sync>;

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

/// One fake host: answers with `responder`, logs every line but the facts script.
pub struct Scripted {
    responder: Responder,
    log: Arc<Mutex<Vec<String>>>,
}

impl Transport for Scripted {
    fn exec<'a>(
        &'a self,
        command: &'a str,
        _stdin: Option<&'a [u8]>,
        _timeout: Duration,
        _as_root: bool,
    ) -> BoxFuture<'a, Result<ExecOutput, TransportError>> {
        Box::pin(async move {
            if command == sh::facts().line() {
                return Ok(out(0, FACTS));
            }
            if let Ok(mut log) = self.log.lock() {
                log.push(command.to_string());
            }
            // `sleep MS` takes that long, as a slow command would.
            if let Some(ms) = command.strip_prefix("sleep ").and_then(|m| m.parse().ok()) {
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            Ok((self.responder)(command))
        })
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

/// Fake hosts by name; a host without a script cannot be reached.
#[derive(Default)]
pub struct FakeHosts {
    scripts: HashMap<String, Responder>,
    logs: Mutex<HashMap<String, Arc<Mutex<Vec<String>>>>>,
}

impl FakeHosts {
    pub fn host(
        mut self,
        name: &str,
        responder: impl Fn(&str) -> ExecOutput + Send + Sync + 'static,
    ) -> Self {
        self.scripts.insert(name.to_string(), Arc::new(responder));
        self
    }

    /// Every command line `host` was sent, in order.
    pub fn log(&self, host: &str) -> Vec<String> {
        self.logs
            .lock()
            .ok()
            .and_then(|l| l.get(host).cloned())
            .and_then(|l| l.lock().ok().map(|v| v.clone()))
            .unwrap_or_default()
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
            if let Ok(mut logs) = self.logs.lock() {
                logs.insert(host.name.clone(), log.clone());
            }
            Ok(Arc::new(Scripted {
                responder: responder.clone(),
                log,
            }) as Arc<dyn Transport>)
        })
    }
}
