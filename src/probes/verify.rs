//! `verify`: the probes that prove the lab works, one function each, every one returning a
//! [`Verdict`] with what it saw.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::hosts::{DirectorHost, LvsHosts, RealServerHost, run};
use super::{Findings, Verdict, path};
use crate::cancel::Cancel;
use crate::lvs::ipvs::Table;
use crate::lvs::{Forwarding, Lvs, Management};
use crate::report::{Event, Reporter};
use crate::transport::sh;

/// What `verify` is asked for.
#[derive(Debug, Clone, Copy)]
pub struct VerifyOptions {
    /// HTTP requests through the VIP (raised so every real server can show its share).
    pub requests: u32,
    /// Who should own the VIP; `None`: judged from whether keepalived runs.
    pub management: Option<Management>,
}

/// Every probe, in order, each shown as it is decided.
pub async fn verify(
    hosts: &LvsHosts<'_>,
    options: VerifyOptions,
    reporter: &Reporter,
    cancel: &Cancel,
) -> Findings {
    let mut f = Findings {
        unreachable: hosts.unreachable.clone(),
        ..Findings::default()
    };
    let Some(()) = cancel.guard(all(hosts, options, reporter, &mut f)).await else {
        f.interrupted = true;
        return f;
    };
    reporter.emit(Event::Info {
        text: format!(
            "verify: {} passed, {} failed",
            f.verdicts.len() - f.failed(),
            f.failed()
        ),
    });
    f
}

async fn all(hosts: &LvsHosts<'_>, options: VerifyOptions, reporter: &Reporter, f: &mut Findings) {
    let lvs = hosts.lvs;
    let keepalived = match options.management {
        Some(m) => m == Management::Keepalived,
        None => hosts
            .vrrp_states()
            .await
            .iter()
            .any(|(_, s)| s == "MASTER" || s == "BACKUP"),
    };
    if keepalived {
        wait_for_election(hosts).await;
    }
    reporter.emit(Event::Info {
        text: format!(
            "\nverify ({} mode): VIP {}, from {}",
            if keepalived { "keepalived" } else { "manual" },
            hosts.vip(),
            hosts.client.name
        ),
    });

    // The requests carry a mark, so each real server's log shows whom it saw as the client.
    let mark = probe_mark();
    let url = format!("{}?{mark}", hosts.url());
    let active = hosts
        .active_director()
        .await
        .filter(|d| d.conn.facts.has_ipvs());
    let before = match &active {
        Some(d) => path::read(hosts, d).await.ok(),
        None => None,
    };
    let (verdict, sent) = http_via_vip(hosts, &url, options.requests).await;
    f.push(reporter, verdict);
    if let (Some(d), Some(before)) = (&active, &before) {
        let after = path::read_after(hosts, d, before, sent).await;
        let v = match after {
            Ok(after) => {
                let client = hosts.client.host.map(|h| h.address);
                path::verdict(hosts, d, before, &after, sent, &mark, client).await
            }
            Err(e) => Verdict::new("path", false, e),
        };
        f.push(reporter, v);
    }
    let holders = hosts.vip_holders().await;
    for d in &hosts.directors {
        let active = holders.iter().any(|(n, _)| n == &d.director.name);
        if !active && !keepalived {
            continue;
        }
        f.push(reporter, ipvs_table(lvs, d).await);
        if active && d.conn.facts.has_ipvs() {
            f.push(reporter, ipvs_connections(hosts, d).await);
        }
    }
    for r in &hosts.real_servers {
        f.push(reporter, real_server_settings(hosts, r).await);
        f.push(reporter, web_server(hosts, r).await);
    }
    f.push(reporter, one_vip_holder(hosts, &holders));
    if lvs.forwarding() == Forwarding::Nat
        && let Some(v) = nat_gateway(hosts, &holders).await
    {
        f.push(reporter, v);
    }
    if let Some(v) = arp_for_vip(hosts).await {
        f.push(reporter, v);
    }
    if keepalived {
        f.push(reporter, vrrp_roles(hosts).await);
    }
}

/// A freshly started pair elects its MASTER after ~3 adverts: wait for that, not longer.
pub async fn wait_for_election(hosts: &LvsHosts<'_>) {
    let advert = hosts.lvs.vrrp.as_ref().map_or(1, |v| v.advert_int);
    let deadline = Instant::now() + Duration::from_secs(u64::from(advert) * 4 + 2);
    let mut states = hosts.vrrp_states().await;
    // The MASTER to expect: the running director with the highest priority (preemption).
    let settled = |states: &[(String, String)]| {
        let best = hosts
            .directors
            .iter()
            .filter(|d| {
                states
                    .iter()
                    .any(|(n, s)| n == &d.director.name && s != "STOPPED")
            })
            .max_by_key(|d| d.director.vrrp.as_ref().map(|v| v.priority));
        // No keepalived running: nothing to wait for.
        best.is_none_or(|d| {
            states
                .iter()
                .any(|(n, s)| n == &d.director.name && s == "MASTER")
        })
    };
    while !settled(&states) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
        states = hosts.vrrp_states().await;
    }
}

/// The requests each real server should answer out of `count`: by weight for wrr and wlc,
/// evenly otherwise; a weight of 0 takes a real server out of every scheduler's choice.
pub fn shares(lvs: &Lvs, count: u32) -> BTreeMap<String, f64> {
    let weighted = lvs.service().scheduler.follows_weights();
    let total: u32 = lvs
        .real_servers
        .iter()
        .map(|r| u32::from(r.weight))
        .sum::<u32>()
        .max(1);
    let active = lvs
        .real_servers
        .iter()
        .filter(|r| r.weight > 0)
        .count()
        .max(1);
    lvs.real_servers
        .iter()
        .map(|r| {
            let share = if r.weight == 0 {
                0.0
            } else if weighted {
                f64::from(r.weight) / f64::from(total)
            } else {
                1.0 / active as f64
            };
            (r.name.clone(), share * f64::from(count))
        })
        .collect()
}

/// How many requests the HTTP probe sends: what was asked, but at least enough that every real
/// server's share is two requests (with 50 real servers, 20 requests could not reach them all).
pub fn request_count(lvs: &Lvs, asked: u32) -> u32 {
    let smallest = shares(lvs, 1)
        .into_values()
        .filter(|share| *share > 0.0)
        .fold(f64::INFINITY, f64::min);
    let needed = if smallest.is_finite() {
        (2.0 / smallest).ceil().min(10_000.0) as u32
    } else {
        1
    };
    asked.max(needed).max(1)
}

/// `node2` before `node10`: names compared by their text, then by their trailing number.
pub fn natural_key(name: &str) -> (&str, u64) {
    let digits = name.len() - name.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    let (text, number) = name.split_at(name.len() - digits);
    (text, number.parse().unwrap_or(0))
}

/// A mark no other request carries: `lvslab-probe-<pid>-<nanoseconds>`.
fn probe_mark() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("lvslab-probe-{}-{nanos}", std::process::id())
}

/// The VIP answers, and every real server takes its share: the verdict and how many requests
/// were sent (to `url`, the service's URL with the probe's mark).
pub async fn http_via_vip(hosts: &LvsHosts<'_>, url: &str, asked: u32) -> (Verdict, u32) {
    let lvs = hosts.lvs;
    let count = request_count(lvs, asked);
    let (tally, failed) = match hosts.http_tally(url, count).await {
        Ok(t) => t,
        Err(e) => {
            let v = Verdict::new(
                "http",
                false,
                format!("could not send requests from {}: {e}", hosts.client.name),
            );
            return (v, count);
        }
    };
    let expected = shares(lvs, count);
    let mut answered: Vec<(&String, &u32)> = tally.iter().collect();
    answered.sort_by_key(|(n, _)| natural_key(n));
    let seen: Vec<String> = answered.iter().map(|(n, c)| format!("{n}={c}")).collect();
    let missing: Vec<&str> = expected
        .iter()
        .filter(|(n, share)| **share > 0.0 && !tally.contains_key(*n))
        .map(|(n, _)| n.as_str())
        .collect();
    let off: Vec<String> = expected
        .iter()
        .filter(|(n, e)| {
            let got = f64::from(*tally.get(*n).unwrap_or(&0));
            (got - **e).abs() > (1.0f64).max(**e * 0.25)
        })
        .map(|(n, e)| format!("{n} expected ~{e:.0}"))
        .collect();
    let pass = failed == 0 && missing.is_empty() && off.is_empty();
    let mut evidence = format!(
        "{count} GET {} from {}: {} ({failed} failed)",
        hosts.url(),
        hosts.client.name,
        seen.join(" "),
    );
    if !missing.is_empty() {
        evidence.push_str(&format!("; never answered: {}", missing.join(", ")));
    }
    if !off.is_empty() {
        evidence.push_str(&format!(
            "; distribution off for {}: {}",
            lvs.service().scheduler,
            off.join(", ")
        ));
    }
    (Verdict::new("http via VIP", pass, evidence), count)
}

/// 2. A director's IPVS table against the inventory's virtual service.
pub async fn ipvs_table(lvs: &Lvs, d: &DirectorHost<'_>) -> Verdict {
    let probe = format!("ipvs table on {}", d.director.name);
    if !d.conn.facts.has_ipvs() {
        return Verdict::new(
            probe,
            false,
            "this kernel has no IPVS (run the lab with `lvslab lab up --vm`)",
        );
    }
    let table = match run(&d.conn.session, sh::ipvs_save())
        .await
        .and_then(|o| Table::parse(&o.stdout_str()))
    {
        Ok(t) => t,
        Err(e) => return Verdict::new(probe, false, e),
    };
    let want = lvs.service().desired();
    let Some(have) = table.service(&want.key) else {
        return Verdict::new(
            probe,
            false,
            format!(
                "no virtual service {} (table has {} service(s))",
                want.key,
                table.services.len()
            ),
        );
    };
    let sched_ok = have.scheduler == want.scheduler;
    let servers_ok = have.sorted_servers() == want.sorted_servers();
    let text = have
        .sorted_servers()
        .iter()
        .map(|s| {
            format!(
                "{} {} w{}",
                s.endpoint,
                s.forwarding.ipvsadm_flag(),
                s.weight
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    let mut evidence = format!("{} {} -> {text}", want.key.endpoint_text(), have.scheduler);
    if !sched_ok {
        evidence.push_str(" (scheduler differs from the inventory)");
    }
    if !servers_ok {
        evidence.push_str(" (real servers differ from the inventory)");
    }
    Verdict::new(probe, sched_ok && servers_ok, evidence)
}

/// 2b. The active director's connection table shows the probe's requests (the seed's
/// `ipvsadm -lnc`).
pub async fn ipvs_connections(hosts: &LvsHosts<'_>, d: &DirectorHost<'_>) -> Verdict {
    let vip = hosts.vip();
    let conns = run(&d.conn.session, sh::ipvs_connections())
        .await
        .map(|o| o.stdout_str())
        .unwrap_or_default();
    let client_ip = hosts.client.host.map(|h| h.address.to_string());
    let lines: Vec<&str> = conns
        .lines()
        .filter(|l| l.contains(&vip) && client_ip.as_ref().is_none_or(|ip| l.contains(ip.as_str())))
        .collect();
    Verdict::new(
        format!("ipvs connections on {}", d.director.name),
        !lines.is_empty(),
        format!(
            "{} entries for the probe's requests{}",
            lines.len(),
            lines
                .first()
                .map(|l| format!(
                    ", e.g. {}",
                    l.split_whitespace().collect::<Vec<_>>().join(" ")
                ))
                .unwrap_or_default()
        ),
    )
}

/// A real server's settings for the forwarding method, as the kernel has them: DR: ARP
/// settings and the VIP /32 on lo; TUN: ARP settings, the VIP /32 on an up tunl0, rp_filter 0;
/// NAT: no VIP, the default route through the gateway.
pub async fn real_server_settings(hosts: &LvsHosts<'_>, r: &RealServerHost<'_>) -> Verdict {
    let iface = &r.real_server.interface;
    let probe = format!("real server {}", r.real_server.name);
    let out = match run(&r.conn.session, &sh::real_server_state(iface, &hosts.vip())).await {
        Ok(o) => o,
        Err(e) => return Verdict::new(probe, false, e),
    };
    let text = out.stdout_str();
    let mut lines = text.lines();
    let nums: Vec<u32> = lines
        .next()
        .unwrap_or("")
        .split_whitespace()
        .filter_map(|n| n.parse().ok())
        .collect();
    let (ignore, announce) = match nums.as_slice() {
        [a, b, c, d] => (*a.max(b), *c.max(d)),
        _ => (0, 0),
    };
    let rp: Vec<String> = lines
        .next()
        .unwrap_or("")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let route = lines
        .next()
        .unwrap_or("")
        .trim_start_matches("route ")
        .trim_start_matches("default ")
        .trim()
        .to_string();
    let tunl0_up = lines.next() == Some("tunl0 up");
    let holders: Vec<&str> = lines.collect();
    let on = |dev: &str| {
        holders
            .iter()
            .any(|l| l.starts_with(&format!("{dev} ")) && l.ends_with("/32"))
    };
    let arp_ok = ignore == 1 && announce == 2;
    let arp = format!("arp_ignore={ignore} arp_announce={announce} (max of all and {iface})");
    let yes = |b: bool| if b { "yes" } else { "NO" };
    let (pass, evidence) = match hosts.lvs.forwarding() {
        Forwarding::Dr => (
            arp_ok && on("lo"),
            format!("{arp}; VIP /32 on lo: {}", yes(on("lo"))),
        ),
        Forwarding::Tun => {
            let rp_ok = rp.iter().all(|v| v == "0");
            (
                arp_ok && on("tunl0") && tunl0_up && rp_ok,
                format!(
                    "{arp}; tunl0 up: {}; VIP /32 on tunl0: {}; rp_filter all={} tunl0={}",
                    yes(tunl0_up),
                    yes(on("tunl0")),
                    rp.first().map_or("?", String::as_str),
                    rp.get(1).map_or("?", String::as_str)
                ),
            )
        }
        Forwarding::Nat => {
            let gateway = hosts
                .lvs
                .nat
                .as_ref()
                .map(|n| n.gateway.to_string())
                .unwrap_or_default();
            let via = route
                .split_whitespace()
                .collect::<Vec<_>>()
                .windows(2)
                .any(|w| w == ["via", gateway.as_str()]);
            let no_vip = holders.is_empty();
            (
                via && no_vip,
                format!(
                    "default route {route} (through the gateway {gateway}: {}); no VIP of its own: {}",
                    yes(via),
                    yes(no_vip)
                ),
            )
        }
    };
    Verdict::new(probe, pass, evidence)
}

/// NAT: the real servers' gateway is on exactly one director, the one with the VIP.
pub async fn nat_gateway(
    hosts: &LvsHosts<'_>,
    vip_holders: &[(String, String)],
) -> Option<Verdict> {
    let gateway = hosts.lvs.nat.as_ref()?.gateway.to_string();
    let cmd = sh::address_holders(&gateway);
    let mut holders = Vec::new();
    for d in &hosts.directors {
        if let Ok(o) = run(&d.conn.session, &cmd).await
            && !o.stdout_str().trim().is_empty()
        {
            holders.push(d.director.name.clone());
        }
    }
    let with_vip: Vec<&str> = vip_holders.iter().map(|(n, _)| n.as_str()).collect();
    let pass = holders.len() == 1 && with_vip == [holders[0].as_str()];
    Some(Verdict::new(
        "NAT gateway",
        pass,
        format!(
            "{gateway} on {}; the VIP on {}",
            if holders.is_empty() {
                "no director".to_string()
            } else {
                holders.join(", ")
            },
            if with_vip.is_empty() {
                "no host".to_string()
            } else {
                with_vip.join(", ")
            }
        ),
    ))
}

/// 3b. A real server's own page on its own address names it.
///
/// Asked from a director, as keepalived's health check asks (a NAT lab's client cannot reach
/// the real servers' network), else from the client.
pub async fn web_server(hosts: &LvsHosts<'_>, r: &RealServerHost<'_>) -> Verdict {
    let url =
        crate::lvs::Endpoint::new(r.real_server.address, hosts.lvs.service().port).http_url("/");
    let probe = format!("web server {}", r.real_server.name);
    let (from, session) = match hosts.directors.first() {
        Some(d) => (d.director.name.as_str(), &d.conn.session),
        None => (hosts.client.name.as_str(), &hosts.client.session),
    };
    match run(session, &sh::http_probe(&url, 1, 2)).await {
        Err(e) => Verdict::new(probe, false, e),
        Ok(o) => {
            let line = o.stdout_str().trim().to_string();
            Verdict::new(
                probe,
                line.starts_with("200 ")
                    && line.split_whitespace().nth(1) == Some(r.real_server.name.as_str()),
                format!("GET {url} from {from} -> {line}"),
            )
        }
    }
}

/// 4. Exactly one director holds the VIP.
pub fn one_vip_holder(hosts: &LvsHosts<'_>, holders: &[(String, String)]) -> Verdict {
    let vip = hosts.vip();
    let non_director = holders.iter().any(|(n, _)| hosts.lvs.director(n).is_none());
    let holder_text = holders
        .iter()
        .map(|(n, d)| format!("{n} ({d})"))
        .collect::<Vec<_>>()
        .join(", ");
    Verdict::new(
        "one VIP holder",
        holders.len() == 1 && !non_director,
        match holders.len() {
            0 => format!("no host holds {vip}"),
            1 => format!("{vip} on {holder_text}"),
            _ => format!(
                "{vip} is on {holder_text}: a keepalived killed before it dropped the VIP leaves it behind (the seed's known flaw); `lvslab up` removes the stale copy"
            ),
        },
    )
}

/// 4b. ARP from the client: exactly one MAC answers for the VIP. Needs a client host.
pub async fn arp_for_vip(hosts: &LvsHosts<'_>) -> Option<Verdict> {
    let client = hosts.client.host?;
    let vip = hosts.vip();
    let iface = client.interface.clone().unwrap_or_else(|| "eth0".into());
    let macs = run(&hosts.client.session, &sh::arp_probe(&iface, &vip, 2))
        .await
        .map(|o| o.stdout_str())
        .unwrap_or_default();
    let macs: Vec<&str> = macs.lines().filter(|l| !l.is_empty()).collect();
    let mut owners = Vec::new();
    for d in &hosts.directors {
        if let Ok(o) = run(&d.conn.session, &sh::mac_address(&d.director.interface)).await {
            let mac = o.stdout_str().trim().to_lowercase();
            if macs.contains(&mac.as_str()) {
                owners.push(format!("{} ({mac})", d.director.name));
            }
        }
    }
    Some(Verdict::new(
        "ARP for the VIP",
        macs.len() == 1,
        format!(
            "arping {vip} from {}: {} MAC(s){}",
            client.name,
            macs.len(),
            if owners.is_empty() {
                format!(" {}", macs.join(" "))
            } else {
                format!(": {}", owners.join(", "))
            }
        ),
    ))
}

/// VRRP: one MASTER (the highest priority), the others BACKUP (the states are read again now:
/// the probes before took a while and the election may have moved on).
pub async fn vrrp_roles(hosts: &LvsHosts<'_>) -> Verdict {
    let states = hosts.vrrp_states().await;
    let masters: Vec<&(String, String)> = states.iter().filter(|(_, s)| s == "MASTER").collect();
    let best = hosts.lvs.expected_master().map(|d| d.name.clone());
    let text = states
        .iter()
        .map(|(n, s)| {
            let prio = hosts
                .lvs
                .director(n)
                .and_then(|d| d.vrrp.as_ref())
                .map_or(0, |v| v.priority);
            format!("{n} {s} (priority {prio})")
        })
        .collect::<Vec<_>>()
        .join(", ");
    let all_up = states.iter().all(|(_, s)| s == "MASTER" || s == "BACKUP");
    let right_master = masters.len() == 1 && best.as_ref() == Some(&masters[0].0);
    Verdict::new("VRRP", all_up && right_master, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lvs(weights: &[u16], scheduler: &str) -> Lvs {
        let mut yaml = format!(
            "lvs: {{ vip: 10.0.0.100, scheduler: {scheduler} }}\nhosts:\n  d1: {{ address: 10.0.0.11, interface: eth0 }}\n"
        );
        let mut names = Vec::new();
        for (i, w) in weights.iter().enumerate() {
            yaml.push_str(&format!(
                "  node{}: {{ address: 10.0.1.{}, interface: eth0, weight: {w} }}\n",
                i + 2,
                i + 2
            ));
            names.push(format!("node{}", i + 2));
        }
        yaml.push_str(&format!(
            "groups:\n  directors: {{ hosts: [d1] }}\n  real_servers: {{ hosts: [{}] }}\n",
            names.join(", ")
        ));
        let yaml = yaml.replace("10.0.1.", "10.0.0.1");
        crate::inventory::load_str(std::path::Path::new("i.yml"), yaml)
            .unwrap()
            .0
            .lvs
            .unwrap()
    }

    #[test]
    fn every_real_server_gets_two_requests_at_least() {
        assert_eq!(request_count(&lvs(&[1, 1], "rr"), 20), 20);
        assert_eq!(request_count(&lvs(&[1; 50], "rr"), 20), 100);
        // wrr 1:3 — the light one needs 2 of 8.
        assert_eq!(request_count(&lvs(&[1, 3], "wrr"), 4), 8);
        // A quiesced real server (weight 0) is expected to get nothing.
        let shares = shares(&lvs(&[1, 0, 1], "rr"), 10);
        assert_eq!(shares["node3"], 0.0);
        assert_eq!(shares["node2"], 5.0);
        assert_eq!(request_count(&lvs(&[0], "rr"), 0), 1);
    }

    #[test]
    fn names_sort_by_their_number() {
        let mut names = vec!["node10", "node2", "client", "node3"];
        names.sort_by_key(|n| natural_key(n));
        assert_eq!(names, ["client", "node2", "node3", "node10"]);
    }
}
