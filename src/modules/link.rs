//! `link`: a network device up or down; a device that comes with a kernel module (LVS-TUN's
//! `tunl0` with `ipip`) is brought into being by loading it.

use serde::Deserialize;

use super::{Applied, Boot, Module, Query, TaskCtx, TaskError};
use crate::lvs::names::Interface;
use crate::templates::Tpl;
use crate::transport::sh::{self, DeviceState};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Link {
    pub name: Tpl<Interface>,
    #[serde(default)]
    pub state: LinkState,
    /// The kernel module that makes the device (`ipip` for `tunl0`), loaded when it is missing.
    pub module: Option<Tpl<Interface>>,
    /// Also kept for boot (see `lvslab-boot`); `false` leaves it to this run only.
    #[serde(default = "super::yes")]
    pub boot: bool,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LinkState {
    #[default]
    Up,
    /// Down, if it exists.
    Down,
}

pub struct Change {
    name: String,
    load: Option<String>,
    up: bool,
}

impl Module for Link {
    type Change = Change;

    fn boot(&self, ctx: &TaskCtx<'_>) -> Result<Option<Boot>, TaskError> {
        let name = ctx.resolve(&self.name)?.0;
        let module = ctx.resolve_opt(&self.module)?.map(|m| m.0);
        let entry = format!("10-link-{}", sh::boot_entry_word(&name));
        Ok(Some(if self.boot && self.state == LinkState::Up {
            Boot::Set {
                name: entry,
                line: sh::boot_link(&name, module.as_deref()),
            }
        } else {
            Boot::Absent { name: entry }
        }))
    }

    async fn query(&self, ctx: &TaskCtx<'_>) -> Result<Query<Change>, TaskError> {
        let name = ctx.resolve(&self.name)?.0;
        let module = ctx.resolve_opt(&self.module)?.map(|m| m.0);
        let state = ctx
            .read_ok(&sh::link_state(&name), "reading the device")
            .await?;
        match (self.state, state) {
            (LinkState::Up, DeviceState::Up) => Ok(Query::ok(format!("{name} up"))),
            (LinkState::Down, DeviceState::Down | DeviceState::Absent) => {
                Ok(Query::ok(format!("{name} {}", state.word())))
            }
            (LinkState::Up, DeviceState::Absent) => {
                let Some(module) = module else {
                    return Err(TaskError::new(format!(
                        "{} has no device {name} (and no `module:` to load for it)",
                        ctx.host.name
                    )));
                };
                Ok(Query::change(
                    Change {
                        name: name.clone(),
                        load: Some(module.clone()),
                        up: true,
                    },
                    format!("load {module}, bring {name} up"),
                ))
            }
            (LinkState::Up, _) => Ok(Query::change(
                Change {
                    name: name.clone(),
                    load: None,
                    up: true,
                },
                format!("bring {name} up"),
            )),
            (LinkState::Down, _) => Ok(Query::change(
                Change {
                    name: name.clone(),
                    load: None,
                    up: false,
                },
                format!("bring {name} down"),
            )),
        }
    }

    async fn apply(&self, ctx: &TaskCtx<'_>, c: Change) -> Result<Applied, TaskError> {
        if let Some(module) = &c.load {
            ctx.run_ok(&sh::load_module(module), &format!("loading {module}"))
                .await?;
        }
        ctx.run_ok(&sh::link_set(&c.name, c.up), &format!("setting {}", c.name))
            .await?;
        Ok(Applied::changed())
    }
}
