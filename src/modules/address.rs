//! `address`: an IP address present or absent on an interface, with an optional label
//! (`ens32:2` as the seed's `ifconfig` alias, or the VIP as a /32 on `lo`). Uses `ip`.

use std::net::IpAddr;

use serde::Deserialize;

use super::{Applied, Module, Query, TaskCtx, TaskError};
use crate::inventory::valid_interface;
use crate::playbook::template::Tpl;
use crate::transport::commands;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Address {
    /// The address, bare or with its prefix (`198.18.0.100/32`).
    pub address: Tpl<String>,
    /// Prefix length when `address` has none (default 32 for IPv4, 128 for IPv6).
    pub prefix: Option<Tpl<u8>>,
    /// The interface (`eth0`, `lo`).
    pub dev: Tpl<String>,
    /// Label, e.g. `eth0:2`; must start with the interface name.
    pub label: Option<Tpl<String>>,
    #[serde(default)]
    pub state: AddressState,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AddressState {
    #[default]
    Present,
    Absent,
}

pub struct Change {
    dev: String,
    /// Addresses to remove first (other prefix or label, or `absent`).
    remove: Vec<String>,
    add: Option<(String, Option<String>)>,
}

/// (ip, prefix, label) of each address `address_list` printed.
fn parse(text: &str) -> Vec<(IpAddr, u8, String)> {
    text.lines()
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            let (ip, prefix) = parts.next()?.split_once('/')?;
            Some((
                ip.parse().ok()?,
                prefix.parse().ok()?,
                parts.next().unwrap_or("").to_string(),
            ))
        })
        .collect()
}

impl Address {
    fn desired(
        &self,
        ctx: &TaskCtx<'_>,
    ) -> Result<(IpAddr, u8, String, Option<String>), TaskError> {
        let raw = ctx.resolve(&self.address)?;
        let (ip_text, prefix_text) = match raw.split_once('/') {
            Some((a, p)) => (a.to_string(), Some(p.to_string())),
            None => (raw.clone(), None),
        };
        let ip: IpAddr = ip_text
            .parse()
            .map_err(|_| TaskError::new(format!("`{raw}` is not an IP address")))?;
        let prefix = match (prefix_text, ctx.resolve_opt(&self.prefix)?) {
            (Some(p), _) => p
                .parse::<u8>()
                .map_err(|_| TaskError::new(format!("`{raw}`: bad prefix")))?,
            (None, Some(p)) => p,
            (None, None) => {
                if ip.is_ipv4() {
                    32
                } else {
                    128
                }
            }
        };
        let dev = ctx.resolve(&self.dev)?;
        if !valid_interface(&dev) {
            return Err(TaskError::new(format!("`{dev}` is not an interface name")));
        }
        let label = ctx.resolve_opt(&self.label)?;
        if let Some(l) = &label
            && (!valid_interface(l) || !l.starts_with(&dev))
        {
            return Err(TaskError::new(format!(
                "label `{l}` must be an interface name starting with `{dev}` (e.g. {dev}:1)"
            )));
        }
        Ok((ip, prefix, dev, label))
    }
}

impl Module for Address {
    type Change = Change;

    async fn query(&self, ctx: &TaskCtx<'_>) -> Result<Query<Change>, TaskError> {
        let (ip, prefix, dev, label) = self.desired(ctx)?;
        let out = ctx.run(&commands::address_list(&dev)).await?;
        if !out.success() {
            return Err(TaskError::new(format!(
                "{} has no interface `{dev}`",
                ctx.host.name
            )));
        }
        let present = parse(&out.stdout_str());
        let same_ip: Vec<&(IpAddr, u8, String)> =
            present.iter().filter(|(a, _, _)| *a == ip).collect();
        let cidr = format!("{ip}/{prefix}");
        match self.state {
            AddressState::Absent => {
                // With a label, only that alias goes (keepalived's own VIP stays).
                let same_ip: Vec<&(IpAddr, u8, String)> = same_ip
                    .into_iter()
                    .filter(|(_, _, l)| label.as_ref().is_none_or(|want| l == want))
                    .collect();
                if same_ip.is_empty() {
                    return Ok(Query::ok(format!("{ip} not on {dev}")));
                }
                let remove: Vec<String> =
                    same_ip.iter().map(|(a, p, _)| format!("{a}/{p}")).collect();
                Ok(Query::change(
                    Change {
                        dev: dev.clone(),
                        remove,
                        add: None,
                    },
                    format!("remove {ip} from {dev}"),
                ))
            }
            AddressState::Present => {
                let label_ok = |l: &String| match &label {
                    Some(want) => l == want,
                    None => true,
                };
                if same_ip.iter().any(|(_, p, l)| *p == prefix && label_ok(l)) {
                    return Ok(Query::ok(format!("{cidr} on {dev}")));
                }
                let remove: Vec<String> =
                    same_ip.iter().map(|(a, p, _)| format!("{a}/{p}")).collect();
                let summary = if remove.is_empty() {
                    format!(
                        "add {cidr} to {dev}{}",
                        label
                            .as_ref()
                            .map(|l| format!(" as {l}"))
                            .unwrap_or_default()
                    )
                } else {
                    format!("replace {} with {cidr} on {dev}", remove.join(", "))
                };
                Ok(Query::change(
                    Change {
                        dev,
                        remove,
                        add: Some((cidr, label)),
                    },
                    summary,
                ))
            }
        }
    }

    async fn apply(&self, ctx: &TaskCtx<'_>, change: Change) -> Result<Applied, TaskError> {
        for cidr in &change.remove {
            ctx.run_ok(
                &commands::address_del(&change.dev, cidr),
                &format!("removing {cidr} from {}", change.dev),
            )
            .await?;
        }
        if let Some((cidr, label)) = &change.add {
            ctx.run_ok(
                &commands::address_add(&change.dev, cidr, label.as_deref()),
                &format!("adding {cidr} to {}", change.dev),
            )
            .await?;
        }
        Ok(Applied::changed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_addresses_with_labels() {
        let v = parse("127.0.0.1/8 lo\n198.18.0.100/32 lo:0\n::1/128 \n");
        assert_eq!(
            v[1],
            ("198.18.0.100".parse().unwrap(), 32, "lo:0".to_string())
        );
        assert_eq!(v[2].2, "");
    }
}
