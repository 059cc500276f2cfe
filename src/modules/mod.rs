//! Modules: one file each, every one following query-then-change. `query` reads the host and
//! says whether anything differs; `apply` changes exactly that. [`converge`] is the one place
//! that decides: check mode, `changed`, and diffs follow from it for every module.
//!
//! To add a module: write its file and add one line to the `modules!` list below.

mod address;
mod assert;
mod command;
mod file;
mod fwmark;
mod ipvs;
mod link;
mod package;
mod process;
mod route;
mod service;
mod sysctl;
mod template;
mod wait_for;

#[cfg(test)]
mod tests;

use std::future::Future;
use std::time::Duration;

use minijinja::Value;
use serde::de::DeserializeOwned;

use crate::facts::Facts;
use crate::inventory::{Host, Inventory};
use crate::report::Status;
use crate::templates::{Templates, Tpl};
use crate::transport::{ExecOutput, Session, TransportError, sh};

/// What a module found when it looked at the host.
pub enum Query<C> {
    /// Already as desired.
    Ok {
        msg: String,
        result: serde_json::Value,
    },
    /// Something differs; `change` says what `apply` must do.
    Change {
        change: C,
        summary: String,
        diff: Option<String>,
    },
    /// Not applicable now (e.g. a command in check mode).
    Skip { msg: String },
}

impl<C> Query<C> {
    pub fn ok(msg: impl Into<String>) -> Self {
        Query::Ok {
            msg: msg.into(),
            result: serde_json::Value::Null,
        }
    }
    pub fn change(change: C, summary: impl Into<String>) -> Self {
        Query::Change {
            change,
            summary: summary.into(),
            diff: None,
        }
    }
}

/// What `apply` did.
pub struct Applied {
    pub changed: bool,
    pub msg: Option<String>,
    /// Registered as the task's result (`register:`).
    pub result: serde_json::Value,
    /// Output worth showing with -v.
    pub output: String,
}

impl Applied {
    pub fn changed() -> Self {
        Applied {
            changed: true,
            msg: None,
            result: serde_json::Value::Null,
            output: String::new(),
        }
    }
}

/// A module: a typed set of arguments that knows how to read and change one thing on a host.
pub trait Module: Sync {
    type Change: Send + Sync;

    fn query<'a>(
        &'a self,
        ctx: &'a TaskCtx<'a>,
    ) -> impl Future<Output = Result<Query<Self::Change>, TaskError>> + Send + 'a;

    fn apply<'a>(
        &'a self,
        ctx: &'a TaskCtx<'a>,
        change: Self::Change,
    ) -> impl Future<Output = Result<Applied, TaskError>> + Send + 'a;

    /// Checks that need no host (templates exist and parse, ...). Errors as messages.
    fn check(&self, _templates: &Templates) -> Vec<String> {
        Vec::new()
    }

    /// What of this task must hold again after a reboot: a runtime setting (an address, a
    /// route, a device, IPVS rules) is also kept as a boot entry, see [`Boot`]. `None`: the
    /// module sets nothing that a reboot loses (or the host keeps it itself).
    fn boot(&self, _ctx: &TaskCtx<'_>) -> Result<Option<Boot>, TaskError> {
        Ok(None)
    }
}

/// serde's default for a flag that is on unless turned off.
fn yes() -> bool {
    true
}

/// A task's boot entry: a file under [`sh::BOOT_DIR`] holding the command that sets it again,
/// run at boot by `lvslab-boot` (playbooks/boot.yml installs it). Names start with an order:
/// `10-` devices, then lvslab's sysctl file, `30-` addresses, `40-` routes, `50-` IPVS rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Boot {
    /// The entry `name` holds `line`.
    Set { name: String, line: String },
    /// There is no entry `name`.
    Absent { name: String },
    /// There is no entry whose name starts with `prefix`.
    AbsentAll { prefix: String },
    /// The entry `name` holds `line`, and it is the only entry whose name starts with
    /// `prefix` (one entry replacing the ones an earlier setup kept).
    Only {
        name: String,
        line: String,
        prefix: String,
    },
}

/// Whether the boot entry is as the task wants; what to do when not, in words, and its diff.
struct BootChange {
    write: Option<(String, String)>,
    remove: Vec<String>,
    summary: String,
    diff: String,
}

async fn boot_query(boot: &Boot, ctx: &TaskCtx<'_>) -> Result<Option<BootChange>, TaskError> {
    let path = |name: &str| format!("{}/{name}", sh::BOOT_DIR);
    match boot {
        Boot::Only { name, line, prefix } => {
            let set = Box::pin(boot_query(
                &Boot::Set {
                    name: name.clone(),
                    line: line.clone(),
                },
                ctx,
            ))
            .await?;
            let others =
                boot_remove(ctx, prefix, |n| n.starts_with(prefix.as_str()) && n != name).await?;
            Ok(match (set, others) {
                (None, None) => None,
                (Some(c), None) | (None, Some(c)) => Some(c),
                (Some(set), Some(others)) => Some(BootChange {
                    write: set.write,
                    remove: others.remove,
                    summary: format!("{}; {}", set.summary, others.summary),
                    diff: format!("{}{}", set.diff, others.diff),
                }),
            })
        }
        Boot::Set { name, line } => {
            let now = ctx
                .read_ok(&sh::boot_entry_read(name), "reading the boot entry")
                .await?;
            let want = format!("{line}\n");
            if now == want {
                return Ok(None);
            }
            let p = path(name);
            Ok(Some(BootChange {
                diff: similar::TextDiff::from_lines(now.as_str(), want.as_str())
                    .unified_diff()
                    .header(&format!("{p} (host)"), &format!("{p} (desired)"))
                    .to_string(),
                write: Some((name.clone(), want)),
                remove: Vec::new(),
                summary: format!("kept for boot in {p}"),
            }))
        }
        Boot::Absent { name } => boot_remove(ctx, name, |n| n == name).await,
        Boot::AbsentAll { prefix } => boot_remove(ctx, prefix, |n| n.starts_with(prefix)).await,
    }
}

async fn boot_remove(
    ctx: &TaskCtx<'_>,
    prefix: &str,
    keep_if: impl Fn(&str) -> bool,
) -> Result<Option<BootChange>, TaskError> {
    let remove: Vec<String> = ctx
        .read_ok(&sh::boot_entries_list(prefix), "listing the boot entries")
        .await?
        .into_iter()
        .filter(|n| keep_if(n))
        .collect();
    if remove.is_empty() {
        return Ok(None);
    }
    let diff = remove
        .iter()
        .map(|n| format!("--- {}/{n} (host)\n+++ (removed)\n", sh::BOOT_DIR))
        .collect();
    Ok(Some(BootChange {
        summary: format!("removed from boot: {}", remove.join(", ")),
        write: None,
        remove,
        diff,
    }))
}

async fn boot_apply(change: &BootChange, ctx: &TaskCtx<'_>) -> Result<(), TaskError> {
    if let Some((name, content)) = &change.write {
        let out = ctx
            .run_stdin(&sh::boot_entry_write(name), content.as_bytes())
            .await?;
        if !out.success() {
            return Err(command_failed("writing the boot entry", &out));
        }
    }
    if !change.remove.is_empty() {
        ctx.run_ok(
            &sh::boot_entries_remove(&change.remove),
            "removing boot entries",
        )
        .await?;
    }
    Ok(())
}

/// The result of one task on one host.
#[derive(Debug)]
pub struct Outcome {
    pub status: Status,
    pub msg: String,
    pub diff: Option<String>,
    pub result: serde_json::Value,
    pub output: String,
}

/// Query, then change only what differs (never in check mode); then the task's boot entry,
/// the same way.
pub async fn converge<M: Module>(module: &M, ctx: &TaskCtx<'_>) -> Result<Outcome, TaskError> {
    let outcome = converge_now(module, ctx).await?;
    let boot = match (&outcome.status, module.boot(ctx)?) {
        (Status::Skipped, _) | (_, None) => None,
        (_, Some(boot)) => boot_query(&boot, ctx).await?,
    };
    let Some(boot) = boot else {
        return Ok(outcome);
    };
    if !ctx.check {
        boot_apply(&boot, ctx).await?;
    }
    let diff = ctx.diff.then(|| {
        let mut d = outcome.diff.clone().unwrap_or_default();
        d.push_str(&boot.diff);
        d
    });
    let msg = format!("{}; {}", outcome.msg, boot.summary);
    Ok(Outcome {
        status: Status::Changed,
        msg,
        diff,
        ..outcome
    })
}

/// See [`ModuleCall::collect_reads`]: what the query and the boot entry's query make of
/// their answers does not matter here, only which reads they ask for.
async fn collect_reads<M: Module>(module: &M, ctx: &TaskCtx<'_>) {
    let _ = module.query(ctx).await;
    if let Ok(Some(boot)) = module.boot(ctx) {
        let _ = boot_query(&boot, ctx).await;
    }
}

async fn converge_now<M: Module>(module: &M, ctx: &TaskCtx<'_>) -> Result<Outcome, TaskError> {
    let outcome = match module.query(ctx).await? {
        Query::Ok { msg, result } => Outcome {
            status: Status::Ok,
            msg,
            diff: None,
            result,
            output: String::new(),
        },
        Query::Skip { msg } => Outcome {
            status: Status::Skipped,
            msg,
            diff: None,
            result: serde_json::Value::Null,
            output: String::new(),
        },
        Query::Change {
            change,
            summary,
            diff,
        } => {
            if ctx.check {
                Outcome {
                    status: Status::Changed,
                    msg: summary,
                    diff,
                    result: serde_json::Value::Null,
                    output: String::new(),
                }
            } else {
                let applied = module.apply(ctx, change).await?;
                Outcome {
                    status: if applied.changed {
                        Status::Changed
                    } else {
                        Status::Ok
                    },
                    msg: applied.msg.unwrap_or(summary),
                    diff,
                    result: applied.result,
                    output: applied.output,
                }
            }
        }
    };
    Ok(Outcome {
        diff: if ctx.diff { outcome.diff } else { None },
        ..outcome
    })
}

/// Why a task failed on a host.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct TaskError {
    pub message: String,
    /// The host is gone (connection lost): stop everything on it.
    pub unreachable: bool,
}

impl TaskError {
    pub fn new(message: impl Into<String>) -> Self {
        TaskError {
            message: message.into(),
            unreachable: false,
        }
    }
}

impl From<TransportError> for TaskError {
    fn from(e: TransportError) -> Self {
        TaskError {
            unreachable: e.is_unreachable(),
            message: e.to_string(),
        }
    }
}

/// Everything a module may use while it runs on one host.
pub struct TaskCtx<'a> {
    pub host: &'a Host,
    pub inventory: &'a Inventory,
    pub session: &'a Session,
    pub facts: &'a Facts,
    /// The template context: variables, facts, registered results, `item`.
    pub vars: &'a Value,
    pub templates: &'a Templates,
    pub check: bool,
    pub diff: bool,
}

impl TaskCtx<'_> {
    /// A playbook value for this host.
    pub fn resolve<T: DeserializeOwned + Clone>(&self, v: &Tpl<T>) -> Result<T, TaskError> {
        self.templates.resolve(v, self.vars).map_err(TaskError::new)
    }

    pub fn resolve_opt<T: DeserializeOwned + Clone>(
        &self,
        v: &Option<Tpl<T>>,
    ) -> Result<Option<T>, TaskError> {
        v.as_ref().map(|v| self.resolve(v)).transpose()
    }

    pub async fn run(&self, command: &str) -> Result<ExecOutput, TaskError> {
        Ok(self.session.run(command).await?)
    }

    pub async fn run_stdin(&self, command: &str, stdin: &[u8]) -> Result<ExecOutput, TaskError> {
        Ok(self.session.run_with_stdin(command, Some(stdin)).await?)
    }

    pub async fn run_timeout(
        &self,
        command: &str,
        timeout: Duration,
    ) -> Result<ExecOutput, TaskError> {
        Ok(self.session.run_timeout(command, timeout).await?)
    }

    /// Runs a read-only query that must succeed and reads what it printed; `what` names it in
    /// the error (with its stderr, or what could not be read of its output).
    pub async fn read_ok<T>(&self, query: &sh::Read<T>, what: &str) -> Result<T, TaskError> {
        let out = self.read_output(query).await?;
        if !out.success() {
            return Err(command_failed(what, &out));
        }
        query
            .parse(&out.stdout_str())
            .map_err(|e| unreadable(what, &e))
    }

    /// Runs a read-only query and reads what it printed, whatever its exit status.
    pub async fn read<T>(&self, query: &sh::Read<T>, what: &str) -> Result<T, TaskError> {
        let out = self.read_output(query).await?;
        query
            .parse(&out.stdout_str())
            .map_err(|e| unreadable(what, &e))
    }

    /// What a read-only query left (its exit status too), for a module that judges it itself.
    /// A query's reads may come from a batch fetched ahead (see [`Session::prefetch`]): only
    /// reads go through here, never a command that changes the host.
    pub async fn read_output<T>(&self, query: &sh::Read<T>) -> Result<ExecOutput, TaskError> {
        Ok(self.session.read_output(query.line()).await?)
    }

    /// Run a command that must succeed; `what` names it in the error, with its stderr.
    pub async fn run_ok(&self, command: &str, what: &str) -> Result<ExecOutput, TaskError> {
        let out = self.run(command).await?;
        if out.success() {
            Ok(out)
        } else {
            Err(command_failed(what, &out))
        }
    }
}

/// A query's output that could not be read, as a task's error naming the query.
pub fn unreadable(what: &str, e: &sh::ParseError) -> TaskError {
    TaskError::new(format!("{what}: its output could not be read: {e}"))
}

pub fn command_failed(what: &str, out: &ExecOutput) -> TaskError {
    TaskError::new(failure(&format!("{what} failed"), out))
}

/// `what` with the command's exit status and what it said of itself: its stderr, else its
/// stdout (nothing when it said nothing).
fn failure(what: &str, out: &ExecOutput) -> String {
    let err = out.stderr_str();
    let detail = if err.trim().is_empty() {
        out.stdout_str()
    } else {
        err
    };
    let detail = detail.trim();
    if detail.is_empty() {
        format!("{what} ({})", out.describe_status())
    } else {
        format!("{what} ({}): {detail}", out.describe_status())
    }
}

/// The module registry: YAML key, enum variant, type. The only list of modules.
macro_rules! modules {
    ($( $key:literal => $variant:ident($ty:ty), )*) => {
        /// A task's module with its arguments.
        #[derive(Debug, Clone)]
        pub enum ModuleCall { $( $variant($ty), )* }

        pub const MODULE_NAMES: &[&str] = &[$($key),*];

        impl ModuleCall {
            pub fn name(&self) -> &'static str {
                match self { $( ModuleCall::$variant(_) => $key, )* }
            }

            /// Parse the module named `key` from the task's map; `None` if `key` is no module.
            pub fn from_map<'de, A: serde::de::MapAccess<'de>>(key: &str, map: &mut A) -> Result<Option<Self>, A::Error> {
                match key {
                    $( $key => Ok(Some(ModuleCall::$variant(map.next_value()?))), )*
                    _ => Ok(None),
                }
            }

            pub async fn converge(&self, ctx: &TaskCtx<'_>) -> Result<Outcome, TaskError> {
                match self { $( ModuleCall::$variant(m) => converge(m, ctx).await, )* }
            }

            /// Runs the module's query and its boot entry's on a session that only collects
            /// (see [`crate::transport::Session::probing`]): nothing runs on the host, and the
            /// reads they start with are noted there to be fetched in one batch.
            pub async fn collect_reads(&self, ctx: &TaskCtx<'_>) {
                match self { $( ModuleCall::$variant(m) => collect_reads(m, ctx).await, )* }
            }

            pub fn check(&self, templates: &Templates) -> Vec<String> {
                match self { $( ModuleCall::$variant(m) => m.check(templates), )* }
            }
        }
    };
}

modules! {
    "command" => Command(command::Command),
    "shell" => Shell(command::Shell),
    "package" => Package(package::Package),
    "service" => Service(service::Service),
    "template" => Template(template::Template),
    "copy" => Copy(file::Copy),
    "file" => File(file::File),
    "sysctl" => Sysctl(sysctl::Sysctl),
    "address" => Address(address::Address),
    "route" => Route(route::Route),
    "link" => Link(link::Link),
    "ipvs" => Ipvs(ipvs::Ipvs),
    "fwmark" => Fwmark(fwmark::Fwmark),
    "wait_for" => WaitFor(wait_for::WaitFor),
    "process" => Process(process::Process),
    "assert" => Assert(assert::Assert),
}
