//! SSH transport on russh: one connection per host for the whole run, commands as channels on
//! it (at most [`MAX_CHANNELS`] at once), host keys checked against known_hosts.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use futures::future::Shared;
use russh::client::{self, Handle};
use russh::keys::PublicKeyOrCertificate;
use russh::keys::agent::AgentIdentity;
use russh::keys::agent::client::AgentClient;
use russh::keys::{HashAlg, PrivateKeyWithHashAlg, PublicKey};
use russh::{ChannelMsg, Disconnect, kex};
use tokio::sync::Semaphore;

use super::framing::{Collect, Framing};
use super::known_hosts::{self, KnownHosts, Verdict};
use super::{BoxFuture, ExecOutput, Transport, TransportError};
use crate::inventory::{Connection, home};

/// Stock sshd allows 10 sessions per connection (`MaxSessions`); stay below, counting the
/// long-lived shell.
pub const MAX_CHANNELS: usize = 7;

/// Options that are the same for every host of a run.
#[derive(Debug, Clone)]
pub struct SshOptions {
    pub connect_timeout: Duration,
    pub accept_new_host_keys: bool,
}

pub struct SshTransport {
    /// Shared with the guards that end a dropped command on the host.
    handle: Arc<Handle<HostKeyCheck>>,
    target: String,
    channels: Semaphore,
    /// The long-lived shell (see [`super::framing`]); `None` until first used or after a failure.
    shell: tokio::sync::Mutex<Option<Shell>>,
    /// Commands being ended on the host, which `close` waits for.
    endings: Endings,
    /// The jump host this connection goes through, kept open as long as it is.
    _via: Option<Arc<JumpHost>>,
}

/// A running `sh` on the host, its framing, and its pid (the session it leads).
struct Shell {
    channel: russh::Channel<client::Msg>,
    framing: Framing,
    pid: u32,
}

/// What went wrong with the host key, kept for a clear error after the handshake fails.
#[derive(Default)]
struct KeyVerdict {
    problem: Option<TransportError>,
}

struct HostKeyCheck {
    target: String,
    port: u16,
    known_hosts: PathBuf,
    accept_new: bool,
    verdict: Arc<Mutex<KeyVerdict>>,
}

impl HostKeyCheck {
    fn record(&self, e: TransportError) -> Result<bool, russh::Error> {
        if let Ok(mut v) = self.verdict.lock() {
            v.problem = Some(e);
        }
        Ok(false)
    }
}

impl client::Handler for HostKeyCheck {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let PublicKeyOrCertificate::PublicKey { key, .. } = key else {
            return self.record(TransportError::Connect {
                target: self.target.clone(),
                reason: "the host offered a certificate; lvslab checks plain host keys only".into(),
            });
        };
        let fingerprint = key.fingerprint(HashAlg::Sha256).to_string();
        let file = self.known_hosts.display().to_string();
        let (target, port) = (self.target.clone(), self.port);
        // One check at a time in this process; with --accept-new-host-keys the file is also
        // locked against other processes while it is read and the key recorded.
        let _guard = RECORDING.lock().unwrap_or_else(|p| p.into_inner());
        let verdict = if self.accept_new {
            known_hosts::trust_new(&self.known_hosts, &target, port, key)
                .map_err(|e| format!("cannot record its host key in {file}: {e}"))
        } else {
            KnownHosts::load(&self.known_hosts)
                .map(|known| known.check(&target, port, key))
                .map_err(|e| format!("cannot read {file}: {e}"))
        };
        let verdict = match verdict {
            Ok(v) => v,
            Err(reason) => return self.record(TransportError::Connect { target, reason }),
        };
        match verdict {
            Verdict::Known { .. } => Ok(true),
            Verdict::Unknown => self.record(TransportError::UnknownHostKey {
                target,
                port,
                known_hosts: file,
                fingerprint,
            }),
            Verdict::Changed { line, known_type } => {
                self.record(TransportError::ChangedHostKey {
                    target,
                    known_hosts: file,
                    line,
                    known_type,
                    offered_type: key.algorithm().to_string(),
                    fingerprint,
                })
            }
            Verdict::Revoked { line } => self.record(TransportError::RevokedHostKey {
                target,
                known_hosts: file,
                line,
                fingerprint,
            }),
            Verdict::CertAuthorityOnly { line } => self.record(TransportError::Connect {
                target,
                reason: format!(
                    "{file} line {line} is a @cert-authority line, which lvslab does not support (it checks plain host keys only): add the host's own key ({fingerprint})"
                ),
            }),
        }
    }
}

/// One known_hosts check or record at a time in this process (the file lock of
/// `known_hosts::trust_new` is between processes).
static RECORDING: Mutex<()> = Mutex::new(());

fn client_config() -> client::Config {
    // curve25519 first: the hybrid post-quantum exchange costs ~0.1 s more per connection on
    // a small machine, and a lab's SSH sessions are short-lived. The PQ one stays as fallback.
    let kex: Vec<kex::Name> = vec![
        kex::CURVE25519,
        kex::CURVE25519_PRE_RFC_8731,
        kex::MLKEM768X25519_SHA256,
        kex::DH_GEX_SHA256,
        kex::DH_G14_SHA256,
        kex::EXTENSION_SUPPORT_AS_CLIENT,
        kex::EXTENSION_OPENSSH_STRICT_KEX_AS_CLIENT,
    ];
    client::Config {
        preferred: russh::Preferred {
            kex: kex.into(),
            ..Default::default()
        },
        keepalive_interval: Some(Duration::from_secs(5)),
        keepalive_max: 3,
        inactivity_timeout: None,
        nodelay: true,
        ..Default::default()
    }
}

/// A logged-in connection to a jump host (`connection.jump`): hosts behind it connect through
/// TCP channels it opens. Shared by every host of a run that names the same jump host.
pub struct JumpHost {
    handle: Handle<HostKeyCheck>,
    label: String,
}

impl JumpHost {
    /// Connects and logs in to the jump host `conn` describes.
    pub async fn connect(conn: &Connection, opts: &SshOptions) -> Result<JumpHost, TransportError> {
        let label = format!("jump host {}@{}:{}", conn.user, conn.target, conn.port);
        let handle = login(tcp(conn), conn, opts)
            .await
            .map_err(|e| renamed(e, |_| label.clone()))?;
        Ok(JumpHost { handle, label })
    }

    pub async fn close(&self) {
        let _ = self
            .handle
            .disconnect(Disconnect::ByApplication, "", "en")
            .await;
    }
}

impl SshTransport {
    /// Connect and log in, directly or through `via` (the host's jump host). Host key problems
    /// and authentication failures come back as precise errors; nothing runs on a host whose
    /// key did not match.
    pub async fn connect(
        conn: &Connection,
        opts: &SshOptions,
        via: Option<Arc<JumpHost>>,
    ) -> Result<SshTransport, TransportError> {
        let handle = match &via {
            None => login(tcp(conn), conn, opts).await?,
            Some(jump) => {
                let stream = async {
                    let channel = jump
                        .handle
                        .channel_open_direct_tcpip(
                            conn.target.clone(),
                            u32::from(conn.port),
                            "127.0.0.1",
                            0,
                        )
                        .await?;
                    Ok(channel.into_stream())
                };
                login(stream, conn, opts)
                    .await
                    .map_err(|e| renamed(e, |target| format!("{target} via {}", jump.label)))?
            }
        };
        Ok(SshTransport {
            handle: Arc::new(handle),
            target: format!("{}:{}", conn.target, conn.port),
            channels: Semaphore::new(MAX_CHANNELS),
            shell: tokio::sync::Mutex::new(None),
            endings: Endings::default(),
            _via: via,
        })
    }
}

impl SshTransport {
    async fn open_shell(&self) -> Result<Shell, TransportError> {
        let lost = |e: String| TransportError::Lost {
            target: self.target.clone(),
            reason: e,
        };
        let mut channel = self
            .handle
            .channel_open_session()
            .await
            .map_err(|e| lost(e.to_string()))?;
        // sshd makes each session's process a session leader; exec keeps its pid, so `$$` is
        // the session id, and a command that hangs can be ended with all it started.
        channel
            .exec(true, super::sh::session_shell())
            .await
            .map_err(|e| lost(e.to_string()))?;
        channel
            .data(super::sh::SHELL_PID.as_bytes())
            .await
            .map_err(|e| lost(e.to_string()))?;
        let mut first = Vec::new();
        let pid = loop {
            match tokio::time::timeout(Duration::from_secs(10), channel.wait()).await {
                Ok(Some(ChannelMsg::Data { data })) => {
                    first.extend_from_slice(&data);
                    if let Some(nl) = first.iter().position(|b| *b == b'\n') {
                        break String::from_utf8_lossy(&first[..nl])
                            .trim()
                            .parse::<u32>()
                            .map_err(|_| lost("the remote shell did not start".into()))?;
                    }
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => return Err(lost("the remote shell did not start".into())),
            }
        };
        Ok(Shell {
            channel,
            framing: Framing::new(),
            pid,
        })
    }

    /// Run one command in a shell: `slot`'s, or a new one left in `slot`. Its input, if any,
    /// travels inside the command text (see [`super::sh::with_input`]), so every command and
    /// its data reach the host on a shell's stdin, never as a process's argument. On any
    /// failure the shell is dropped; a command that timed out or whose future is dropped is
    /// ended on the host with all it started (see [`SshTransport::end_on_host`]).
    async fn exec_in_shell(
        &self,
        slot: &mut Option<Shell>,
        command: &str,
        stdin: Option<&[u8]>,
        timeout: Duration,
        as_root: bool,
    ) -> Result<ExecOutput, TransportError> {
        let sh = match slot.take() {
            Some(sh) => sh,
            None => self.open_shell().await?,
        };
        let Shell {
            channel,
            framing,
            pid,
        } = sh;
        let line = match stdin {
            Some(data) => super::sh::with_input(command, data, &framing.data_delimiter()),
            None => command.to_string(),
        };
        let line = if as_root {
            super::sh::as_root_from_stdin(&line, &framing.delimiter())
        } else {
            line
        };
        // From here on, a dropped future ends what the command started, as the user it runs
        // as, and only then closes the shell's channel: a process being ended still has its
        // output (a shell that reports a killed child would die of SIGPIPE, traps unrun).
        let mut running = Running {
            channel: Some(channel),
            ending: Some(Ending {
                handle: self.handle.clone(),
                endings: self.endings.clone(),
                pid,
                as_root,
            }),
        };
        let lost = |reason: String| TransportError::Lost {
            target: self.target.clone(),
            reason,
        };
        let Some(ch) = running.channel.as_mut() else {
            return Err(lost("no shell".into()));
        };
        ch.data_bytes(framing.wrap(&line).into_bytes())
            .await
            .map_err(|e| lost(e.to_string()))?;
        let mut out = Collect::default();
        let read = async {
            loop {
                match ch.wait().await {
                    Some(ChannelMsg::Data { data }) => {
                        if framing.stdout(&mut out, &data) {
                            return Ok(());
                        }
                    }
                    Some(ChannelMsg::ExtendedData { data, ext: 1 }) => {
                        if framing.stderr(&mut out, &data) {
                            return Ok(());
                        }
                    }
                    Some(ChannelMsg::ExitStatus { .. } | ChannelMsg::Eof | ChannelMsg::Close)
                    | None => {
                        return Err(lost("the remote shell ended during the command".into()));
                    }
                    Some(_) => {}
                }
            }
        };
        match tokio::time::timeout(timeout, read).await {
            Err(_) => {
                // End the command and whatever it started, and wait until it has (the ending
                // goes on, and `close` waits for it, if this future is dropped meanwhile).
                if let Some(done) = running.end() {
                    done.await;
                }
                Err(TransportError::Timeout {
                    secs: timeout.as_secs(),
                    command: command.to_string(),
                })
            }
            Ok(Err(e)) => Err(e),
            Ok(Ok(())) => {
                running.ending = None;
                if let Some(channel) = running.channel.take() {
                    *slot = Some(Shell {
                        channel,
                        framing,
                        pid,
                    });
                }
                Ok(ExecOutput {
                    status: out.status,
                    signal: None,
                    stdout: out.stdout,
                    stderr: out.stderr,
                })
            }
        }
    }
}

/// How to end a command of a shell on the host: every process of the shell's session, from a
/// new SSH session, as root when the command ran as root (a sudo'd process survives a kill from
/// the login user, and sshd refuses SSH's own signal request for it).
struct Ending {
    handle: Arc<Handle<HostKeyCheck>>,
    endings: Endings,
    pid: u32,
    as_root: bool,
}

impl Ending {
    /// Starts the ending as a task of its own (it finishes even if the caller's future is
    /// dropped), counted in the connection's endings; the future resolves when it is done.
    /// The shell's `channel` is closed once the ending is done.
    fn start(self, channel: Option<russh::Channel<client::Msg>>) -> Shared<BoxFuture<'static, ()>> {
        let end = super::sh::end_session(self.pid);
        let line = if self.as_root {
            super::sh::sudo(&end)
        } else {
            end
        };
        let handle = self.handle;
        let task = tokio::spawn(async move {
            if let Ok(mut channel) = handle.channel_open_session().await
                && channel.exec(true, line).await.is_ok()
            {
                let _ = tokio::time::timeout(END_TIMEOUT, async {
                    while channel.wait().await.is_some() {}
                })
                .await;
            }
            if let Some(shell) = channel {
                let _ = shell.close().await;
            }
        });
        let done: BoxFuture<'static, ()> = Box::pin(async move {
            let _ = task.await;
        });
        let done = done.shared();
        self.endings
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(done.clone());
        done
    }
}

/// How long ending a command on the host may take: its processes get SIGTERM (so a file write
/// removes its temporary file), and SIGKILL two seconds later if they are still there.
const END_TIMEOUT: Duration = Duration::from_secs(10);

/// The endings of commands started on a connection, which `close` waits for: until they are
/// done, nothing may count the host as free (its run lock is held until then).
type Endings = Arc<Mutex<Vec<Shared<BoxFuture<'static, ()>>>>>;

/// A command running in a shell: its channel, and how to end it on the host. Dropped before
/// the command finished (Ctrl-C, a run giving up on the host), it is ended ([`Ending`]).
struct Running {
    channel: Option<russh::Channel<client::Msg>>,
    /// `None` once the command finished.
    ending: Option<Ending>,
}

impl Running {
    /// Ends the command on the host, then closes the channel; `None` when there was nothing to
    /// end (the channel, if any, is closed in the background).
    fn end(&mut self) -> Option<Shared<BoxFuture<'static, ()>>> {
        let channel = self.channel.take();
        match self.ending.take() {
            Some(ending) => Some(ending.start(channel)),
            None => {
                close_later(channel);
                None
            }
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if tokio::runtime::Handle::try_current().is_ok() {
            drop(self.end());
        }
    }
}

/// Closes a channel in the background (a shell no longer needed).
fn close_later(channel: Option<russh::Channel<client::Msg>>) {
    if let Some(channel) = channel
        && let Ok(rt) = tokio::runtime::Handle::try_current()
    {
        rt.spawn(async move {
            let _ = channel.close().await;
        });
    }
}

impl Transport for SshTransport {
    fn exec<'a>(
        &'a self,
        command: &'a str,
        stdin: Option<&'a [u8]>,
        timeout: Duration,
        as_root: bool,
    ) -> BoxFuture<'a, Result<ExecOutput, TransportError>> {
        Box::pin(async move {
            // The long-lived shell when it is free; while it is busy with another command of
            // this host, a shell of the command's own, closed after it.
            if let Ok(mut slot) = self.shell.try_lock() {
                return self
                    .exec_in_shell(&mut slot, command, stdin, timeout, as_root)
                    .await;
            }
            let _permit = self
                .channels
                .acquire()
                .await
                .map_err(|e| TransportError::Lost {
                    target: self.target.clone(),
                    reason: e.to_string(),
                })?;
            let mut own = None;
            let out = self
                .exec_in_shell(&mut own, command, stdin, timeout, as_root)
                .await;
            close_later(own.map(|sh| sh.channel));
            out
        })
    }

    /// Waits for the commands being ended on the host (at most [`END_TIMEOUT`]), then closes.
    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let endings: Vec<_> =
                std::mem::take(&mut *self.endings.lock().unwrap_or_else(|p| p.into_inner()));
            let _ = tokio::time::timeout(END_TIMEOUT, futures::future::join_all(endings)).await;
            let _ = self
                .handle
                .disconnect(Disconnect::ByApplication, "", "en")
                .await;
        })
    }

    /// A direct-tcpip channel: the host's sshd connects (AllowTcpForwarding, on by default).
    fn exchange<'a>(
        &'a self,
        address: &'a str,
        port: u16,
        request: &'a [u8],
        timeout: Duration,
    ) -> Option<BoxFuture<'a, Result<Vec<u8>, String>>> {
        Some(Box::pin(async move {
            let work = async {
                let mut channel = self
                    .handle
                    .channel_open_direct_tcpip(address, u32::from(port), "127.0.0.1", 0)
                    .await
                    .map_err(|e| e.to_string())?;
                channel.data(request).await.map_err(|e| e.to_string())?;
                let mut answer = Vec::new();
                while let Some(msg) = channel.wait().await {
                    match msg {
                        ChannelMsg::Data { data } => answer.extend_from_slice(&data),
                        ChannelMsg::Eof | ChannelMsg::Close => break,
                        _ => {}
                    }
                }
                let _ = channel.close().await;
                Ok(answer)
            };
            super::within_exchange(timeout, work).await
        }))
    }

    /// A direct-tcpip channel kept open, as a byte stream.
    fn tcp_stream<'a>(
        &'a self,
        address: &'a str,
        port: u16,
    ) -> Option<BoxFuture<'a, Result<super::TcpStream, String>>> {
        Some(Box::pin(async move {
            let channel = self
                .handle
                .channel_open_direct_tcpip(address, u32::from(port), "127.0.0.1", 0)
                .await
                .map_err(|e| e.to_string())?;
            Ok(Box::new(channel.into_stream()) as super::TcpStream)
        }))
    }
}

/// A TCP connection to the host (with delayed ACKs kept off, see `quickack`).
async fn tcp(conn: &Connection) -> Result<super::quickack::QuickAck, russh::Error> {
    super::quickack::connect(&conn.target, conn.port)
        .await
        .map_err(russh::Error::IO)
}

/// A connection error with the target named as `name(target)` says (jump hosts name the path);
/// other errors as they are.
fn renamed(e: TransportError, name: impl FnOnce(&str) -> String) -> TransportError {
    match e {
        TransportError::Connect { target, reason } => TransportError::Connect {
            target: name(&target),
            reason,
        },
        other => other,
    }
}

/// The SSH handshake over `stream` (a TCP connection, or a channel of a jump host), the host
/// key check and the login, each bounded by the connect timeout.
async fn login<S>(
    stream: impl std::future::Future<Output = Result<S, russh::Error>>,
    conn: &Connection,
    opts: &SshOptions,
) -> Result<Handle<HostKeyCheck>, TransportError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let verdict = Arc::new(Mutex::new(KeyVerdict::default()));
    let handler = HostKeyCheck {
        target: conn.target.clone(),
        port: conn.port,
        known_hosts: conn.known_hosts.clone(),
        accept_new: opts.accept_new_host_keys,
        verdict: verdict.clone(),
    };
    let target = format!("{}:{}", conn.target, conn.port);
    let config = Arc::new(client_config());
    let connect = async { client::connect_stream(config, stream.await?, handler).await };
    let mut handle = match tokio::time::timeout(opts.connect_timeout, connect).await {
        Err(_) => {
            return Err(TransportError::Connect {
                target,
                reason: format!("no answer within {} s", opts.connect_timeout.as_secs()),
            });
        }
        Ok(Err(e)) => {
            let recorded = verdict.lock().ok().and_then(|mut v| v.problem.take());
            return Err(recorded.unwrap_or(TransportError::Connect {
                target,
                reason: e.to_string(),
            }));
        }
        Ok(Ok(h)) => h,
    };
    let auth = tokio::time::timeout(opts.connect_timeout, authenticate(&mut handle, conn));
    match auth.await {
        Err(_) => Err(TransportError::Auth {
            target,
            user: conn.user.clone(),
            reason: format!("no answer within {} s", opts.connect_timeout.as_secs()),
        }),
        Ok(Err(reason)) => Err(TransportError::Auth {
            target,
            user: conn.user.clone(),
            reason,
        }),
        Ok(Ok(())) => Ok(handle),
    }
}

/// Public-key login: the configured key file, else the ssh-agent, else the usual default keys.
async fn authenticate(handle: &mut Handle<HostKeyCheck>, conn: &Connection) -> Result<(), String> {
    let mut tried: Vec<String> = Vec::new();
    // Default keys that could not be used, and why (as OpenSSH says why it skips one).
    let mut ignored: Vec<String> = Vec::new();
    if let Some(path) = &conn.identity_file {
        let key = load_key(path)?;
        if try_key(handle, &conn.user, key).await? {
            return Ok(());
        }
        tried.push(path.display().to_string());
    } else {
        if let Some(true) = try_agent(handle, &conn.user, &mut tried).await {
            return Ok(());
        }
        for name in ["id_ed25519", "id_ecdsa", "id_rsa"] {
            let path = home().join(".ssh").join(name);
            if !path.exists() {
                continue;
            }
            let key = match load_key(&path) {
                Ok(key) => key,
                Err(why) => {
                    ignored.push(why);
                    continue;
                }
            };
            if try_key(handle, &conn.user, key).await? {
                return Ok(());
            }
            tried.push(path.display().to_string());
        }
    }
    let ignored = ignored
        .iter()
        .map(|why| format!("; {why}"))
        .collect::<String>();
    if tried.is_empty() {
        return Err(format!(
            "no key to offer: set connection.identity_file in the inventory or load a key into ssh-agent{ignored}"
        ));
    }
    Err(format!(
        "the host refused every key offered ({}){ignored}",
        tried.join(", ")
    ))
}

async fn try_key(
    handle: &mut Handle<HostKeyCheck>,
    user: &str,
    key: russh::keys::PrivateKey,
) -> Result<bool, String> {
    let hash = handle
        .best_supported_rsa_hash()
        .await
        .map_err(|e| e.to_string())?
        .flatten();
    let key = PrivateKeyWithHashAlg::new(Arc::new(key), hash);
    let result = handle
        .authenticate_publickey(user, key)
        .await
        .map_err(|e| e.to_string())?;
    Ok(result.success())
}

async fn try_agent(
    handle: &mut Handle<HostKeyCheck>,
    user: &str,
    tried: &mut Vec<String>,
) -> Option<bool> {
    std::env::var_os("SSH_AUTH_SOCK")?;
    let mut agent = AgentClient::connect_env().await.ok()?;
    let identities = agent.request_identities().await.ok()?;
    for identity in identities {
        let AgentIdentity::PublicKey { key, comment } = identity else {
            continue;
        };
        let hash = handle.best_supported_rsa_hash().await.ok()?.flatten();
        if let Ok(r) = handle
            .authenticate_publickey_with(user, key.clone(), hash, &mut agent)
            .await
            && r.success()
        {
            return Some(true);
        }
        tried.push(format!("agent key {comment}"));
    }
    Some(false)
}

/// Load a private key, asking for its passphrase on the terminal when it is encrypted.
fn load_key(path: &Path) -> Result<russh::keys::PrivateKey, String> {
    crate::perms::key_protected(path)?;
    match russh::keys::load_secret_key(path, None) {
        Ok(k) => Ok(k),
        Err(russh::keys::Error::KeyIsEncrypted) => {
            use std::io::IsTerminal;
            if !std::io::stdin().is_terminal() {
                return Err(format!(
                    "{} is encrypted and there is no terminal to ask for its passphrase: load it into ssh-agent (ssh-add) and leave identity_file unset",
                    path.display()
                ));
            }
            let prompt = format!("Passphrase for {}: ", path.display());
            let pass = rpassword::prompt_password(prompt).map_err(|e| e.to_string())?;
            russh::keys::load_secret_key(path, Some(&pass)).map_err(|_| {
                format!(
                    "wrong passphrase for {} (or the key is damaged)",
                    path.display()
                )
            })
        }
        Err(e) => {
            // A short ECDSA scalar (see `keyfile`): read it again, padded.
            let padded = std::fs::read_to_string(path)
                .ok()
                .and_then(|t| super::keyfile::pad_ecdsa_scalar(&t))
                .and_then(|t| russh::keys::decode_secret_key(&t, None).ok());
            padded.ok_or_else(|| format!("cannot read key {}: {e}", path.display()))
        }
    }
}

/// Unused-key guard: the agent hands out public keys only.
#[allow(dead_code)]
fn _assert_types(_: &PublicKey) {}
