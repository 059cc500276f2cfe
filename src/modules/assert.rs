//! `assert`: expressions over variables, facts and registered results that must all be true.

use serde::Deserialize;

use super::{Applied, Module, Query, TaskCtx, TaskError};
use crate::templates::Templates;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Assert {
    pub that: Vec<String>,
    /// Message when an expression is false.
    pub msg: Option<String>,
}

impl Module for Assert {
    type Change = std::convert::Infallible;

    async fn query(&self, ctx: &TaskCtx<'_>) -> Result<Query<Self::Change>, TaskError> {
        for expr in &self.that {
            let v = ctx.templates.eval(expr, ctx.vars).map_err(TaskError::new)?;
            if !v.is_true() {
                let msg = self
                    .msg
                    .clone()
                    .unwrap_or_else(|| "assertion failed".into());
                return Err(TaskError::new(format!("{msg}: `{expr}` is false")));
            }
        }
        Ok(Query::ok(format!("{} condition(s) hold", self.that.len())))
    }

    async fn apply(&self, _ctx: &TaskCtx<'_>, change: Self::Change) -> Result<Applied, TaskError> {
        match change {}
    }

    fn check(&self, templates: &Templates) -> Vec<String> {
        self.that
            .iter()
            .filter_map(|e| templates.check_expression(e).err())
            .collect()
    }
}
