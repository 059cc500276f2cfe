//! Running commands on hosts. The runner talks to the [`Transport`] trait; SSH (russh) is one
//! implementation, the local machine another. Every remote command line is built in
//! [`sh`], the one place where quoting happens.

#[cfg(test)]
pub mod fake;
mod framing;
mod keyfile;
mod known_hosts;
pub mod local;
mod quickack;
pub mod sh;
pub mod ssh;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A TCP connection made from a host and kept open: bytes both ways until either side closes
/// it (see [`Transport::tcp_stream`]).
pub trait Duplex: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin> Duplex for T {}
pub type TcpStream = Box<dyn Duplex>;

/// What a finished command left behind.
#[derive(Debug, Clone, Default)]
pub struct ExecOutput {
    /// Exit status; `None` when the command was ended by a signal (see `signal`).
    pub status: Option<u32>,
    pub signal: Option<String>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl ExecOutput {
    pub fn success(&self) -> bool {
        self.status == Some(0)
    }
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    pub fn stderr_str(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
    /// Exit status or signal, for messages.
    pub fn describe_status(&self) -> String {
        match (&self.status, &self.signal) {
            (Some(s), _) => format!("exit status {s}"),
            (None, Some(sig)) => format!("killed by signal {sig}"),
            (None, None) => "no exit status".into(),
        }
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum TransportError {
    #[error("cannot connect to {target}: {reason}")]
    Connect { target: String, reason: String },
    #[error(
        "host key of {target} is not in {known_hosts} ({fingerprint}); to trust it, check the fingerprint and rerun with --accept-new-host-keys, or add it: ssh-keyscan -p {port} {target} >> {known_hosts}"
    )]
    UnknownHostKey {
        target: String,
        port: u16,
        known_hosts: String,
        fingerprint: String,
    },
    #[error(
        "HOST KEY CHANGED for {target}: {known_hosts} line {line} has another key (a {known_type} key; the host offers a {offered_type} key, {fingerprint}). This may be an attack; if the host was really reinstalled, remove that line and check the new fingerprint. No command was run."
    )]
    ChangedHostKey {
        target: String,
        known_hosts: String,
        line: usize,
        known_type: String,
        offered_type: String,
        fingerprint: String,
    },
    #[error(
        "the host key of {target} ({fingerprint}) is marked @revoked in {known_hosts} line {line}: refused. No command was run."
    )]
    RevokedHostKey {
        target: String,
        known_hosts: String,
        line: usize,
        fingerprint: String,
    },
    #[error("cannot log in to {target} as {user}: {reason}")]
    Auth {
        target: String,
        user: String,
        reason: String,
    },
    #[error("command timed out after {secs} s (ended on the host): {command}")]
    Timeout { secs: u64, command: String },
    #[error("connection to {target} lost: {reason}")]
    Lost { target: String, reason: String },
    #[error("cannot read the facts of {host}: {reason}")]
    NoFacts { host: String, reason: String },
    /// A command asked of a session that only collects a task's reads (see
    /// [`Session::probing`]): nothing was run. Never reaches a user: the collecting run's
    /// results are thrown away.
    #[error("not run: only collecting the reads of a task")]
    Collecting,
}

/// Why a [`sh::Read`] gave no value: the host could not be asked, or its answer not read.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error(transparent)]
    Parse(#[from] sh::ParseError),
}

impl TransportError {
    /// Errors that mean the host cannot be worked on at all (recap: unreachable).
    pub fn is_unreachable(&self) -> bool {
        !matches!(
            self,
            TransportError::Timeout { .. } | TransportError::Collecting
        )
    }
}

/// Opens connections to hosts: SSH (`fleet::SshConnector`) in real runs, the scripted fake in
/// unit tests.
pub trait Connector: Send + Sync {
    /// A logged-in connection to `host`.
    fn connect<'a>(
        &'a self,
        host: &'a crate::inventory::Host,
    ) -> BoxFuture<'a, Result<Arc<dyn Transport>, TransportError>>;

    /// Closes what the connector holds besides the hosts' own connections (jump hosts).
    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

/// A way to run commands on one host.
pub trait Transport: Send + Sync {
    /// Run `command` (a shell command line) with optional stdin, as root through `sudo -n` when
    /// `as_root`; end it (all it started, as the user it ran as) after `timeout` or when the
    /// future is dropped.
    fn exec<'a>(
        &'a self,
        command: &'a str,
        stdin: Option<&'a [u8]>,
        timeout: Duration,
        as_root: bool,
    ) -> BoxFuture<'a, Result<ExecOutput, TransportError>>;

    /// Several read-only commands in one round trip (see [`framing::Framing::batch`]): each
    /// one's output as if it had run alone, in order.
    fn exec_batch<'a>(
        &'a self,
        commands: &'a [String],
        timeout: Duration,
        as_root: bool,
    ) -> BoxFuture<'a, Result<Vec<ExecOutput>, TransportError>> {
        Box::pin(async move {
            let framing = framing::Framing::new();
            let out = self
                .exec(&framing.batch(commands), None, timeout, as_root)
                .await?;
            let answers = framing
                .split(&out.stdout, &out.stderr, commands.len())
                .ok_or_else(|| TransportError::Lost {
                    target: "the host".into(),
                    reason: format!(
                        "a batch of {} queries ended early ({})",
                        commands.len(),
                        out.describe_status()
                    ),
                })?;
            Ok(answers
                .into_iter()
                .map(|c| ExecOutput {
                    status: c.status,
                    signal: None,
                    stdout: c.stdout,
                    stderr: c.stderr,
                })
                .collect())
        })
    }

    /// Close the connection (best effort).
    fn close(&self) -> BoxFuture<'_, ()>;

    /// A TCP connection made from the host to `address:port`: `request` sent, everything
    /// answered until the other side closes, within `timeout` (a drill's request, seen from the
    /// client without a process started there). `None`: this transport cannot.
    fn exchange<'a>(
        &'a self,
        _address: &'a str,
        _port: u16,
        _request: &'a [u8],
        _timeout: Duration,
    ) -> Option<BoxFuture<'a, Result<Vec<u8>, String>>> {
        None
    }

    /// A TCP connection made from the host to `address:port`, kept open for the caller (a
    /// drill's connection held across a fault, seen from the client). `None`: this transport
    /// cannot.
    fn tcp_stream<'a>(
        &'a self,
        _address: &'a str,
        _port: u16,
    ) -> Option<BoxFuture<'a, Result<TcpStream, String>>> {
        None
    }
}

/// A read-only query as a session keeps it: whether it runs as root, and its line.
pub type ReadLine = (bool, String);

/// What a [`Session::probing`] session noted: each read not fetched yet, once, and how many
/// times a read found no answer (a read asked twice counts twice).
#[derive(Default)]
struct Collected {
    reads: Vec<ReadLine>,
    misses: usize,
}

/// A connected host as the runner sees it: the transport, privilege escalation, timeouts, a
/// count of round trips (for `-v` and the benchmark), and the answers of read-only queries
/// fetched ahead in one round trip (see [`Session::prefetch`]).
#[derive(Clone)]
pub struct Session {
    transport: Arc<dyn Transport>,
    become_root: bool,
    timeout: Duration,
    round_trips: Arc<AtomicU32>,
    /// Answers fetched ahead, each taken by the first read of its line. Any other command
    /// sent through the session forgets them all: it may have changed what they say.
    ahead: Arc<Mutex<HashMap<ReadLine, ExecOutput>>>,
    /// How many times answers fetched ahead were forgotten before they were read.
    forgotten: Arc<AtomicU32>,
    /// Set on a session that only collects the reads made through it (see [`Session::probing`]).
    collecting: Option<Arc<Mutex<Collected>>>,
}

impl Session {
    pub fn new(transport: Arc<dyn Transport>, become_root: bool, timeout: Duration) -> Self {
        Session {
            transport,
            become_root,
            timeout,
            round_trips: Arc::new(AtomicU32::new(0)),
            ahead: Arc::default(),
            forgotten: Arc::default(),
            collecting: None,
        }
    }

    /// The same connection and answers fetched ahead, but nothing is sent: a read whose answer
    /// is not fetched yet is noted (see [`Session::collected`]) and fails with
    /// [`TransportError::Collecting`], as does every other command. A task's query run through
    /// it tells which reads it starts with, without running anything.
    pub fn probing(&self) -> Session {
        Session {
            collecting: Some(Arc::default()),
            ..self.clone()
        }
    }

    /// The reads a [`Session::probing`] session noted, in order, each once.
    pub fn collected(&self) -> Vec<ReadLine> {
        self.collecting
            .as_ref()
            .and_then(|c| c.lock().ok().map(|c| c.reads.clone()))
            .unwrap_or_default()
    }

    /// How many reads of a [`Session::probing`] session found no answer fetched yet.
    pub fn misses(&self) -> usize {
        self.collecting
            .as_ref()
            .and_then(|c| c.lock().ok().map(|c| c.misses))
            .unwrap_or(0)
    }

    /// Runs `reads` in one round trip per privilege (see [`Transport::exec_batch`]) and keeps
    /// their answers for the reads that follow; false when a batch failed. A batch that fails
    /// keeps nothing: each read then asks the host itself (and meets the failure there, with
    /// its own message).
    pub async fn prefetch(&self, reads: &[ReadLine]) -> bool {
        let mut answered = true;
        for as_root in [true, false] {
            let lines: Vec<String> = reads
                .iter()
                .filter(|(root, _)| *root == as_root)
                .map(|(_, line)| line.clone())
                .collect();
            if lines.is_empty() {
                continue;
            }
            self.round_trips.fetch_add(1, Ordering::Relaxed);
            let whole = self.timeout.saturating_add(Duration::from_secs(1));
            let batch = self.transport.exec_batch(&lines, self.timeout, as_root);
            let Ok(Ok(answers)) = tokio::time::timeout(whole, batch).await else {
                answered = false;
                continue;
            };
            if let Ok(mut ahead) = self.ahead.lock() {
                for (line, answer) in lines.into_iter().zip(answers) {
                    ahead.insert((as_root, line), answer);
                }
            }
        }
        answered
    }

    /// Forgets the answers fetched ahead (a play's tasks are done: what they did not read is
    /// not kept for later ones).
    pub fn forget_reads(&self) {
        self.clear_ahead();
    }

    /// Empties the answers fetched ahead; true when some were there.
    fn clear_ahead(&self) -> bool {
        let Ok(mut ahead) = self.ahead.lock() else {
            return false;
        };
        let had = !ahead.is_empty();
        ahead.clear();
        had
    }

    /// How many times a command forgot answers fetched ahead before they were read (it may
    /// have changed what they say): a host being changed, where fetching ahead wastes queries.
    pub fn forgotten(&self) -> u32 {
        self.forgotten.load(Ordering::Relaxed)
    }

    /// Runs a read-only query line and returns what it left, whatever its exit status: the
    /// answer fetched ahead when there is one (taken: a second read asks the host again).
    pub async fn read_output(&self, line: &str) -> Result<ExecOutput, TransportError> {
        self.read_output_timeout(line, self.timeout).await
    }

    async fn read_output_timeout(
        &self,
        line: &str,
        timeout: Duration,
    ) -> Result<ExecOutput, TransportError> {
        let key = (self.become_root, line.to_string());
        if let Some(collecting) = &self.collecting {
            if let Some(answer) = self.ahead.lock().ok().and_then(|a| a.get(&key).cloned()) {
                return Ok(answer);
            }
            if let Ok(mut noted) = collecting.lock() {
                noted.misses += 1;
                if !noted.reads.contains(&key) {
                    noted.reads.push(key);
                }
            }
            return Err(TransportError::Collecting);
        }
        if let Some(answer) = self.ahead.lock().ok().and_then(|mut a| a.remove(&key)) {
            return Ok(answer);
        }
        self.send(line, None, timeout).await
    }

    /// Run a command line built by [`sh`], as root when the session becomes root.
    pub async fn run(&self, command: &str) -> Result<ExecOutput, TransportError> {
        self.run_with_stdin(command, None).await
    }

    pub async fn run_with_stdin(
        &self,
        command: &str,
        stdin: Option<&[u8]>,
    ) -> Result<ExecOutput, TransportError> {
        self.exec(command, stdin, self.timeout).await
    }

    /// Runs a read-only query and reads what it printed, whatever its exit status: a query's
    /// output says what it found (a task's `read_ok` is for one that must also succeed).
    pub async fn read<T>(&self, query: &sh::Read<T>) -> Result<T, ReadError> {
        self.read_timeout(query, self.timeout).await
    }

    /// Like `read`, with its own timeout.
    pub async fn read_timeout<T>(
        &self,
        query: &sh::Read<T>,
        timeout: Duration,
    ) -> Result<T, ReadError> {
        let out = self.read_output_timeout(query.line(), timeout).await?;
        Ok(query.parse(&out.stdout_str())?)
    }

    /// Like `run`, with its own timeout (for waits longer than the default).
    pub async fn run_timeout(
        &self,
        command: &str,
        timeout: Duration,
    ) -> Result<ExecOutput, TransportError> {
        self.exec(command, None, timeout).await
    }

    /// A command that is not a read: it may change the host, so the answers fetched ahead are
    /// forgotten first; a collecting session runs nothing.
    async fn exec(
        &self,
        command: &str,
        stdin: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<ExecOutput, TransportError> {
        if self.collecting.is_some() {
            return Err(TransportError::Collecting);
        }
        if self.clear_ahead() {
            self.forgotten.fetch_add(1, Ordering::Relaxed);
        }
        self.send(command, stdin, timeout).await
    }

    /// The one path to the transport: counts the round trip; the transport runs the command as
    /// root when the session becomes root (and ends it as root if it must).
    async fn send(
        &self,
        command: &str,
        stdin: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<ExecOutput, TransportError> {
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        // The transport bounds the command's run; this bounds everything before it too (a
        // channel asked of a host whose link is down waits for as long as the link is down).
        let whole = timeout.saturating_add(Duration::from_secs(1));
        match tokio::time::timeout(
            whole,
            self.transport
                .exec(command, stdin, timeout, self.become_root),
        )
        .await
        {
            Ok(result) => result,
            Err(_) => Err(TransportError::Timeout {
                secs: whole.as_secs(),
                command: command.to_string(),
            }),
        }
    }

    /// The same connection, with privilege escalation switched as a task asks.
    pub fn with_become(&self, become_root: bool) -> Session {
        Session {
            become_root,
            ..self.clone()
        }
    }

    /// See [`Transport::exchange`].
    pub fn exchange<'a>(
        &'a self,
        address: &'a str,
        port: u16,
        request: &'a [u8],
        timeout: Duration,
    ) -> Option<BoxFuture<'a, Result<Vec<u8>, String>>> {
        self.transport.exchange(address, port, request, timeout)
    }

    /// See [`Transport::tcp_stream`].
    pub fn tcp_stream<'a>(
        &'a self,
        address: &'a str,
        port: u16,
    ) -> Option<BoxFuture<'a, Result<TcpStream, String>>> {
        self.transport.tcp_stream(address, port)
    }

    pub fn round_trips(&self) -> u32 {
        self.round_trips.load(Ordering::Relaxed)
    }

    pub async fn close(&self) {
        self.transport.close().await;
    }
}

/// `work` (an [`Transport::exchange`]) bounded by `timeout`, past which it is an error that says so.
pub async fn within_exchange(
    timeout: Duration,
    work: impl std::future::Future<Output = Result<Vec<u8>, String>>,
) -> Result<Vec<u8>, String> {
    tokio::time::timeout(timeout, work)
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {} ms", timeout.as_millis())))
}
