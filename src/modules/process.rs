//! `process`: whether processes of a name run, for later tasks to decide on (`register:`).
//! It only reads the process table, so it runs in check mode too and never changes a host.

use serde::Deserialize;

use super::{Applied, Module, Query, TaskCtx, TaskError};
use crate::templates::Tpl;
use crate::transport::sh;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Process {
    /// The process name (`pgrep -x`).
    pub name: Tpl<String>,
}

fn safe_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.@:".contains(c))
}

impl Module for Process {
    type Change = std::convert::Infallible;

    async fn query(&self, ctx: &TaskCtx<'_>) -> Result<Query<Self::Change>, TaskError> {
        let name = ctx.resolve(&self.name)?;
        if !safe_name(&name) {
            return Err(TaskError::new(format!("`{name}` is not a process name")));
        }
        let pids = ctx
            .read(&sh::process_ids(&name), "listing the processes")
            .await?;
        let running = !pids.is_empty();
        Ok(Query::Ok {
            msg: if running {
                format!("{name} runs ({} process(es))", pids.len())
            } else {
                format!("{name} does not run")
            },
            result: serde_json::json!({ "running": running, "pids": pids }),
        })
    }

    async fn apply(&self, _ctx: &TaskCtx<'_>, change: Self::Change) -> Result<Applied, TaskError> {
        match change {}
    }
}
