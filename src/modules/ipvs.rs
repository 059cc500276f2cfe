//! `ipvs`: a virtual service and its real servers as desired state. Reads the table with
//! `ipvsadm -S -n` and adds, edits or removes only the difference (scheduler, forwarding
//! method, weights). `state: absent` deletes the service, `state: cleared` empties the table.
//! The table, the rules and their wording are the LVS model's ([`crate::lvs::ipvs`]).

use serde::Deserialize;

use super::{Applied, Boot, Module, Query, TaskCtx, TaskError, command_failed};
use crate::lvs::ipvs::{Rule, Table, plan};
use crate::lvs::{CheckKind, VirtualService};
use crate::templates::Tpl;
use crate::transport::sh;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ipvs {
    /// One virtual service: `{vip, port, protocol, scheduler, forwarding, real_servers:
    /// [{address, port, weight}]}`; other services of the table are left as they are.
    pub service: Option<Tpl<VirtualService>>,
    /// The whole table: these services (the built-in playbooks pass the inventory's,
    /// `{{ lvs.services }}`); a service of the table not listed is deleted.
    pub services: Option<Tpl<Vec<VirtualService>>>,
    #[serde(default)]
    pub state: IpvsState,
    /// Add a missing real server only if it passes the inventory's HTTP health check from this
    /// host (as keepalived would): with keepalived managing the table, a dead server stays out.
    #[serde(default)]
    pub healthy_only: bool,
    /// Also kept for boot (see `lvslab-boot`); `false` leaves it to this run only. A table that
    /// keepalived holds (`healthy_only`) is keepalived's to build at boot: never kept.
    #[serde(default = "super::yes")]
    pub boot: bool,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum IpvsState {
    #[default]
    Present,
    Absent,
    Cleared,
}

/// Read the host's IPVS table; a kernel without IPVS is a clear error.
pub async fn read_table(ctx: &TaskCtx<'_>) -> Result<Table, TaskError> {
    let query = sh::ipvs_save();
    let out = ctx.read_output(&query).await?;
    if !out.success() {
        let err = out.stderr_str();
        if sh::no_ipvs(&err) {
            return Err(TaskError::new(format!(
                "{} has no IPVS in its kernel (ipvsadm: {}); on a lab, use `lvslab lab up --vm`",
                ctx.host.name,
                err.trim()
            )));
        }
        return Err(command_failed(query.line(), &out));
    }
    query
        .parse(&out.stdout_str())
        .map_err(|e| TaskError::new(e.to_string()))
}

impl Ipvs {
    /// The services asked for, and whether they are the whole table (`services:`).
    fn desired(&self, ctx: &TaskCtx<'_>) -> Result<(Vec<VirtualService>, bool), TaskError> {
        match (&self.service, &self.services) {
            (Some(s), None) => Ok((vec![ctx.resolve(s)?], false)),
            (None, Some(list)) => Ok((ctx.resolve(list)?, true)),
            (Some(_), Some(_)) => Err(TaskError::new(
                "ipvs: give `service` (one) or `services` (the whole table), not both",
            )),
            (None, None) => Err(TaskError::new(
                "ipvs: `service` or `services` is required unless state is cleared",
            )),
        }
    }
}

/// Keep the rules that put a real server in service (add it, or raise its weight from 0, where
/// `inhibit_on_failure` leaves a failed one) only when it answers the health check from this
/// host (on the port its service's check asks: a firewall mark's real servers have none).
async fn drop_unhealthy(
    ctx: &TaskCtx<'_>,
    service: &VirtualService,
    current: Option<&crate::lvs::ipvs::Service>,
    rules: Vec<Rule>,
) -> Result<Vec<Rule>, TaskError> {
    let check = ctx
        .inventory
        .lvs
        .as_ref()
        .map(|l| l.health_check.clone())
        .unwrap_or_default();
    let mut kept = Vec::new();
    for rule in rules {
        if let Some(server) = rule.puts_in_service(current) {
            let endpoint = service.check_endpoint(server.endpoint.address);
            let healthy = match check.kind {
                CheckKind::Http => {
                    let code = ctx
                        .read(
                            &sh::http_status(
                                &service.url_of(endpoint, &check.path),
                                check.connect_timeout,
                            ),
                            "the health check",
                        )
                        .await?;
                    code == Some(check.status_code)
                }
                CheckKind::Tcp => {
                    ctx.read(
                        &sh::tcp_opens(endpoint.address, endpoint.port, check.connect_timeout),
                        "the health check",
                    )
                    .await?
                }
                CheckKind::Misc => match check.script_for(endpoint.address, endpoint.port) {
                    Some(command) => {
                        ctx.read(
                            &sh::script_passes(&command, check.connect_timeout),
                            "the health check",
                        )
                        .await?
                    }
                    None => false,
                },
            };
            if !healthy {
                continue;
            }
        }
        kept.push(rule);
    }
    Ok(kept)
}

/// keepalived's sorry server stays while no real server of the inventory is left in service
/// (out of the table, or at weight 0 where `inhibit_on_failure` keeps a failed one): keepalived
/// put it there and takes it out when one is back. With `sorry_server_inhibit` it is always
/// there, at weight 0 until it is needed: keepalived's alone, whatever its weight.
fn keep_sorry(
    service: &VirtualService,
    director: std::net::IpAddr,
    current: Option<&crate::lvs::ipvs::Service>,
    rules: Vec<Rule>,
) -> Vec<Rule> {
    let Some(sorry) = service.sorry_endpoint(director) else {
        return rules;
    };
    if service.on_failure.sorry_server_inhibit {
        return rules
            .into_iter()
            .filter(|r| match r {
                Rule::DeleteServer { endpoint, .. } => *endpoint != sorry,
                Rule::EditServer { server, .. } => server.endpoint != sorry,
                _ => true,
            })
            .collect();
    }
    let deleted = |e: &crate::lvs::Endpoint| {
        rules
            .iter()
            .any(|r| matches!(r, Rule::DeleteServer { endpoint, .. } if endpoint == e))
    };
    let stays = current.is_some_and(|c| {
        c.real_servers
            .iter()
            .any(|s| s.endpoint != sorry && s.weight > 0 && !deleted(&s.endpoint))
    });
    let back = rules.iter().any(|r| r.puts_in_service(current).is_some());
    if stays || back {
        return rules;
    }
    rules
        .into_iter()
        .filter(|r| !matches!(r, Rule::DeleteServer { endpoint, .. } if *endpoint == sorry))
        .collect()
}

/// The rules in words; with `several` services each rule on a real server says whose.
fn summary(rules: &[Rule], several: bool) -> String {
    rules
        .iter()
        .map(|r| match r.key() {
            Some(key)
                if several
                    && !matches!(
                        r,
                        Rule::AddService { .. }
                            | Rule::EditService { .. }
                            | Rule::DeleteService { .. }
                    ) =>
            {
                format!("{key}: {r}")
            }
            _ => r.to_string(),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// How many times `up` changes a table keepalived changes too before it gives up (each after
/// reading the table again).
const BESIDE_KEEPALIVED_TRIES: u32 = 3;

/// The boot entries of IPVS services start so.
const BOOT_PREFIX: &str = "50-ipvs-";

impl Module for Ipvs {
    type Change = Vec<Rule>;

    fn boot(&self, ctx: &TaskCtx<'_>) -> Result<Option<Boot>, TaskError> {
        if self.state == IpvsState::Cleared || self.healthy_only {
            return Ok(Some(Boot::AbsentAll {
                prefix: BOOT_PREFIX.into(),
            }));
        }
        let (services, whole) = self.desired(ctx)?;
        if whole {
            // The whole table in one entry, replacing any other IPVS entry.
            let rules: Vec<Rule> = services
                .iter()
                .flat_map(|s| plan(None, &s.desired()))
                .collect();
            return Ok(Some(if self.boot && self.state == IpvsState::Present {
                Boot::Only {
                    name: format!("{BOOT_PREFIX}table"),
                    line: sh::ipvs_apply(&rules),
                    prefix: BOOT_PREFIX.into(),
                }
            } else {
                Boot::AbsentAll {
                    prefix: BOOT_PREFIX.into(),
                }
            }));
        }
        let want = services[0].desired();
        let name = format!(
            "{BOOT_PREFIX}{}",
            sh::boot_entry_word(&want.key.to_string())
        );
        Ok(Some(if self.boot && self.state == IpvsState::Present {
            Boot::Set {
                name,
                line: sh::ipvs_apply(&plan(None, &want)),
            }
        } else {
            Boot::Absent { name }
        }))
    }

    async fn query(&self, ctx: &TaskCtx<'_>) -> Result<Query<Self::Change>, TaskError> {
        let table = read_table(ctx).await?;
        let rules = match self.state {
            IpvsState::Cleared => {
                if table.services.is_empty() {
                    return Ok(Query::ok("IPVS table empty"));
                }
                vec![Rule::Clear]
            }
            IpvsState::Absent => {
                let (services, _) = self.desired(ctx)?;
                let rules: Vec<Rule> = services
                    .iter()
                    .map(|s| s.key())
                    .filter(|key| table.service(key).is_some())
                    .map(|key| Rule::DeleteService { key })
                    .collect();
                if rules.is_empty() {
                    let keys: Vec<String> = services.iter().map(|s| s.key().to_string()).collect();
                    return Ok(Query::ok(format!("no service {}", keys.join(", "))));
                }
                rules
            }
            IpvsState::Present => {
                let (services, whole) = self.desired(ctx)?;
                let mut rules = Vec::new();
                let mut current_text = String::new();
                let mut want_text = String::new();
                if whole {
                    for s in &table.services {
                        if !services.iter().any(|w| w.key() == s.key) {
                            rules.push(Rule::DeleteService { key: s.key });
                            current_text.push_str(&s.text());
                        }
                    }
                }
                let mut fine = Vec::new();
                for service in &services {
                    let want = service.desired();
                    let current = table.service(&want.key);
                    let mut planned = plan(current, &want);
                    if self.healthy_only {
                        planned = drop_unhealthy(ctx, service, current, planned).await?;
                        planned = keep_sorry(service, ctx.host.address, current, planned);
                    }
                    if planned.is_empty() {
                        fine.push(format!(
                            "{} {} with {} real server(s)",
                            want.key,
                            want.scheduling(),
                            want.real_servers.len()
                        ));
                    } else {
                        current_text.push_str(&current.map(|c| c.text()).unwrap_or_default());
                        want_text.push_str(&want.text());
                    }
                    rules.extend(planned);
                }
                if rules.is_empty() {
                    return Ok(Query::ok(fine.join("; ")));
                }
                let diff = similar::TextDiff::from_lines(&current_text, &want_text)
                    .unified_diff()
                    .header("ipvs (host)", "ipvs (desired)")
                    .to_string();
                return Ok(Query::Change {
                    summary: summary(&rules, services.len() > 1),
                    change: rules,
                    diff: Some(diff),
                });
            }
        };
        Ok(Query::change(rules.clone(), summary(&rules, false)))
    }

    async fn apply(&self, ctx: &TaskCtx<'_>, rules: Self::Change) -> Result<Applied, TaskError> {
        // keepalived changes this table too, as its checks decide: a real server whose check
        // passed between the query and the change may be added by it meanwhile ("Destination
        // already exists" failed `up` in the VM, on both directors at once).
        if !self.healthy_only {
            ctx.run_ok(&sh::ipvs_apply(&rules), "ipvsadm").await?;
            return Ok(Applied::changed());
        }
        // keepalived may also remove a server meanwhile (the sorry server, when the real
        // servers are back: "No such destination"): the table is read again and what is left
        // is done, a few times.
        let mut rules = rules;
        for attempt in 1..=BESIDE_KEEPALIVED_TRIES {
            match ctx
                .run_ok(&sh::ipvs_apply_beside_keepalived(&rules), "ipvsadm")
                .await
            {
                Ok(_) => break,
                Err(e) if attempt == BESIDE_KEEPALIVED_TRIES => return Err(e),
                Err(_) => match self.query(ctx).await? {
                    Query::Change { change, .. } => rules = change,
                    Query::Ok { .. } | Query::Skip { .. } => break,
                },
            }
        }
        Ok(Applied::changed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_literal_service_is_typed_at_parse_time() {
        let ok: Ipvs = serde_json::from_value(serde_json::json!({
            "service": {"vip": "10.0.0.100", "vip_prefix": 24, "port": 80, "scheduler": "wrr",
                        "real_servers": [{"address": "10.0.0.12", "port": 80, "weight": 0}]}
        }))
        .unwrap();
        assert!(matches!(ok.service, Some(Tpl::Lit(_))));
        for bad in [
            serde_json::json!({"service": {"vip": "10.0.0.300", "vip_prefix": 24, "port": 80}}),
            serde_json::json!({"service": {"vip": "10.0.0.1", "vip_prefix": 24, "port": 80, "scheduler": "fastest"}}),
            serde_json::json!({"service": {"vip": "10.0.0.1", "vip_prefix": 24, "port": 80, "real_servers": [{"address": "x", "port": 80, "weight": 1}]}}),
        ] {
            assert!(
                serde_json::from_value::<Ipvs>(bad.clone()).is_err(),
                "{bad}"
            );
        }
        assert!(
            serde_json::from_value::<Ipvs>(serde_json::json!({"service": "{{ lvs.service }}"}))
                .is_ok()
        );
    }

    #[test]
    fn rules_become_one_ipvsadm_call_each() {
        let fresh = plan(
            None,
            &VirtualService {
                vip: "198.18.0.100".parse().unwrap(),
                vip_prefix: 24,
                port: 80,
                protocol: Default::default(),
                fwmark: None,
                ports: vec![80],
                scheduler: Default::default(),
                scheduler_flags: Vec::new(),
                forwarding: Default::default(),
                persistence: None,
                sorry_server: None,
                tls: false,
                on_failure: Default::default(),
                real_servers: vec![crate::lvs::Member {
                    name: None,
                    address: "198.18.0.12".parse().unwrap(),
                    port: 80,
                    weight: 1,
                }],
            }
            .desired(),
        );
        assert_eq!(
            sh::ipvs_apply(&fresh),
            "ipvsadm -A -t 198.18.0.100:80 -s rr && ipvsadm -a -t 198.18.0.100:80 -r 198.18.0.12:80 -g -w 1"
        );
    }
}
