//! `sysctl`: a kernel setting at runtime (read from /proc/sys) and persisted in lvslab's own
//! file under /etc/sysctl.d. Only the named key is touched. The value found before lvslab's
//! first change is kept on the host, so `state: restored` can put it back (teardown).

use serde::Deserialize;

use super::{Applied, Module, Query, TaskCtx, TaskError};
use crate::templates::Tpl;
use crate::transport::sh;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sysctl {
    /// e.g. `net.ipv4.conf.all.arp_ignore`
    pub key: Tpl<Key>,
    /// Required with `state: present`.
    pub value: Option<Tpl<Value>>,
    #[serde(default)]
    pub state: SysctlState,
}

/// A kernel setting's name, checked when read: dotted words, nothing a shell or a path could
/// take for more.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key(pub String);

/// A setting's value, checked when read: one line of printable characters (a line break would
/// add a setting to lvslab's sysctl file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Value(pub String);

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        check_key(&s).map_err(|e| serde::de::Error::custom(e.message))?;
        Ok(Key(s))
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Numbers are values too (`value: 1`).
        let v = serde_json::Value::deserialize(d)?;
        let s = match v {
            serde_json::Value::String(s) => s,
            serde_json::Value::Number(n) => n.to_string(),
            other => {
                return Err(serde::de::Error::custom(format!(
                    "a sysctl value is a number or a line of text, not {other}"
                )));
            }
        };
        if s.chars().any(|c| c.is_control() && c != '\t') || s.trim().is_empty() {
            return Err(serde::de::Error::custom(format!(
                "sysctl value {:?}: one line of text (no line breaks or control characters)",
                s
            )));
        }
        Ok(Value(s))
    }
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SysctlState {
    #[default]
    Present,
    /// Back to the value it had before lvslab changed it; lvslab's line removed.
    Restored,
}

pub enum Change {
    Set { key: String, value: String },
    Restore { key: String },
}

/// Kernel keys are dotted names; refuse anything else before it nears a shell.
fn check_key(key: &str) -> Result<(), TaskError> {
    if !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        && !key.starts_with('.')
        && !key.contains("..")
    {
        Ok(())
    } else {
        Err(TaskError::new(format!("`{key}` is not a sysctl key")))
    }
}

/// Values compare as the kernel prints them (tabs between numbers).
fn normalize(v: &str) -> String {
    v.split_whitespace().collect::<Vec<_>>().join(" ")
}

impl Module for Sysctl {
    type Change = Change;

    async fn query(&self, ctx: &TaskCtx<'_>) -> Result<Query<Change>, TaskError> {
        let key = ctx.resolve(&self.key)?.0;
        let found = ctx
            .read_ok(&sh::sysctl_query(&key), "reading the sysctl")
            .await?;
        let Some(runtime) = found.runtime.clone() else {
            // A setting that does not exist (tunl0's, without ipip): nothing to put back, only
            // what lvslab kept of it to forget.
            if self.state == SysctlState::Restored {
                if found.original.is_none() && found.persisted.is_none() {
                    return Ok(Query::ok(format!("{key} (no such setting)")));
                }
                return Ok(Query::change(
                    Change::Restore { key: key.clone() },
                    format!("{key}: no such setting any more; forget the value lvslab kept"),
                ));
            }
            return Err(TaskError::new(format!(
                "the kernel has no setting {key} (no /proc/sys entry)"
            )));
        };
        match self.state {
            SysctlState::Present => {
                let Some(Value(value)) = ctx.resolve_opt(&self.value)? else {
                    return Err(TaskError::new(
                        "sysctl: `value` is required with state: present",
                    ));
                };
                let want = normalize(&value);
                if normalize(&runtime) == want
                    && found.persisted.as_deref().map(normalize) == Some(want.clone())
                {
                    return Ok(Query::ok(format!("{key} = {want}")));
                }
                let summary = if normalize(&runtime) == want {
                    format!("{key} = {want} (persisting)")
                } else {
                    format!("{key} {} -> {want}", normalize(&runtime))
                };
                let diff = format!("-{key} = {}\n+{key} = {want}", normalize(&runtime));
                Ok(Query::Change {
                    change: Change::Set { key, value: want },
                    summary,
                    diff: Some(diff),
                })
            }
            SysctlState::Restored => {
                if found.original.is_none() && found.persisted.is_none() {
                    return Ok(Query::ok(format!(
                        "{key} = {} (not set by lvslab)",
                        normalize(&runtime)
                    )));
                }
                let back = found
                    .original
                    .as_deref()
                    .map(normalize)
                    .unwrap_or_else(|| normalize(&runtime));
                let diff = format!("-{key} = {}\n+{key} = {back}", normalize(&runtime));
                Ok(Query::Change {
                    change: Change::Restore { key: key.clone() },
                    summary: format!("{key} {} -> {back} (restored)", normalize(&runtime)),
                    diff: Some(diff),
                })
            }
        }
    }

    async fn apply(&self, ctx: &TaskCtx<'_>, change: Change) -> Result<Applied, TaskError> {
        let (command, what) = match &change {
            Change::Set { key, value } => (sh::sysctl_set(key, value), "setting the sysctl"),
            Change::Restore { key } => (sh::sysctl_restore(key), "restoring the sysctl"),
        };
        ctx.run_ok(&command, what).await?;
        Ok(Applied::changed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_screened() {
        assert!(check_key("net.ipv4.conf.all.arp_ignore").is_ok());
        assert!(check_key("net.ipv4.conf.eth0;reboot").is_err());
        assert!(check_key("../../etc/passwd").is_err());
        let line_break: Result<Sysctl, _> = serde_json::from_value(
            serde_json::json!({"key": "net.ipv4.ip_forward", "value": "1\nkernel.x = 1"}),
        );
        assert!(line_break.unwrap_err().to_string().contains("one line"));
        let bad_key: Result<Sysctl, _> =
            serde_json::from_value(serde_json::json!({"key": "a;b", "value": 1}));
        assert!(bad_key.is_err());
        let ok: Sysctl = serde_json::from_value(
            serde_json::json!({"key": "net.ipv4.conf.{{ item }}.arp_ignore", "value": 1}),
        )
        .unwrap();
        assert!(matches!(ok.value, Some(Tpl::Lit(Value(ref v))) if v == "1"));
        assert_eq!(normalize("4096\t87380  6291456"), "4096 87380 6291456");
    }
}
