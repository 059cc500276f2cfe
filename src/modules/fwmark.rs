//! `fwmark`: lvslab's nftables table holds exactly the marking rules of the firewall-mark
//! services (`marks`, the built-in playbooks pass `{{ lvs.marks }}`). Read with `nft -j`, written
//! in one nft transaction only when it differs; no marks (or `state: absent`) means no table.
//! The rules and their wording are the LVS model's ([`crate::lvs::marks`]).

use serde::Deserialize;

use super::{Applied, Boot, Module, Query, TaskCtx, TaskError};
use crate::lvs::marks::{MarkRule, MarkTable, TABLE};
use crate::templates::Tpl;
use crate::transport::sh;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fwmark {
    /// The marking rules: `[{mark, vip, protocol, ports}]`.
    #[serde(default)]
    pub marks: Option<Tpl<Vec<MarkRule>>>,
    #[serde(default)]
    pub state: FwmarkState,
    /// Also kept for boot (see `lvslab-boot`); `false` leaves it to this run only.
    #[serde(default = "super::yes")]
    pub boot: bool,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum FwmarkState {
    #[default]
    Present,
    /// No lvslab table.
    Absent,
}

/// The boot entry: after the addresses, before the IPVS rules.
const BOOT_ENTRY: &str = "45-nft-marks";

impl Fwmark {
    /// The rules wanted, sorted; empty: no table.
    fn wanted(&self, ctx: &TaskCtx<'_>) -> Result<Vec<MarkRule>, TaskError> {
        if self.state == FwmarkState::Absent {
            return Ok(Vec::new());
        }
        let mut rules: Vec<MarkRule> = ctx
            .resolve_opt(&self.marks)?
            .unwrap_or_default()
            .into_iter()
            .map(|r| MarkRule::new(r.mark, r.vip, r.protocol, &r.ports))
            .collect();
        rules.sort();
        if let Some(r) = rules.iter().find(|r| r.ports.is_empty()) {
            return Err(TaskError::new(format!(
                "fwmark: mark {} has no ports",
                r.mark
            )));
        }
        Ok(rules)
    }
}

pub enum Change {
    Write(Vec<MarkRule>),
    Delete,
}

impl Module for Fwmark {
    type Change = Change;

    fn boot(&self, ctx: &TaskCtx<'_>) -> Result<Option<Boot>, TaskError> {
        let rules = self.wanted(ctx)?;
        let name = BOOT_ENTRY.to_string();
        Ok(Some(if self.boot && !rules.is_empty() {
            Boot::Set {
                name,
                line: sh::mark_table_write(&rules),
            }
        } else {
            Boot::Absent { name }
        }))
    }

    async fn query(&self, ctx: &TaskCtx<'_>) -> Result<Query<Change>, TaskError> {
        let want = self.wanted(ctx)?;
        let have: MarkTable = ctx
            .read_ok(&sh::mark_table(), "reading lvslab's nftables table")
            .await?;
        if want.is_empty() {
            return Ok(if have.exists {
                Query::change(Change::Delete, format!("delete nftables table ip {TABLE}"))
            } else {
                Query::ok(format!("no nftables table ip {TABLE}"))
            });
        }
        if have.holds(&want) {
            let marks: Vec<String> = want.iter().map(|r| r.mark.to_string()).collect();
            return Ok(Query::ok(format!("marks {} set", marks.join(", "))));
        }
        let wanted = MarkTable {
            exists: true,
            chain_ok: true,
            rules: want.clone(),
            unknown: 0,
        };
        let diff = similar::TextDiff::from_lines(have.text().as_str(), wanted.text().as_str())
            .unified_diff()
            .header("nftables (host)", "nftables (desired)")
            .to_string();
        let summary = want
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ");
        Ok(Query::Change {
            summary: format!("nftables table ip {TABLE}: {summary}"),
            change: Change::Write(want),
            diff: Some(diff),
        })
    }

    async fn apply(&self, ctx: &TaskCtx<'_>, change: Change) -> Result<Applied, TaskError> {
        let line = match &change {
            Change::Write(rules) => sh::mark_table_write(rules),
            Change::Delete => sh::mark_table_delete(),
        };
        ctx.run_ok(&line, "nft").await?;
        Ok(Applied::changed())
    }
}
