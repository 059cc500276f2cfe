//! `route`: a route (the default route of a NAT real server) present, or back to what it was.
//! The route found before lvslab's first change is kept on the host, so `state: restored` puts
//! it back (`down`, or a switch away from NAT).

use std::net::IpAddr;

use serde::Deserialize;

use super::{Applied, Boot, Module, Query, TaskCtx, TaskError};
use crate::lvs::Cidr;
use crate::lvs::names::Interface;
use crate::templates::Tpl;
use crate::transport::sh::{self, RouteVia, SavedRoute};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// `default`, or a network (`198.18.0.0/24`).
    pub to: Tpl<Destination>,
    /// The gateway; required with `state: present`.
    pub via: Option<Tpl<IpAddr>>,
    /// The interface, when the gateway alone does not say.
    pub dev: Option<Tpl<Interface>>,
    #[serde(default)]
    pub state: RouteState,
    /// Also kept for boot (see `lvslab-boot`); `false` leaves it to this run only.
    #[serde(default = "super::yes")]
    pub boot: bool,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RouteState {
    #[default]
    Present,
    /// Back to the route that was there before lvslab changed it (none, if there was none).
    Restored,
}

/// Where a route goes: `default` or a network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination(pub String);

impl<'de> Deserialize<'de> for Destination {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s == "default" {
            return Ok(Destination(s));
        }
        let cidr: Cidr = s.parse().map_err(serde::de::Error::custom)?;
        Ok(Destination(cidr.to_string()))
    }
}

/// `via X dev Y`, for messages and for putting it back.
fn describe(route: &RouteVia) -> String {
    let mut parts = Vec::new();
    if let Some(v) = &route.via {
        parts.push(format!("via {v}"));
    }
    if let Some(d) = &route.dev {
        parts.push(format!("dev {d}"));
    }
    parts.join(" ")
}

pub enum Change {
    Set {
        to: String,
        via: IpAddr,
        dev: Option<String>,
    },
    Restore {
        to: String,
    },
}

impl Module for Route {
    type Change = Change;

    fn boot(&self, ctx: &TaskCtx<'_>) -> Result<Option<Boot>, TaskError> {
        let to = ctx.resolve(&self.to)?.0;
        let name = format!("40-route-{}", sh::boot_entry_word(&to));
        let via = ctx.resolve_opt(&self.via)?;
        let dev = ctx.resolve_opt(&self.dev)?.map(|d| d.0);
        Ok(Some(match (self.boot, self.state, via) {
            (true, RouteState::Present, Some(via)) => Boot::Set {
                name,
                line: sh::boot_route(&to, &via.to_string(), dev.as_deref()),
            },
            _ => Boot::Absent { name },
        }))
    }

    async fn query(&self, ctx: &TaskCtx<'_>) -> Result<Query<Change>, TaskError> {
        let to = ctx.resolve(&self.to)?.0;
        let found = ctx
            .read_ok(&sh::route_query(&to), "reading the route")
            .await?;
        let current = found.now;
        let now = current
            .as_ref()
            .map_or_else(|| "none".to_string(), describe);
        match self.state {
            RouteState::Present => {
                let Some(via) = ctx.resolve_opt(&self.via)? else {
                    return Err(TaskError::new(
                        "route: `via` is required with state: present",
                    ));
                };
                let dev = ctx.resolve_opt(&self.dev)?.map(|d| d.0);
                let want = RouteVia {
                    via: Some(via.to_string()),
                    dev: dev.clone(),
                };
                let same = current
                    .as_ref()
                    .is_some_and(|c| c.via == want.via && (dev.is_none() || c.dev == want.dev));
                if same {
                    return Ok(Query::ok(format!("{to} {now}")));
                }
                Ok(Query::Change {
                    summary: format!("{to}: {now} -> {}", describe(&want)),
                    diff: Some(format!("-{to} {now}\n+{to} {}", describe(&want))),
                    change: Change::Set { to, via, dev },
                })
            }
            RouteState::Restored => {
                let back = match found.saved {
                    SavedRoute::NotSaved => {
                        return Ok(Query::ok(format!("{to} {now} (not set by lvslab)")));
                    }
                    SavedRoute::NoRoute => "none".to_string(),
                    SavedRoute::Route(route) => describe(&route),
                };
                Ok(Query::Change {
                    summary: format!("{to}: {now} -> {back} (restored)"),
                    diff: Some(format!("-{to} {now}\n+{to} {back}")),
                    change: Change::Restore { to },
                })
            }
        }
    }

    async fn apply(&self, ctx: &TaskCtx<'_>, change: Change) -> Result<Applied, TaskError> {
        let command = match &change {
            Change::Set { to, via, dev } => sh::route_set(to, &via.to_string(), dev.as_deref()),
            Change::Restore { to } => sh::route_restore(to),
        };
        ctx.run_ok(&command, "setting the route").await?;
        Ok(Applied::changed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_parse_and_destinations_are_checked() {
        let f = RouteVia {
            via: Some("198.18.1.254".into()),
            dev: Some("eth0".into()),
        };
        assert_eq!(describe(&f), "via 198.18.1.254 dev eth0");
        let ok: Route =
            serde_json::from_value(serde_json::json!({"to": "default", "via": "198.18.1.254"}))
                .unwrap();
        assert!(matches!(ok.to, Tpl::Lit(Destination(ref d)) if d == "default"));
        for bad in [
            serde_json::json!({"to": "default; reboot", "via": "198.18.1.254"}),
            serde_json::json!({"to": "default", "via": "198.18.1.300"}),
        ] {
            assert!(
                serde_json::from_value::<Route>(bad.clone()).is_err(),
                "{bad}"
            );
        }
    }
}
