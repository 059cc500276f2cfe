//! `service`: a daemon started, stopped, restarted or reloaded, and enabled at boot; through
//! systemd when it runs, else the init script (`service NAME ACTION`). Whether it runs is read
//! from the process table, and checked again after a start: an init script can report success
//! for a daemon that died at once (keepalived without IPVS does exactly that).
//!
//! Running means alive and answering: a daemon whose process is stopped by a signal (state T)
//! is continued (SIGCONT), and keepalived, which can say how it is, must answer its state dump:
//! one that does not, or still does not once continued, is restarted, and so is a daemon
//! that does not answer the GET of its `answers:` URL. Each says which.

use std::time::{Duration, Instant};

use serde::Deserialize;

use super::{Applied, Module, Query, TaskCtx, TaskError, command_failed};
use crate::templates::Tpl;
use crate::transport::sh;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    pub name: Tpl<String>,
    pub state: Option<ServiceState>,
    pub enabled: Option<bool>,
    /// Process name to look for (default: the service name).
    pub process: Option<Tpl<String>>,
    /// A URL the daemon must answer when it runs (`http://ADDRESS[:PORT]/PATH`): a GET made
    /// on the host itself (through its sshd, else with its curl), any HTTP status. One that
    /// runs and does not answer is restarted.
    pub answers: Option<Tpl<String>>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ServiceState {
    Started,
    Stopped,
    Restarted,
    Reloaded,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Start,
    Stop,
    Restart,
    Reload,
    /// A frozen daemon continued (SIGCONT), and restarted if it still does not answer.
    Continue,
}

pub struct Change {
    action: Option<Action>,
    enable: Option<bool>,
    /// Its processes are stopped by a signal: continued before any action.
    frozen: bool,
    name: String,
    process: String,
    check: Check,
    /// What the query said it would do.
    summary: String,
}

/// How long a daemon must stay up after its start to count as started.
const SETTLE: Duration = Duration::from_millis(200);
const START_WAIT: Duration = Duration::from_secs(5);

fn safe_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c))
}

impl Module for Service {
    type Change = Change;

    async fn query(&self, ctx: &TaskCtx<'_>) -> Result<Query<Change>, TaskError> {
        let name = ctx.resolve(&self.name)?;
        let process = ctx
            .resolve_opt(&self.process)?
            .unwrap_or_else(|| name.clone());
        if !safe_name(&name) || !safe_name(&process) {
            return Err(TaskError::new(format!("`{name}` is not a service name")));
        }
        let sh::ServiceStatus { running, enabled } = ctx
            .read_ok(
                &sh::service_query(&ctx.facts.init, &name, &process),
                "querying the service",
            )
            .await?;
        let frozen = running == sh::Running::Frozen;
        let url = ctx.resolve_opt(&self.answers)?;
        let check = Check::new(&process, url.as_deref())?;
        // Alive, not frozen, and asked to run: it must answer too.
        let unanswering = running == sh::Running::Yes
            && matches!(
                self.state,
                Some(ServiceState::Started | ServiceState::Reloaded)
            )
            && !check.answers(ctx).await?;
        let up = running != sh::Running::No;
        let action = match (self.state, running) {
            (Some(ServiceState::Started), _) if unanswering => Some(Action::Restart),
            (Some(ServiceState::Started), sh::Running::Frozen) => Some(Action::Continue),
            (Some(ServiceState::Started), sh::Running::No) => Some(Action::Start),
            (Some(ServiceState::Stopped), r) if r != sh::Running::No => Some(Action::Stop),
            (Some(ServiceState::Restarted), _) => {
                Some(if up { Action::Restart } else { Action::Start })
            }
            (Some(ServiceState::Reloaded), _) if unanswering => Some(Action::Restart),
            (Some(ServiceState::Reloaded), _) => {
                Some(if up { Action::Reload } else { Action::Start })
            }
            _ => None,
        };
        let enable = match (self.enabled, enabled) {
            (Some(true), sh::Enabled::No) => Some(true),
            // Check mode on a host an earlier task would have written the init script to
            // (lvslab-boot's, on a fresh host): said as a change; the real run fails if no
            // task writes it.
            (Some(true), sh::Enabled::Unknown) if ctx.check => Some(true),
            (Some(true), sh::Enabled::Unknown) => {
                return Err(TaskError::new(format!(
                    "{name} has no init script (/etc/init.d/{name}) to enable at boot"
                )));
            }
            (Some(false), sh::Enabled::Yes) => Some(false),
            _ => None,
        };
        if action.is_none() && enable.is_none() {
            return Ok(Query::ok(match running {
                sh::Running::Yes => format!("{name} running"),
                // Asked only to be enabled or disabled: said, not changed.
                sh::Running::Frozen => format!("{name} stopped by a signal (state T)"),
                sh::Running::No => format!("{name} stopped"),
            }));
        }
        let mut words = Vec::new();
        if let Some(a) = action {
            let why = if unanswering {
                format!(" (alive, but {})", check.silence())
            } else if frozen {
                " (stopped by a signal, state T)".to_string()
            } else {
                String::new()
            };
            words.push(format!("{} {name}{why}", format!("{a:?}").to_lowercase()));
        }
        if let Some(e) = enable {
            words.push(match (e, enabled) {
                (true, sh::Enabled::Unknown) => format!(
                    "enable {name} (no init script yet: an earlier task of this run writes it)"
                ),
                (true, _) => format!("enable {name}"),
                (false, _) => format!("disable {name}"),
            });
        }
        let summary = words.join(", ");
        Ok(Query::change(
            Change {
                action,
                enable,
                frozen,
                name,
                process,
                check,
                summary: summary.clone(),
            },
            summary,
        ))
    }

    async fn apply(&self, ctx: &TaskCtx<'_>, change: Change) -> Result<Applied, TaskError> {
        let init = ctx.facts.init.as_str();
        let mut said = None;
        // A frozen daemon cannot stop, reload or answer: continued first.
        if change.frozen && change.action.is_some() {
            ctx.run_ok(&sh::thaw(&change.process), "continuing the service")
                .await?;
        }
        let action = match change.action {
            Some(Action::Continue) => {
                tokio::time::sleep(SETTLE).await;
                if change.check.answers(ctx).await? {
                    None
                } else {
                    said = Some(format!(
                        "{}; it still did not answer once continued: restarted",
                        change.summary
                    ));
                    Some(Action::Restart)
                }
            }
            other => other,
        };
        if let Some(action) = action {
            let verb = match action {
                Action::Start => "start",
                Action::Stop => "stop",
                Action::Restart | Action::Continue => "restart",
                Action::Reload => "reload",
            };
            let out = ctx
                .run(&sh::service_action(init, &change.name, verb))
                .await?;
            if !out.success() {
                return Err(command_failed(&format!("{verb} {}", change.name), &out));
            }
            match action {
                Action::Start | Action::Restart | Action::Continue => {
                    wait_running(ctx, &change.name, &change.process).await?
                }
                Action::Stop => wait_stopped(ctx, &change.process).await?,
                Action::Reload => {}
            }
        }
        if let Some(enable) = change.enable {
            ctx.run_ok(
                &sh::service_enable(init, &change.name, enable),
                "enabling the service",
            )
            .await?;
        }
        Ok(Applied {
            msg: said,
            ..Applied::changed()
        })
    }
}

/// How a running daemon shows that it answers: keepalived by its state dump, a daemon with
/// an `answers:` URL by a GET of it, any other by running.
enum Check {
    KeepalivedDump,
    Http {
        url: String,
        address: String,
        port: u16,
        path: String,
    },
    Running,
}

/// How long a daemon has to answer.
const ANSWER_WITHIN: Duration = Duration::from_secs(2);

impl Check {
    fn new(process: &str, url: Option<&str>) -> Result<Check, TaskError> {
        let Some(url) = url else {
            return Ok(if process == crate::programs::KEEPALIVED.name {
                Check::KeepalivedDump
            } else {
                Check::Running
            });
        };
        let bad = || {
            TaskError::new(format!(
                "answers: `{url}` is not an http://ADDRESS[:PORT]/PATH URL"
            ))
        };
        let rest = url.strip_prefix("http://").ok_or_else(bad)?;
        let (authority, path) = match rest.find('/') {
            Some(at) => (&rest[..at], &rest[at..]),
            None => (rest, "/"),
        };
        let (address, port) = match authority.rsplit_once(':') {
            Some((a, p)) => (a, p.parse().map_err(|_| bad())?),
            None => (authority, 80),
        };
        if address.is_empty() || path.contains(char::is_whitespace) {
            return Err(bad());
        }
        Ok(Check::Http {
            url: url.to_string(),
            address: address.to_string(),
            port,
            path: path.to_string(),
        })
    }

    /// What not answering means, for the task's line.
    fn silence(&self) -> String {
        match self {
            Check::KeepalivedDump => "it does not answer its state dump".into(),
            Check::Http { url, .. } => {
                format!("{url} gets no answer within {} s", ANSWER_WITHIN.as_secs())
            }
            Check::Running => "it does not answer".into(),
        }
    }

    /// Whether the running daemon answers now. keepalived built without the dump counts as
    /// answering. A GET goes through the host's sshd (nothing needed on the host); where its
    /// sshd forwards nothing, the host's curl makes it.
    async fn answers(&self, ctx: &TaskCtx<'_>) -> Result<bool, TaskError> {
        match self {
            Check::Running => Ok(true),
            Check::KeepalivedDump => {
                let live = ctx
                    .read(
                        &sh::keepalived_live(None),
                        "asking keepalived for its state",
                    )
                    .await?;
                Ok(live.state() != Some(crate::lvs::DirectorState::Hung))
            }
            Check::Http {
                url,
                address,
                port,
                path,
            } => {
                let request = format!(
                    "GET {path} HTTP/1.0\r\nHost: {address}\r\nUser-Agent: lvslab\r\nConnection: close\r\n\r\n"
                );
                if let Some(get) =
                    ctx.session
                        .exchange(address, *port, request.as_bytes(), ANSWER_WITHIN)
                {
                    match get.await {
                        Ok(answer) => return Ok(answer.starts_with(b"HTTP/")),
                        // sshd forwards nothing here: the host's curl asks instead.
                        Err(why) if why.contains("Prohibited") => {}
                        Err(_) => return Ok(false),
                    }
                }
                if let Some(lacks) = ctx.facts.lacking(&ctx.host.name, &[crate::programs::CURL]) {
                    return Err(TaskError::new(format!(
                        "answers: {url} cannot be asked on this host: {lacks}"
                    )));
                }
                let secs = u32::try_from(ANSWER_WITHIN.as_secs()).unwrap_or(2);
                let code = ctx
                    .read(&sh::http_status(url, secs), "asking the daemon's URL")
                    .await?;
                Ok(code.is_some())
            }
        }
    }
}

async fn is_running(ctx: &TaskCtx<'_>, process: &str) -> Result<bool, TaskError> {
    Ok(ctx.run(&sh::process_running(process)).await?.success())
}

/// Up, and still up a moment later.
pub async fn wait_running(ctx: &TaskCtx<'_>, name: &str, process: &str) -> Result<(), TaskError> {
    let start = Instant::now();
    while start.elapsed() < START_WAIT {
        if is_running(ctx, process).await? {
            tokio::time::sleep(SETTLE).await;
            if is_running(ctx, process).await? {
                return Ok(());
            }
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let hint = if name == crate::programs::KEEPALIVED.name {
        " (keepalived exits at start when its config has a virtual_server and the kernel has no IPVS, or the config is invalid: see its log)"
    } else {
        ""
    };
    Err(TaskError::new(format!(
        "{name} was started but is not running{hint}"
    )))
}

/// Gone; a daemon that ignores its init script gets SIGTERM (never SIGKILL: keepalived must be
/// able to drop its VIP).
pub async fn wait_stopped(ctx: &TaskCtx<'_>, process: &str) -> Result<(), TaskError> {
    let start = Instant::now();
    let mut termed = false;
    while start.elapsed() < START_WAIT * 2 {
        if !is_running(ctx, process).await? {
            return Ok(());
        }
        if !termed && start.elapsed() > START_WAIT / 2 {
            let _ = ctx.run(&sh::process_signal(process, "TERM")).await?;
            termed = true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(TaskError::new(format!(
        "{process} still runs after stop and SIGTERM"
    )))
}
