//! `package`: packages present or absent, through apt-get, dnf or yum as the host's facts say.
//! Installed packages are never touched, so a host without network converges when all is there.

use serde::Deserialize;

use super::{Applied, Module, Query, TaskCtx, TaskError};
use crate::templates::Tpl;
use crate::transport::sh;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Package {
    /// One name or a list.
    pub name: Tpl<Names>,
    #[serde(default)]
    pub state: PackageState,
}

#[derive(Debug, Clone, Deserialize, serde::Serialize, Default)]
#[serde(untagged)]
pub enum Names {
    One(String),
    #[default]
    None,
    Many(Vec<String>),
}

impl Names {
    fn list(self) -> Vec<String> {
        match self {
            Names::One(s) => vec![s],
            Names::Many(v) => v,
            Names::None => vec![],
        }
    }
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum PackageState {
    #[default]
    Present,
    Absent,
}

fn valid_package(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with('-')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-._:".contains(c))
}

impl Module for Package {
    type Change = (String, Vec<String>);

    async fn query(&self, ctx: &TaskCtx<'_>) -> Result<Query<Self::Change>, TaskError> {
        let names = ctx.resolve(&self.name)?.list();
        if let Some(bad) = names.iter().find(|n| !valid_package(n)) {
            return Err(TaskError::new(format!("`{bad}` is not a package name")));
        }
        let Some(manager) = ctx.facts.pkg.clone() else {
            return Err(TaskError::new(format!(
                "{} has no package manager lvslab knows (apt-get, dnf, yum)",
                ctx.host.name
            )));
        };
        let missing = ctx
            .read_ok(&sh::packages_missing(&manager, &names), "querying packages")
            .await?;
        let todo: Vec<String> = match self.state {
            PackageState::Present => missing,
            PackageState::Absent => names
                .iter()
                .filter(|n| !missing.contains(n))
                .cloned()
                .collect(),
        };
        if todo.is_empty() {
            return Ok(Query::ok(format!(
                "{} {}",
                self.state_word(),
                names.join(" ")
            )));
        }
        let verb = if self.state == PackageState::Present {
            "install"
        } else {
            "remove"
        };
        Ok(Query::change(
            (manager, todo.clone()),
            format!("{verb} {}", todo.join(" ")),
        ))
    }

    async fn apply(
        &self,
        ctx: &TaskCtx<'_>,
        (manager, names): Self::Change,
    ) -> Result<Applied, TaskError> {
        let command = match self.state {
            PackageState::Present => sh::packages_install(&manager, &names),
            PackageState::Absent => sh::packages_remove(&manager, &names),
        };
        let out = ctx
            .run_timeout(&command, std::time::Duration::from_secs(900))
            .await?;
        if !out.success() {
            return Err(super::command_failed(
                &format!("{manager} for {}", names.join(" ")),
                &out,
            ));
        }
        Ok(Applied {
            output: out.stdout_str(),
            ..Applied::changed()
        })
    }
}

impl Package {
    fn state_word(&self) -> &'static str {
        if self.state == PackageState::Present {
            "installed"
        } else {
            "absent"
        }
    }
}
