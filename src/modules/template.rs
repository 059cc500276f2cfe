//! `template`: a minijinja template rendered on the control side for each host, then handled
//! as `copy` (checksum compare, atomic write, previous version kept, optional validation).

use serde::Deserialize;

use super::file::{FileChange, FileSpec};
use super::{Applied, Module, Query, TaskCtx, TaskError};
use crate::templates::{Templates, Tpl};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Template {
    /// Template file name (looked up in the playbook's `templates/` dir, then the built-in ones).
    pub src: String,
    pub dest: Tpl<String>,
    pub mode: Option<Tpl<String>>,
    pub owner: Option<Tpl<String>>,
    /// A command run on the rendered file before it replaces the old one (`%s` is its path),
    /// e.g. `keepalived -t -f %s`.
    pub validate: Option<Tpl<String>>,
}

impl Module for Template {
    type Change = FileChange;

    async fn query(&self, ctx: &TaskCtx<'_>) -> Result<Query<FileChange>, TaskError> {
        let content = ctx
            .templates
            .render_file(&self.src, ctx.vars)
            .map_err(TaskError::new)?;
        FileSpec::resolve(
            ctx,
            &self.dest,
            content.into_bytes(),
            &self.mode,
            &self.owner,
            &self.validate,
        )?
        .query(ctx)
        .await
    }

    async fn apply(&self, ctx: &TaskCtx<'_>, change: FileChange) -> Result<Applied, TaskError> {
        FileSpec::apply(ctx, change).await
    }

    fn check(&self, templates: &Templates) -> Vec<String> {
        if templates.has(&self.src) {
            Vec::new()
        } else {
            vec![format!(
                "template `{}` not found (in the playbook's templates/ or the built-in ones)",
                self.src
            )]
        }
    }
}
