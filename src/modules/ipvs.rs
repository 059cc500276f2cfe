//! `ipvs`: a virtual service and its real servers as desired state. Reads the table with
//! `ipvsadm -S -n` and adds, edits or removes only the difference (scheduler, forwarding
//! method, weights). `state: absent` deletes the service, `state: cleared` empties the table.

use serde::{Deserialize, Serialize};

use super::{Applied, Module, Query, TaskCtx, TaskError, command_failed};
use crate::playbook::template::Tpl;
use crate::transport::commands;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ipvs {
    pub vip: Option<Tpl<String>>,
    pub port: Option<Tpl<u16>>,
    #[serde(default = "tcp")]
    pub protocol: Tpl<String>,
    #[serde(default = "rr")]
    pub scheduler: Tpl<String>,
    /// dr (`-g`, default), nat (`-m`) or tun (`-i`), for real servers that do not say.
    #[serde(default = "dr")]
    pub forwarding: Tpl<String>,
    /// `[{address, port, weight, forwarding}]`; port defaults to the service's, weight to 1.
    #[serde(default)]
    pub real_servers: Tpl<Vec<RealServerArg>>,
    #[serde(default)]
    pub state: IpvsState,
    /// Add a missing real server only if it passes the inventory's HTTP health check from this
    /// host (as keepalived would): with keepalived managing the table, a dead server stays out.
    #[serde(default)]
    pub healthy_only: bool,
}

fn tcp() -> Tpl<String> {
    Tpl::lit("tcp".into())
}
fn rr() -> Tpl<String> {
    Tpl::lit("rr".into())
}
fn dr() -> Tpl<String> {
    Tpl::lit("dr".into())
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RealServerArg {
    /// The inventory host name (informational; `lvs.real_servers` carries it).
    pub name: Option<String>,
    pub address: String,
    pub port: Option<u16>,
    pub weight: Option<u32>,
    pub forwarding: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum IpvsState {
    #[default]
    Present,
    Absent,
    Cleared,
}

/// The IPVS table as `ipvsadm -S -n` shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct IpvsTable {
    pub services: Vec<VirtualService>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VirtualService {
    /// `-t` or `-u`
    pub protocol: String,
    /// `address:port` (IPv6 in brackets)
    pub address: String,
    pub scheduler: String,
    /// Options after the scheduler we do not manage (`-p 300`, ...), kept as written.
    pub extra: Vec<String>,
    pub real_servers: Vec<RealServer>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RealServer {
    pub address: String,
    /// `-g`, `-m` or `-i`
    pub forwarding: String,
    pub weight: u32,
}

impl IpvsTable {
    pub fn parse(text: &str) -> Result<IpvsTable, String> {
        let mut table = IpvsTable::default();
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let words: Vec<&str> = line.split_whitespace().collect();
            let arg = |flag: &str| {
                words
                    .iter()
                    .position(|w| *w == flag)
                    .and_then(|i| words.get(i + 1))
                    .map(|s| s.to_string())
            };
            let proto = words
                .iter()
                .find(|w| ["-t", "-u", "-f"].contains(*w))
                .map(|s| s.to_string());
            let (Some(proto), Some(addr)) = (proto.clone(), proto.as_deref().and_then(arg)) else {
                return Err(format!("unexpected line from ipvsadm -S: {line}"));
            };
            match words.first() {
                Some(&"-A") => {
                    let mut extra = Vec::new();
                    let mut i = 3;
                    while i < words.len() {
                        if words[i] == "-s" {
                            i += 2;
                            continue;
                        }
                        extra.push(words[i].to_string());
                        i += 1;
                    }
                    table.services.push(VirtualService {
                        protocol: proto,
                        address: addr,
                        scheduler: arg("-s").unwrap_or_else(|| "wlc".into()),
                        extra,
                        real_servers: Vec::new(),
                    })
                }
                Some(&"-a") => {
                    let rs = RealServer {
                        address: arg("-r").ok_or_else(|| format!("no -r in: {line}"))?,
                        forwarding: ["-g", "-m", "-i"]
                            .iter()
                            .find(|f| words.contains(f))
                            .unwrap_or(&"-g")
                            .to_string(),
                        weight: arg("-w").and_then(|w| w.parse().ok()).unwrap_or(1),
                    };
                    let Some(svc) = table
                        .services
                        .iter_mut()
                        .find(|s| s.protocol == proto && s.address == addr)
                    else {
                        return Err(format!("real server before its service: {line}"));
                    };
                    svc.real_servers.push(rs);
                }
                _ => return Err(format!("unexpected line from ipvsadm -S: {line}")),
            }
        }
        Ok(table)
    }

    pub fn service(&self, protocol: &str, address: &str) -> Option<&VirtualService> {
        self.services
            .iter()
            .find(|s| s.protocol == protocol && s.address == address)
    }
}

/// `address:port`, IPv6 in brackets, as ipvsadm prints it.
pub fn endpoint(address: &str, port: u16) -> String {
    if address.contains(':') {
        format!("[{address}]:{port}")
    } else {
        format!("{address}:{port}")
    }
}

pub fn forwarding_flag(name: &str) -> Result<&'static str, TaskError> {
    match name.to_ascii_lowercase().as_str() {
        "dr" | "g" | "-g" | "gatewaying" | "direct" => Ok("-g"),
        "nat" | "m" | "-m" | "masquerading" => Ok("-m"),
        "tun" | "i" | "-i" | "ipip" | "tunneling" => Ok("-i"),
        _ => Err(TaskError::new(format!(
            "forwarding `{name}`: use dr, nat or tun"
        ))),
    }
}

const SCHEDULERS: &[&str] = &[
    "rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh",
];

/// The rule changes (ipvsadm arguments) that turn `current` into `desired` for one service.
pub fn plan(current: Option<&VirtualService>, desired: &VirtualService) -> Vec<Vec<String>> {
    let p = desired.protocol.clone();
    let a = desired.address.clone();
    let mut rules = Vec::new();
    let add_rs = |rs: &RealServer, op: &str| {
        vec![
            op.into(),
            p.clone(),
            a.clone(),
            "-r".into(),
            rs.address.clone(),
            rs.forwarding.clone(),
            "-w".into(),
            rs.weight.to_string(),
        ]
    };
    match current {
        None => {
            rules.push(vec![
                "-A".into(),
                p.clone(),
                a.clone(),
                "-s".into(),
                desired.scheduler.clone(),
            ]);
            for rs in &desired.real_servers {
                rules.push(add_rs(rs, "-a"));
            }
        }
        Some(cur) => {
            if cur.scheduler != desired.scheduler {
                let mut r = vec![
                    "-E".into(),
                    p.clone(),
                    a.clone(),
                    "-s".into(),
                    desired.scheduler.clone(),
                ];
                r.extend(cur.extra.iter().cloned());
                rules.push(r);
            }
            for rs in &cur.real_servers {
                if !desired.real_servers.iter().any(|d| d.address == rs.address) {
                    rules.push(vec![
                        "-d".into(),
                        p.clone(),
                        a.clone(),
                        "-r".into(),
                        rs.address.clone(),
                    ]);
                }
            }
            for rs in &desired.real_servers {
                match cur.real_servers.iter().find(|c| c.address == rs.address) {
                    None => rules.push(add_rs(rs, "-a")),
                    Some(c) if c != rs => rules.push(add_rs(rs, "-e")),
                    Some(_) => {}
                }
            }
        }
    }
    rules
}

/// Explain a rule change in words.
fn describe(rule: &[String]) -> String {
    let get = |f: &str| {
        rule.iter()
            .position(|w| w == f)
            .and_then(|i| rule.get(i + 1))
            .cloned()
            .unwrap_or_default()
    };
    let fwd = |r: &[String]| match r
        .iter()
        .find(|w| ["-g", "-m", "-i"].contains(&w.as_str()))
        .map(String::as_str)
    {
        Some("-m") => "nat",
        Some("-i") => "tun",
        _ => "dr",
    };
    match rule.first().map(String::as_str) {
        Some("-A") => format!("add service {} ({})", rule[2], get("-s")),
        Some("-E") => format!("scheduler of {} -> {}", rule[2], get("-s")),
        Some("-a") => format!(
            "add real server {} ({}, weight {})",
            get("-r"),
            fwd(rule),
            get("-w")
        ),
        Some("-e") => format!(
            "edit real server {} ({}, weight {})",
            get("-r"),
            fwd(rule),
            get("-w")
        ),
        Some("-d") => format!("remove real server {}", get("-r")),
        Some("-D") => format!(
            "delete service {}",
            rule.get(2).cloned().unwrap_or_default()
        ),
        Some("-C") => "clear the IPVS table".into(),
        _ => rule.join(" "),
    }
}

/// Read the host's IPVS table; a kernel without IPVS is a clear error.
pub async fn read_table(ctx: &TaskCtx<'_>) -> Result<IpvsTable, TaskError> {
    let out = ctx.run(commands::ipvs_save()).await?;
    if !out.success() {
        let err = out.stderr_str();
        if err.contains("Protocol not available") || err.contains("Can't initialize ipvs") {
            return Err(TaskError::new(format!(
                "{} has no IPVS in its kernel (ipvsadm: {}); on a lab, use `lvslab lab up --vm`",
                ctx.host.name,
                err.trim()
            )));
        }
        return Err(command_failed("ipvsadm -S -n", &out));
    }
    IpvsTable::parse(&out.stdout_str()).map_err(TaskError::new)
}

impl Ipvs {
    fn desired(&self, ctx: &TaskCtx<'_>) -> Result<VirtualService, TaskError> {
        let (Some(vip), Some(port)) = (ctx.resolve_opt(&self.vip)?, ctx.resolve_opt(&self.port)?)
        else {
            return Err(TaskError::new(
                "ipvs: `vip` and `port` are required unless state is cleared",
            ));
        };
        let vip_ip: std::net::IpAddr = vip
            .parse()
            .map_err(|_| TaskError::new(format!("ipvs: vip `{vip}` is not an IP address")))?;
        let protocol = match ctx.resolve(&self.protocol)?.to_ascii_lowercase().as_str() {
            "tcp" => "-t",
            "udp" => "-u",
            p => {
                return Err(TaskError::new(format!(
                    "ipvs: protocol `{p}`: use tcp or udp"
                )));
            }
        };
        let scheduler = ctx.resolve(&self.scheduler)?;
        if !SCHEDULERS.contains(&scheduler.as_str()) {
            return Err(TaskError::new(format!(
                "ipvs: scheduler `{scheduler}`: use one of {}",
                SCHEDULERS.join(", ")
            )));
        }
        let default_fwd = forwarding_flag(&ctx.resolve(&self.forwarding)?)?;
        let mut real_servers = Vec::new();
        for rs in ctx.resolve(&self.real_servers)? {
            let ip: std::net::IpAddr = rs.address.parse().map_err(|_| {
                TaskError::new(format!(
                    "ipvs: real server `{}` is not an IP address",
                    rs.address
                ))
            })?;
            real_servers.push(RealServer {
                address: endpoint(&ip.to_string(), rs.port.unwrap_or(port)),
                forwarding: match &rs.forwarding {
                    Some(f) => forwarding_flag(f)?.to_string(),
                    None => default_fwd.to_string(),
                },
                weight: rs.weight.unwrap_or(1),
            });
        }
        Ok(VirtualService {
            protocol: protocol.into(),
            address: endpoint(&vip_ip.to_string(), port),
            scheduler,
            extra: Vec::new(),
            real_servers,
        })
    }
}

/// Keep `-a` rules only for real servers that answer the health check from this host.
async fn drop_unhealthy(
    ctx: &TaskCtx<'_>,
    rules: Vec<Vec<String>>,
) -> Result<Vec<Vec<String>>, TaskError> {
    let check = ctx
        .inventory
        .lvs
        .as_ref()
        .map(|l| l.health_check.clone())
        .unwrap_or_default();
    let mut kept = Vec::new();
    for rule in rules {
        if rule.first().map(String::as_str) == Some("-a") {
            let rs = rule
                .iter()
                .position(|w| w == "-r")
                .and_then(|i| rule.get(i + 1))
                .cloned()
                .unwrap_or_default();
            let url = format!("http://{rs}{}", check.path);
            let out = ctx
                .run(&commands::http_status(&url, check.connect_timeout))
                .await?;
            if out.stdout_str().trim() != check.status_code.to_string() {
                continue;
            }
        }
        kept.push(rule);
    }
    Ok(kept)
}

fn table_text(svc: Option<&VirtualService>) -> String {
    let Some(s) = svc else { return String::new() };
    let mut out = format!("{} {} {}\n", s.protocol, s.address, s.scheduler);
    for rs in &s.real_servers {
        out.push_str(&format!(
            "  -> {} {} w{}\n",
            rs.address, rs.forwarding, rs.weight
        ));
    }
    out
}

impl Module for Ipvs {
    type Change = Vec<Vec<String>>;

    async fn query(&self, ctx: &TaskCtx<'_>) -> Result<Query<Self::Change>, TaskError> {
        let table = read_table(ctx).await?;
        let rules = match self.state {
            IpvsState::Cleared => {
                if table.services.is_empty() {
                    return Ok(Query::ok("IPVS table empty"));
                }
                vec![vec!["-C".to_string()]]
            }
            IpvsState::Absent => {
                let want = self.desired(ctx)?;
                match table.service(&want.protocol, &want.address) {
                    None => return Ok(Query::ok(format!("no service {}", want.address))),
                    Some(s) => vec![vec!["-D".into(), s.protocol.clone(), s.address.clone()]],
                }
            }
            IpvsState::Present => {
                let want = self.desired(ctx)?;
                let current = table.service(&want.protocol, &want.address);
                let mut rules = plan(current, &want);
                if self.healthy_only {
                    rules = drop_unhealthy(ctx, rules).await?;
                }
                if rules.is_empty() {
                    return Ok(Query::ok(format!(
                        "{} {} with {} real server(s)",
                        want.address,
                        want.scheduler,
                        want.real_servers.len()
                    )));
                }
                let diff =
                    similar::TextDiff::from_lines(table_text(current), table_text(Some(&want)))
                        .unified_diff()
                        .header("ipvs (host)", "ipvs (desired)")
                        .to_string();
                let summary = rules
                    .iter()
                    .map(|r| describe(r))
                    .collect::<Vec<_>>()
                    .join("; ");
                return Ok(Query::Change {
                    change: rules,
                    summary,
                    diff: Some(diff),
                });
            }
        };
        let summary = rules
            .iter()
            .map(|r| describe(r))
            .collect::<Vec<_>>()
            .join("; ");
        Ok(Query::change(rules, summary))
    }

    async fn apply(&self, ctx: &TaskCtx<'_>, rules: Self::Change) -> Result<Applied, TaskError> {
        ctx.run_ok(&commands::ipvs_apply(&rules), "ipvsadm").await?;
        Ok(Applied::changed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAVED: &str = "-A -t 198.18.0.100:80 -s rr\n-a -t 198.18.0.100:80 -r 198.18.0.12:80 -g -w 1\n-a -t 198.18.0.100:80 -r 198.18.0.13:80 -g -w 1\n";

    fn rs(a: &str, w: u32) -> RealServer {
        RealServer {
            address: a.into(),
            forwarding: "-g".into(),
            weight: w,
        }
    }

    fn want(sched: &str, servers: Vec<RealServer>) -> VirtualService {
        VirtualService {
            protocol: "-t".into(),
            address: "198.18.0.100:80".into(),
            scheduler: sched.into(),
            extra: vec![],
            real_servers: servers,
        }
    }

    #[test]
    fn parses_ipvsadm_save() {
        let t = IpvsTable::parse(SAVED).unwrap();
        assert_eq!(t.services.len(), 1);
        assert_eq!(t.services[0].real_servers[1], rs("198.18.0.13:80", 1));
        let p = IpvsTable::parse("-A -t 1.2.3.4:80 -s wrr -p 300\n").unwrap();
        assert_eq!(p.services[0].extra, vec!["-p", "300"]);
        assert!(IpvsTable::parse("garbage\n").is_err());
    }

    #[test]
    fn plans_only_the_difference() {
        let t = IpvsTable::parse(SAVED).unwrap();
        let cur = t.service("-t", "198.18.0.100:80");
        assert!(
            plan(
                cur,
                &want("rr", vec![rs("198.18.0.12:80", 1), rs("198.18.0.13:80", 1)])
            )
            .is_empty()
        );
        // scheduler changed, one removed, one added, one re-weighted
        let rules = plan(
            cur,
            &want(
                "wrr",
                vec![rs("198.18.0.13:80", 3), rs("198.18.0.15:80", 1)],
            ),
        );
        let words: Vec<String> = rules.iter().map(|r| r[0].clone()).collect();
        assert_eq!(words, vec!["-E", "-d", "-e", "-a"]);
        assert_eq!(describe(&rules[1]), "remove real server 198.18.0.12:80");
        // nothing there yet
        let fresh = plan(None, &want("rr", vec![rs("198.18.0.12:80", 1)]));
        assert_eq!(fresh[0], vec!["-A", "-t", "198.18.0.100:80", "-s", "rr"]);
        assert_eq!(
            commands::ipvs_apply(&fresh),
            "ipvsadm -A -t 198.18.0.100:80 -s rr && ipvsadm -a -t 198.18.0.100:80 -r 198.18.0.12:80 -g -w 1"
        );
    }
}
