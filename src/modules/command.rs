//! `command` (argv, no shell) and `shell` (a shell line). Guarded by `creates`, `removes` and
//! `unless` so they can be idempotent; never run in check mode (nor their `unless`).

use serde::{Deserialize, Deserializer};

use super::{Applied, Module, Query, TaskCtx, TaskError};
use crate::templates::Tpl;
use crate::transport::sh;

/// Arguments shared by `command` and `shell`: a string, or a map with `cmd` and guards.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandArgs {
    pub cmd: Tpl<String>,
    /// Skip when this path exists.
    pub creates: Option<Tpl<String>>,
    /// Skip unless this path exists.
    pub removes: Option<Tpl<String>>,
    /// Skip when this shell command succeeds.
    pub unless: Option<Tpl<String>>,
}

fn args<'de, D: Deserializer<'de>>(d: D) -> Result<CommandArgs, D::Error> {
    let v = serde_json::Value::deserialize(d)?;
    match v {
        serde_json::Value::String(s) => Ok(CommandArgs {
            cmd: if crate::templates::is_template(&s) {
                Tpl::Expr(s, Default::default())
            } else {
                Tpl::Lit(s)
            },
            creates: None,
            removes: None,
            unless: None,
        }),
        other => CommandArgs::deserialize(other).map_err(serde::de::Error::custom),
    }
}

#[derive(Debug, Clone)]
pub struct Command(pub CommandArgs);
#[derive(Debug, Clone)]
pub struct Shell(pub CommandArgs);

impl<'de> Deserialize<'de> for Command {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        args(d).map(Command)
    }
}
impl<'de> Deserialize<'de> for Shell {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        args(d).map(Shell)
    }
}

/// Guards first; `None` means: run it.
async fn guarded(a: &CommandArgs, ctx: &TaskCtx<'_>) -> Result<Option<String>, TaskError> {
    if let Some(p) = ctx.resolve_opt(&a.creates)?
        && ctx.run(&sh::exists(&p)).await?.success()
    {
        return Ok(Some(format!("{p} exists")));
    }
    if let Some(p) = ctx.resolve_opt(&a.removes)?
        && !ctx.run(&sh::exists(&p)).await?.success()
    {
        return Ok(Some(format!("{p} does not exist")));
    }
    if let Some(u) = ctx.resolve_opt(&a.unless)?
        && ctx.run(&u).await?.success()
    {
        return Ok(Some("`unless` succeeded".into()));
    }
    Ok(None)
}

async fn query(
    a: &CommandArgs,
    ctx: &TaskCtx<'_>,
    line: String,
) -> Result<Query<String>, TaskError> {
    // A command's effect cannot be predicted, and `unless` is itself a command: in check mode
    // nothing of it runs.
    if ctx.check {
        return Ok(Query::Skip {
            msg: "commands do not run in check mode".into(),
        });
    }
    if let Some(reason) = guarded(a, ctx).await? {
        return Ok(Query::ok(reason));
    }
    Ok(Query::change(line.clone(), line))
}

async fn run(ctx: &TaskCtx<'_>, line: String) -> Result<Applied, TaskError> {
    let out = ctx.run(&line).await?;
    let rc = out.status.map(i64::from).unwrap_or(-1);
    let failed = !out.success();
    let result = serde_json::json!({
        "rc": rc,
        "stdout": out.stdout_str().trim_end(),
        "stderr": out.stderr_str().trim_end(),
        "failed": failed,
    });
    let msg = failed.then(|| super::failure(&line, &out));
    Ok(Applied {
        changed: true,
        msg,
        result,
        output: out.stdout_str(),
    })
}

impl Module for Command {
    type Change = String;

    async fn query(&self, ctx: &TaskCtx<'_>) -> Result<Query<String>, TaskError> {
        let cmd = ctx.resolve(&self.0.cmd)?;
        let words = shlex::split(&cmd).ok_or_else(|| {
            TaskError::new(format!(
                "cannot split `{cmd}` into words (unbalanced quotes?)"
            ))
        })?;
        query(&self.0, ctx, sh::argv(&words)).await
    }

    async fn apply(&self, ctx: &TaskCtx<'_>, line: String) -> Result<Applied, TaskError> {
        run(ctx, line).await
    }
}

impl Module for Shell {
    type Change = String;

    async fn query(&self, ctx: &TaskCtx<'_>) -> Result<Query<String>, TaskError> {
        // The playbook author's own shell line, run as written.
        let line = ctx.resolve(&self.0.cmd)?;
        query(&self.0, ctx, line).await
    }

    async fn apply(&self, ctx: &TaskCtx<'_>, line: String) -> Result<Applied, TaskError> {
        run(ctx, line).await
    }
}
