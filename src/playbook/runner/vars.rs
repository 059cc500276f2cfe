//! Which variables a task sees, and in which order they override each other: inventory
//! variables (global < group < host) < play variables < registered results < extra variables
//! (`-e`), then the built-ins, which nothing overrides: `inventory_hostname`, `host`,
//! `group_names`, `facts`, the host's LVS role (`director` or `real_server`), and the run-wide
//! `lvs`, `groups` and `hostvars`.

use minijinja::Value;
use serde_json::json;

use super::{Registered, Runner};
use crate::fleet::Connected;
use crate::inventory::{Host, Inventory, Vars};
use crate::modules::TaskError;
use crate::playbook::model::Play;
use crate::templates::{Tpl, is_template, to_value};

/// Names every task can use besides the inventory's variables (for `validate`).
pub const BUILTINS: &[&str] = &[
    "inventory_hostname",
    "host",
    "lvs",
    "groups",
    "hostvars",
    "facts",
    "item",
    "group_names",
    "director",
    "real_server",
    "web_host",
];

impl Runner {
    /// `lvs`, `groups` and `hostvars`, built on first use.
    fn shared(&self) -> Value {
        self.shared
            .get_or_init(|| {
                let inv = &self.inventory;
                let mut groups = serde_json::Map::new();
                groups.insert(
                    crate::lvs::names::ALL.into(),
                    json!(inv.hosts.iter().map(|h| h.name.clone()).collect::<Vec<_>>()),
                );
                for (name, g) in &inv.groups {
                    groups.insert(name.clone(), json!(g.hosts));
                }
                let hostvars: serde_json::Map<String, serde_json::Value> = inv
                    .hosts
                    .iter()
                    .map(|h| (h.name.clone(), host_value(inv, h)))
                    .collect();
                to_value(&json!({
                    "lvs": inv.lvs.as_ref().map(|l| l.template_value()),
                    "groups": groups,
                    "hostvars": hostvars,
                }))
            })
            .clone()
    }

    /// A host's template context as a template value: its own variables (see [`Self::context`])
    /// with the run-wide ones, which win as the other built-ins do.
    pub(super) fn value_of(&self, ctx: &Vars) -> Value {
        minijinja::value::merge_maps([self.shared(), to_value(ctx)])
    }

    /// The variables of `host` in `play`. A play variable that does not render is an error.
    pub(super) fn context(
        &self,
        play: &Play,
        host: &Host,
        conn: &Connected,
        registered: &Registered,
    ) -> Result<Vars, TaskError> {
        let inv = &self.inventory;
        let mut ctx = inv.host_vars(host);
        ctx.extend(play.vars.clone());
        if let Ok(reg) = registered.lock()
            && let Some(r) = reg.get(&host.name)
        {
            ctx.extend(r.clone());
        }
        ctx.extend(self.options.extra_vars.clone());
        ctx.insert("inventory_hostname".into(), json!(host.name));
        ctx.insert("host".into(), host_value(inv, host));
        ctx.insert("group_names".into(), json!(inv.groups_of(&host.name)));
        ctx.insert(
            "facts".into(),
            serde_json::to_value(&conn.facts).unwrap_or_default(),
        );
        if let Some(lvs) = &inv.lvs {
            ctx.extend(lvs.host_values(&host.name, &conn.facts.family));
        }
        // Play variables may be templates over all of the above (rendered once, in order).
        for (k, v) in &play.vars {
            if let serde_json::Value::String(s) = v
                && is_template(s)
            {
                let tpl = Tpl::<serde_json::Value>::Expr(s.clone(), Default::default());
                let value = self
                    .templates
                    .resolve(&tpl, &self.value_of(&ctx))
                    .map_err(|e| TaskError::new(format!("play variable `{k}`: {e}")))?;
                ctx.insert(k.clone(), value);
            }
        }
        Ok(ctx)
    }
}

/// A host as templates see it: its inventory fields and its variables.
fn host_value(inv: &Inventory, host: &Host) -> serde_json::Value {
    let mut v = match serde_json::to_value(host) {
        Ok(serde_json::Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    };
    for (k, val) in inv.host_vars(host) {
        v.entry(k).or_insert(val);
    }
    serde_json::Value::Object(v)
}
