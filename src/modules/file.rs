//! `copy` (a file with the given content) and `file` (a path absent, or a directory). The
//! content logic is shared with `template`: compare checksums first, send only on difference,
//! write atomically with the previous version kept, validate before replacing.

use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::{Applied, Module, Query, TaskCtx, TaskError, command_failed};
use crate::templates::Tpl;
use crate::transport::sh;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Copy {
    pub dest: Tpl<String>,
    pub content: Tpl<String>,
    pub mode: Option<Tpl<String>>,
    pub owner: Option<Tpl<String>>,
    /// A command run on the new file before it replaces the old (`%s` is its path).
    pub validate: Option<Tpl<String>>,
}

/// A file's desired content and metadata, resolved for one host. Mode and owner are only
/// managed when the task sets them; otherwise an existing file keeps its own.
pub struct FileSpec {
    pub dest: String,
    pub content: Vec<u8>,
    pub mode: Option<String>,
    pub owner: Option<String>,
    pub validate: Option<String>,
}

pub struct FileChange {
    spec: FileSpec,
    write: bool,
}

fn check_path(p: &str) -> Result<(), TaskError> {
    if p.starts_with('/') && !p.contains('\0') && !p.split('/').any(|c| c == "..") {
        Ok(())
    } else {
        Err(TaskError::new(format!("`{p}` is not an absolute path")))
    }
}

fn check_mode(m: &str) -> Result<String, TaskError> {
    let trimmed = m.trim_start_matches('0');
    if m.len() <= 4 && m.chars().all(|c| ('0'..='7').contains(&c)) {
        Ok(if trimmed.is_empty() {
            "0".into()
        } else {
            trimmed.to_string()
        })
    } else {
        Err(TaskError::new(format!(
            "mode `{m}`: write it as octal, e.g. \"0644\""
        )))
    }
}

impl FileSpec {
    pub fn resolve(
        ctx: &TaskCtx<'_>,
        dest: &Tpl<String>,
        content: Vec<u8>,
        mode: &Option<Tpl<String>>,
        owner: &Option<Tpl<String>>,
        validate: &Option<Tpl<String>>,
    ) -> Result<FileSpec, TaskError> {
        let dest = ctx.resolve(dest)?;
        check_path(&dest)?;
        let mode = ctx.resolve_opt(mode)?.map(|m| check_mode(&m)).transpose()?;
        let owner = ctx.resolve_opt(owner)?;
        if let Some(o) = &owner
            && !o
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c))
        {
            return Err(TaskError::new(format!(
                "owner `{o}`: use user or user:group"
            )));
        }
        Ok(FileSpec {
            dest,
            content,
            mode,
            owner,
            validate: ctx.resolve_opt(validate)?,
        })
    }

    /// Compare with the host's file; fetch the old content only when a diff is wanted.
    pub async fn query(self, ctx: &TaskCtx<'_>) -> Result<Query<FileChange>, TaskError> {
        let stat = ctx
            .read_ok(&sh::file_stat(&self.dest), "reading the file's state")
            .await?;
        let want_sum = hex(&Sha256::digest(&self.content));
        let link = stat == sh::FileStat::Link;
        let (exists, same_content, same_meta) = match stat {
            // A link is replaced by the file: nothing of its target counts.
            sh::FileStat::Absent | sh::FileStat::Link => (false, false, false),
            sh::FileStat::NotAFile => {
                return Err(TaskError::new(format!(
                    "{} exists and is not a regular file",
                    self.dest
                )));
            }
            sh::FileStat::File {
                mode,
                owner,
                sha256,
            } => {
                let owner_ok = match &self.owner {
                    None => true,
                    Some(o) if o.contains(':') => owner == *o,
                    Some(o) => owner.split(':').next() == Some(o.as_str()),
                };
                let mode_ok = self.mode.as_ref().is_none_or(|m| mode == *m);
                (true, sha256 == want_sum, mode_ok && owner_ok)
            }
        };
        if same_content && same_meta {
            return Ok(Query::ok(format!("{} up to date", self.dest)));
        }
        let mut diff = None;
        if !same_content && ctx.diff {
            let old = if exists {
                ctx.run_ok(&sh::file_read(&self.dest), "reading the file")
                    .await?
                    .stdout
            } else {
                Vec::new()
            };
            let (old, new) = (
                String::from_utf8_lossy(&old),
                String::from_utf8_lossy(&self.content),
            );
            let text = similar::TextDiff::from_lines(&old, &new)
                .unified_diff()
                .header(
                    &format!("{} (host)", self.dest),
                    &format!("{} (new)", self.dest),
                )
                .to_string();
            diff = Some(ctx.inventory.secrets.mask_diff(&text, &new));
        }
        let summary = match (exists, same_content) {
            (false, _) if link => format!(
                "replace the symbolic link at {} with the file (the link is not followed)",
                self.dest
            ),
            (false, _) => format!("create {}", self.dest),
            (true, false) => format!("update {}", self.dest),
            (true, true) => format!("mode/owner of {}", self.dest),
        };
        Ok(Query::Change {
            change: FileChange {
                spec: self,
                write: !same_content,
            },
            summary,
            diff,
        })
    }

    pub async fn apply(ctx: &TaskCtx<'_>, change: FileChange) -> Result<Applied, TaskError> {
        let s = &change.spec;
        if change.write {
            let cmd = sh::file_write(
                &s.dest,
                s.mode.as_deref(),
                s.owner.as_deref(),
                s.validate.as_deref(),
            );
            let out = ctx.run_stdin(&cmd, &s.content).await?;
            if out.status == Some(3) {
                return Err(TaskError::new(format!(
                    "{} was not replaced: the new version failed validation; the old file is unchanged. {}",
                    s.dest,
                    out.stderr_str().trim()
                )));
            }
            if !out.success() {
                return Err(command_failed(&format!("writing {}", s.dest), &out));
            }
        } else {
            ctx.run_ok(
                &sh::file_chmod_chown(&s.dest, s.mode.as_deref(), s.owner.as_deref()),
                "setting mode/owner",
            )
            .await?;
        }
        Ok(Applied::changed())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Module for Copy {
    type Change = FileChange;

    async fn query(&self, ctx: &TaskCtx<'_>) -> Result<Query<FileChange>, TaskError> {
        let content = ctx.resolve(&self.content)?.into_bytes();
        FileSpec::resolve(
            ctx,
            &self.dest,
            content,
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
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    pub path: Tpl<String>,
    pub state: FileState,
    /// A directory's mode: made with it (0755 without one); one already there is changed
    /// only when it is given.
    pub mode: Option<Tpl<String>>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum FileState {
    Absent,
    Directory,
}

impl Module for File {
    type Change = (String, String);

    async fn query(&self, ctx: &TaskCtx<'_>) -> Result<Query<Self::Change>, TaskError> {
        let path = ctx.resolve(&self.path)?;
        check_path(&path)?;
        if path == "/" {
            return Err(TaskError::new("refusing to manage /"));
        }
        let given = ctx
            .resolve_opt(&self.mode)?
            .map(|m| check_mode(&m))
            .transpose()?;
        let mode = given.clone().unwrap_or_else(|| "755".into());
        let kind = ctx
            .read_ok(&sh::path_kind(&path), "reading the path")
            .await?;
        match (self.state, kind) {
            (FileState::Absent, sh::PathKind::Absent) => Ok(Query::ok(format!("{path} absent"))),
            (FileState::Absent, _) => Ok(Query::change(
                (path.clone(), mode),
                format!("remove {path}"),
            )),
            (FileState::Directory, sh::PathKind::Directory { mode: now }) => match given {
                Some(want) if want != now => Ok(Query::change(
                    (path.clone(), want.clone()),
                    format!("mode of {path} {now} -> {want}"),
                )),
                _ => Ok(Query::ok(format!("{path} is a directory"))),
            },
            (FileState::Directory, sh::PathKind::Absent) => Ok(Query::change(
                (path.clone(), mode),
                format!("create directory {path}"),
            )),
            (FileState::Directory, k) => Err(TaskError::new(format!(
                "{path} exists as a {}, not a directory",
                k.word()
            ))),
        }
    }

    async fn apply(
        &self,
        ctx: &TaskCtx<'_>,
        (path, mode): Self::Change,
    ) -> Result<Applied, TaskError> {
        let cmd = match self.state {
            FileState::Absent => sh::remove_path(&path),
            FileState::Directory => sh::make_dir(&path, &mode),
        };
        ctx.run_ok(&cmd, &path).await?;
        Ok(Applied::changed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_modes_are_screened() {
        assert!(check_path("/etc/keepalived/keepalived.conf").is_ok());
        assert!(check_path("etc/x").is_err());
        assert!(check_path("/etc/../root").is_err());
        assert_eq!(check_mode("0644").unwrap(), "644");
        assert_eq!(check_mode("600").unwrap(), "600");
        assert!(check_mode("rw-r").is_err());
    }
}
