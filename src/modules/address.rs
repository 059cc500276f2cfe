//! `address`: an IP address present or absent on an interface, with an optional label
//! (`ens32:2` as the seed's `ifconfig` alias, or the VIP as a /32 on `lo`). Uses `ip`.

use std::net::IpAddr;

use serde::Deserialize;

use super::{Applied, Boot, Module, Query, TaskCtx, TaskError};
use crate::lvs::Cidr;
use crate::lvs::names::{Interface, Label};
use crate::templates::Tpl;
use crate::transport::sh;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Address {
    /// The address with its prefix (`198.18.0.100/24`); a bare address is a host route (/32).
    /// With `state: absent`, the address goes whatever its prefix.
    pub address: Tpl<Cidr>,
    /// The interface (`eth0`, `lo`).
    pub dev: Tpl<Interface>,
    /// Label, e.g. `eth0:2`; must start with the interface name.
    pub label: Option<Tpl<Label>>,
    #[serde(default)]
    pub state: AddressState,
    /// Also kept for boot (see `lvslab-boot`); `false` leaves it to this run only.
    #[serde(default = "super::yes")]
    pub boot: bool,
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
    remove: Vec<Cidr>,
    add: Option<(Cidr, Option<String>)>,
}

impl Address {
    fn desired(&self, ctx: &TaskCtx<'_>) -> Result<(Cidr, String, Option<String>), TaskError> {
        let cidr = ctx.resolve(&self.address)?;
        let dev = ctx.resolve(&self.dev)?.0;
        let label = ctx.resolve_opt(&self.label)?.map(|l| l.0);
        if let Some(l) = &label
            && !l.starts_with(&dev)
        {
            return Err(TaskError::new(format!(
                "label `{l}` must start with the interface name `{dev}` (e.g. {dev}:1)"
            )));
        }
        Ok((cidr, dev, label))
    }
}

impl Module for Address {
    type Change = Change;

    fn boot(&self, ctx: &TaskCtx<'_>) -> Result<Option<Boot>, TaskError> {
        let (want, dev, label) = self.desired(ctx)?;
        let name = format!(
            "30-address-{}-{}",
            sh::boot_entry_word(&dev),
            sh::boot_entry_word(&want.address.to_string())
        );
        Ok(Some(if self.boot && self.state == AddressState::Present {
            Boot::Set {
                name,
                line: sh::boot_address(&dev, &want.to_string(), label.as_deref()),
            }
        } else {
            Boot::Absent { name }
        }))
    }

    async fn query(&self, ctx: &TaskCtx<'_>) -> Result<Query<Change>, TaskError> {
        let (want, dev, label) = self.desired(ctx)?;
        let query = sh::address_list(&dev);
        let out = ctx.read_output(&query).await?;
        if !out.success() {
            // Nothing to remove from a device that does not exist (tunl0 without ipip).
            if self.state == AddressState::Absent {
                return Ok(Query::ok(format!(
                    "{} not on {dev} (no such device)",
                    want.address
                )));
            }
            return Err(TaskError::new(format!(
                "{} has no interface `{dev}`",
                ctx.host.name
            )));
        }
        let ip: IpAddr = want.address;
        let present = query
            .parse(&out.stdout_str())
            .map_err(|e| super::unreadable("reading the addresses", &e))?;
        let same_ip: Vec<&sh::DeviceAddress> =
            present.iter().filter(|a| a.cidr.address == ip).collect();
        match self.state {
            AddressState::Absent => {
                // With a label, only that alias goes (keepalived's own VIP stays).
                let remove: Vec<Cidr> = same_ip
                    .into_iter()
                    .filter(|a| label.is_none() || a.label == label)
                    .map(|a| a.cidr)
                    .collect();
                if remove.is_empty() {
                    return Ok(Query::ok(format!("{ip} not on {dev}")));
                }
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
                if same_ip
                    .iter()
                    .any(|a| a.cidr.prefix == want.prefix && (label.is_none() || a.label == label))
                {
                    return Ok(Query::ok(format!("{want} on {dev}")));
                }
                let remove: Vec<Cidr> = same_ip.iter().map(|a| a.cidr).collect();
                let summary = if remove.is_empty() {
                    format!(
                        "add {want} to {dev}{}",
                        label
                            .as_ref()
                            .map(|l| format!(" as {l}"))
                            .unwrap_or_default()
                    )
                } else {
                    let old: Vec<String> = remove.iter().map(ToString::to_string).collect();
                    format!("replace {} with {want} on {dev}", old.join(", "))
                };
                Ok(Query::change(
                    Change {
                        dev,
                        remove,
                        add: Some((want, label)),
                    },
                    summary,
                ))
            }
        }
    }

    async fn apply(&self, ctx: &TaskCtx<'_>, change: Change) -> Result<Applied, TaskError> {
        for cidr in &change.remove {
            ctx.run_ok(
                &sh::address_del(&change.dev, &cidr.to_string()),
                &format!("removing {cidr} from {}", change.dev),
            )
            .await?;
        }
        if let Some((cidr, label)) = &change.add {
            ctx.run_ok(
                &sh::address_add(&change.dev, &cidr.to_string(), label.as_deref()),
                &format!("adding {cidr} to {}", change.dev),
            )
            .await?;
            // An address others reach through this card (a manual-mode VIP, NAT's gateway) may
            // have been on another host a moment ago (the command skips cards without ARP).
            if cidr.address.is_ipv4() {
                ctx.run_ok(
                    &sh::address_announce(&change.dev, &cidr.address.to_string()),
                    &format!("announcing {} on {}", cidr.address, change.dev),
                )
                .await?;
            }
        }
        Ok(Applied::changed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_addresses_on_cards_with_neighbours_are_announced() {
        let cmd = sh::address_announce("eth0", "198.18.0.100");
        assert!(
            cmd.contains("arping -q -U -c 1 -I eth0 198.18.0.100"),
            "{cmd}"
        );
        // lo (LOOPBACK) and tunl0 (NOARP) have no neighbours to tell: the kernel's flags decide.
        let lo = sh::address_announce("lo", "198.18.0.100");
        assert!(lo.contains("grep -q -e NOARP -e LOOPBACK"), "{lo}");
    }

    #[test]
    fn literals_are_typed_at_parse_time() {
        let ok: Address = serde_json::from_value(serde_json::json!(
            {"address": "198.18.0.100/32", "dev": "eth0.100", "label": "eth0.100:3"}
        ))
        .unwrap();
        assert!(matches!(ok.address, Tpl::Lit(_)));
        for bad in [
            serde_json::json!({"address": "198.18.0.300/32", "dev": "lo"}),
            serde_json::json!({"address": "198.18.0.1/40", "dev": "lo"}),
            serde_json::json!({"address": "198.18.0.1", "dev": "eth0; reboot"}),
            serde_json::json!({"address": "198.18.0.1", "dev": "lo", "label": "lo:3 x"}),
        ] {
            assert!(
                serde_json::from_value::<Address>(bad.clone()).is_err(),
                "{bad}"
            );
        }
    }
}
