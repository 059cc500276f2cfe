//! `wait_for`: wait until a TCP port answers, a path exists, or a command succeeds (or the
//! opposite with `state: stopped`). Never a change.

use std::time::{Duration, Instant};

use serde::Deserialize;

use super::{Applied, Module, Query, TaskCtx, TaskError};
use crate::templates::Tpl;
use crate::transport::sh;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaitFor {
    pub port: Option<Tpl<u16>>,
    /// Address to connect to for `port` (from the target host; default 127.0.0.1).
    pub host: Option<Tpl<std::net::IpAddr>>,
    pub path: Option<Tpl<String>>,
    pub command: Option<Tpl<String>>,
    #[serde(default)]
    pub state: WaitState,
    /// Seconds.
    #[serde(default = "thirty")]
    pub timeout: u64,
}

fn thirty() -> u64 {
    30
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum WaitState {
    #[default]
    Started,
    Stopped,
}

impl WaitFor {
    fn test(&self, ctx: &TaskCtx<'_>) -> Result<(String, String), TaskError> {
        if let Some(port) = ctx.resolve_opt(&self.port)? {
            let host = ctx
                .resolve_opt(&self.host)?
                .unwrap_or(std::net::IpAddr::from([127, 0, 0, 1]));
            let endpoint = crate::lvs::Endpoint::new(host, port);
            return Ok((sh::tcp_open(host, port), endpoint.to_string()));
        }
        if let Some(path) = ctx.resolve_opt(&self.path)? {
            return Ok((sh::exists(&path), path));
        }
        if let Some(cmd) = ctx.resolve_opt(&self.command)? {
            return Ok((cmd.clone(), format!("`{cmd}`")));
        }
        Err(TaskError::new("wait_for needs one of port, path, command"))
    }

    async fn holds(&self, ctx: &TaskCtx<'_>, line: &str) -> Result<bool, TaskError> {
        let ok = ctx
            .run_timeout(line, Duration::from_secs(5))
            .await?
            .success();
        Ok(ok == (self.state == WaitState::Started))
    }
}

impl Module for WaitFor {
    type Change = (String, String);

    async fn query(&self, ctx: &TaskCtx<'_>) -> Result<Query<Self::Change>, TaskError> {
        let (line, what) = self.test(ctx)?;
        // The playbook's own `command:` is a command like any other: not in check mode.
        if ctx.check && self.command.is_some() {
            return Ok(Query::Skip {
                msg: format!("{what} not run (check mode)"),
            });
        }
        if self.holds(ctx, &line).await? {
            return Ok(Query::ok(format!("{what} ready")));
        }
        if ctx.check {
            return Ok(Query::Skip {
                msg: format!("{what} not ready (no waiting in check mode)"),
            });
        }
        Ok(Query::change(
            (line, what.clone()),
            format!("wait for {what}"),
        ))
    }

    async fn apply(
        &self,
        ctx: &TaskCtx<'_>,
        (line, what): Self::Change,
    ) -> Result<Applied, TaskError> {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(self.timeout) {
            if self.holds(ctx, &line).await? {
                return Ok(Applied {
                    changed: false,
                    msg: Some(format!(
                        "{what} ready after {} ms",
                        start.elapsed().as_millis()
                    )),
                    ..Applied::changed()
                });
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Err(TaskError::new(format!(
            "{what} not ready after {} s",
            self.timeout
        )))
    }
}
