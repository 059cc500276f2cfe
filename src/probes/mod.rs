//! Verification: probes that prove the lab works, each reported pass/fail with its evidence.

pub mod drill;

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::cli::{Mode, VerifyArgs};
use crate::commands::Setup;
use crate::fleet::Connected;
use crate::inventory::{Host, Inventory, Lvs};
use crate::modules::IpvsTable;
use crate::report::Event;
use crate::transport::local::Local;
use crate::transport::{ExecOutput, Session, commands};

/// A probe's verdict.
pub struct Verdict {
    pub probe: String,
    pub pass: bool,
    pub evidence: String,
}

/// The lab's hosts, connected.
pub struct Lab<'a> {
    pub lvs: &'a Lvs,
    pub directors: Vec<(&'a Host, Arc<Connected>)>,
    pub real_servers: Vec<(&'a Host, Arc<Connected>)>,
    /// Where HTTP and ARP probes are sent from: a `clients` host, else this machine.
    pub client: (String, Session, Option<&'a Host>),
    pub unreachable: Vec<String>,
}

impl<'a> Lab<'a> {
    pub async fn connect(setup: &'a Setup) -> miette::Result<Lab<'a>> {
        let inv: &Inventory = &setup.inventory;
        let lvs = inv
            .lvs
            .as_ref()
            .ok_or_else(|| miette::miette!("the inventory has no lvs: section"))?;
        let mut unreachable = Vec::new();
        let mut connect_group = async |group: &str| {
            let hosts = inv.group_members(group).unwrap_or_default();
            let conns =
                futures::future::join_all(hosts.iter().map(|h| setup.fleet.connect(h))).await;
            let mut out = Vec::new();
            for (h, c) in hosts.into_iter().zip(conns) {
                match c {
                    Ok(c) => out.push((h, c)),
                    Err(e) => {
                        setup.reporter.emit(Event::Unreachable {
                            host: h.name.clone(),
                            error: e.to_string(),
                        });
                        unreachable.push(h.name.clone());
                    }
                }
            }
            out
        };
        let directors = connect_group("directors").await;
        let real_servers = connect_group("real_servers").await;
        let clients = connect_group("clients").await;
        let client = match clients.into_iter().next() {
            Some((h, c)) => (h.name.clone(), c.session.clone(), Some(h)),
            None => (
                "this machine".to_string(),
                Session::new(Arc::new(Local), false, std::time::Duration::from_secs(120)),
                None,
            ),
        };
        Ok(Lab {
            lvs,
            directors,
            real_servers,
            client,
            unreachable,
        })
    }

    pub fn vip(&self) -> String {
        self.lvs.vip.to_string()
    }

    pub fn url(&self) -> String {
        let vip = self.vip();
        if vip.contains(':') {
            format!("http://[{vip}]:{}/", self.lvs.port)
        } else {
            format!("http://{vip}:{}/", self.lvs.port)
        }
    }
}

async fn run(session: &Session, cmd: &str) -> Result<ExecOutput, String> {
    session.run(cmd).await.map_err(|e| e.to_string())
}

fn emit(setup: &Setup, v: &Verdict) {
    setup.reporter.emit(Event::Probe {
        probe: v.probe.clone(),
        pass: v.pass,
        evidence: v.evidence.clone(),
    });
}

/// Who holds the VIP on a non-lo device, per director: `(name, device)`.
pub async fn vip_holders(lab: &Lab<'_>) -> Vec<(String, String)> {
    let cmd = commands::address_holders(&lab.vip());
    let mut holders = Vec::new();
    for (h, c) in lab.directors.iter().chain(lab.real_servers.iter()) {
        if let Ok(out) = run(&c.session, &cmd).await {
            for line in out.stdout_str().lines() {
                let dev = line.split_whitespace().next().unwrap_or("").to_string();
                if dev != "lo" && !dev.is_empty() {
                    holders.push((h.name.clone(), dev));
                }
            }
        }
    }
    holders
}

/// VRRP state per director: MASTER, BACKUP or STOPPED.
pub async fn vrrp_states(lab: &Lab<'_>) -> Vec<(String, String)> {
    let cmd = commands::vrrp_state(&lab.vip());
    let mut out = Vec::new();
    for (h, c) in &lab.directors {
        let state = run(&c.session, &cmd)
            .await
            .map(|o| o.stdout_str().trim().to_string())
            .unwrap_or_else(|e| format!("UNKNOWN ({e})"));
        out.push((h.name.clone(), state));
    }
    out
}

/// Send `count` requests to the VIP from the client; tally who answered (first word of the page).
pub async fn http_tally(lab: &Lab<'_>, count: u32) -> Result<(BTreeMap<String, u32>, u32), String> {
    let out = run(&lab.client.1, &commands::http_probe(&lab.url(), count, 2)).await?;
    let mut tally = BTreeMap::new();
    let mut failed = 0;
    for line in out.stdout_str().lines() {
        let mut words = line.split_whitespace();
        let code = words.next().unwrap_or("000");
        let who = words.next().unwrap_or("?").to_string();
        if code == "200" {
            *tally.entry(who).or_insert(0) += 1;
        } else {
            failed += 1;
        }
    }
    Ok((tally, failed))
}

fn expected_share(lab: &Lab<'_>, count: u32) -> BTreeMap<String, f64> {
    let (weights, weighted) = weights_of(lab);
    shares(&weights, weighted, count)
}

/// Each real server's weight, and whether the scheduler follows weights.
fn weights_of(lab: &Lab<'_>) -> (Vec<(String, u32)>, bool) {
    let weights = lab
        .real_servers
        .iter()
        .map(|(h, _)| (h.name.clone(), h.weight.unwrap_or(1)))
        .collect();
    let weighted = matches!(
        lab.lvs.scheduler,
        crate::inventory::Scheduler::Wrr | crate::inventory::Scheduler::Wlc
    );
    (weights, weighted)
}

/// The requests each real server should answer out of `count`.
fn shares(weights: &[(String, u32)], weighted: bool, count: u32) -> BTreeMap<String, f64> {
    let total: u32 = weights.iter().map(|(_, w)| *w).sum::<u32>().max(1);
    // Weight 0 takes a real server out of every scheduler's choice (quiesced).
    let active = weights.iter().filter(|(_, w)| *w > 0).count().max(1);
    weights
        .iter()
        .map(|(n, w)| {
            let share = if *w == 0 {
                0.0
            } else if weighted {
                f64::from(*w) / f64::from(total)
            } else {
                1.0 / active as f64
            };
            (n.clone(), share * f64::from(count))
        })
        .collect()
}

/// How many requests the HTTP probe sends: what was asked, but at least enough that every real
/// server's share is two requests (with 50 real servers, 20 requests could not reach them all).
fn request_count(weights: &[(String, u32)], weighted: bool, asked: u32) -> u32 {
    let smallest = shares(weights, weighted, 1)
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
fn natural_key(name: &str) -> (&str, u64) {
    let digits = name.len() - name.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    let (text, number) = name.split_at(name.len() - digits);
    (text, number.parse().unwrap_or(0))
}

pub async fn verify(setup: &Setup, args: &VerifyArgs, mode: Option<Mode>) -> miette::Result<i32> {
    let lab = Lab::connect(setup).await?;
    let mut verdicts: Vec<Verdict> = Vec::new();
    let mut push = |v: Verdict| {
        emit(setup, &v);
        verdicts.push(v);
    };
    let vip = lab.vip();
    let mut states = vrrp_states(&lab).await;
    let keepalived = match mode {
        Some(m) => m == Mode::Keepalived,
        None => states.iter().any(|(_, s)| s == "MASTER" || s == "BACKUP"),
    };
    if keepalived {
        // A freshly started pair elects its MASTER after ~3 adverts: wait for that, not longer.
        let advert = lab.lvs.vrrp.as_ref().map_or(1, |v| v.advert_int);
        let deadline =
            std::time::Instant::now() + std::time::Duration::from_secs(u64::from(advert) * 4 + 2);
        // The MASTER to expect: the running director with the highest priority (preemption).
        let settled = |states: &[(String, String)]| {
            let best = lab
                .directors
                .iter()
                .filter(|(h, _)| states.iter().any(|(n, s)| n == &h.name && s != "STOPPED"))
                .max_by_key(|(h, _)| h.vrrp.as_ref().map(|v| v.priority));
            best.is_some_and(|(h, _)| states.iter().any(|(n, s)| n == &h.name && s == "MASTER"))
        };
        while !settled(&states) && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            states = vrrp_states(&lab).await;
        }
    }
    setup.reporter.emit(Event::Info {
        text: format!(
            "\nverify ({} mode): VIP {vip}, from {}",
            if keepalived { "keepalived" } else { "manual" },
            lab.client.0
        ),
    });

    // 1. The VIP answers, and every real server takes its share.
    let (weights, weighted) = weights_of(&lab);
    let count = request_count(&weights, weighted, args.requests);
    match http_tally(&lab, count).await {
        Err(e) => push(Verdict {
            probe: "http".into(),
            pass: false,
            evidence: format!("could not send requests from {}: {e}", lab.client.0),
        }),
        Ok((tally, failed)) => {
            let expected = expected_share(&lab, count);
            let mut answered: Vec<(&String, &u32)> = tally.iter().collect();
            answered.sort_by_key(|(n, _)| natural_key(n));
            let seen: Vec<String> = answered.iter().map(|(n, c)| format!("{n}={c}")).collect();
            let missing: Vec<&String> = expected
                .iter()
                .filter(|(n, share)| **share > 0.0 && !tally.contains_key(*n))
                .map(|(n, _)| n)
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
                "{count} GET {} from {}: {} ({} failed)",
                lab.url(),
                lab.client.0,
                seen.join(" "),
                failed
            );
            if !missing.is_empty() {
                evidence.push_str(&format!(
                    "; never answered: {}",
                    missing
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            if !off.is_empty() {
                evidence.push_str(&format!(
                    "; distribution off for {}: {}",
                    lab.lvs.scheduler.as_str(),
                    off.join(", ")
                ));
            }
            push(Verdict {
                probe: "http via VIP".into(),
                pass,
                evidence,
            });
        }
    }

    // 2. The director's IPVS table, and its connection table showing the probe's requests.
    let holders = vip_holders(&lab).await;
    let desired: Vec<(String, String, u32)> = lab
        .real_servers
        .iter()
        .map(|(h, _)| {
            (
                crate::modules::endpoint_of(&h.address.to_string(), lab.lvs.port),
                lab.lvs.forwarding.ipvsadm_flag().to_string(),
                h.weight.unwrap_or(1),
            )
        })
        .collect();
    for (h, c) in &lab.directors {
        let active = holders.iter().any(|(n, _)| n == &h.name);
        if !active && !keepalived {
            continue;
        }
        if !c.facts.has_ipvs() {
            push(Verdict {
                probe: format!("ipvs table on {}", h.name),
                pass: false,
                evidence: "this kernel has no IPVS (run the lab with `lvslab lab up --vm`)".into(),
            });
            continue;
        }
        let table = match run(&c.session, commands::ipvs_save())
            .await
            .map(|o| IpvsTable::parse(&o.stdout_str()))
        {
            Ok(Ok(t)) => t,
            Ok(Err(e)) | Err(e) => {
                push(Verdict {
                    probe: format!("ipvs table on {}", h.name),
                    pass: false,
                    evidence: e,
                });
                continue;
            }
        };
        let proto = if lab.lvs.protocol == crate::inventory::Protocol::Udp {
            "-u"
        } else {
            "-t"
        };
        let service = crate::modules::endpoint_of(&vip, lab.lvs.port);
        let (pass, evidence) = match table.service(proto, &service) {
            None => (
                false,
                format!(
                    "no virtual service {service} (table has {} service(s))",
                    table.services.len()
                ),
            ),
            Some(s) => {
                let mut have: Vec<(String, String, u32)> = s
                    .real_servers
                    .iter()
                    .map(|r| (r.address.clone(), r.forwarding.clone(), r.weight))
                    .collect();
                let mut want = desired.clone();
                have.sort();
                want.sort();
                let sched_ok = s.scheduler == lab.lvs.scheduler.as_str();
                let text = have
                    .iter()
                    .map(|(a, f, w)| format!("{a} {f} w{w}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                (
                    sched_ok && have == want,
                    format!("{service} {} -> {text}", s.scheduler)
                        + if sched_ok {
                            ""
                        } else {
                            " (scheduler differs from the inventory)"
                        }
                        + if have == want {
                            ""
                        } else {
                            " (real servers differ from the inventory)"
                        },
                )
            }
        };
        push(Verdict {
            probe: format!("ipvs table on {}", h.name),
            pass,
            evidence,
        });
        if active {
            let conns = run(&c.session, commands::ipvs_connections())
                .await
                .map(|o| o.stdout_str())
                .unwrap_or_default();
            let client_ip = lab.client.2.map(|h| h.address.to_string());
            let lines: Vec<&str> = conns
                .lines()
                .filter(|l| {
                    l.contains(&vip) && client_ip.as_ref().is_none_or(|ip| l.contains(ip.as_str()))
                })
                .collect();
            push(Verdict {
                probe: format!("ipvs connections on {}", h.name),
                pass: !lines.is_empty(),
                evidence: format!(
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
            });
        }
    }

    // 3. Each real server: ARP settings, VIP on lo as /32, its own page on its own address.
    for (h, c) in &lab.real_servers {
        let iface = h.interface.clone().unwrap_or_else(|| "eth0".into());
        let cmd = format!(
            "for k in arp_ignore arp_announce; do printf '%s ' $(cat /proc/sys/net/ipv4/conf/all/$k) $(cat /proc/sys/net/ipv4/conf/{}/$k); done; echo; {}",
            commands::quote(&iface),
            commands::address_holders(&vip)
        );
        let out = run(&c.session, &cmd).await;
        let (pass, evidence) = match out {
            Err(e) => (false, e),
            Ok(o) => {
                let text = o.stdout_str();
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
                let on_lo = lines.any(|l| l.starts_with("lo ") && l.ends_with("/32"));
                (
                    ignore == 1 && announce == 2 && on_lo,
                    format!(
                        "arp_ignore={ignore} arp_announce={announce} (max of all and {iface}); VIP /32 on lo: {}",
                        if on_lo { "yes" } else { "NO" }
                    ),
                )
            }
        };
        push(Verdict {
            probe: format!("real server {}", h.name),
            pass,
            evidence,
        });
        let page = run(
            &lab.client.1,
            &commands::http_probe(&format!("http://{}:{}/", h.address, lab.lvs.port), 1, 2),
        )
        .await;
        let (pass, evidence) = match page {
            Err(e) => (false, e),
            Ok(o) => {
                let line = o.stdout_str().trim().to_string();
                (
                    line.starts_with("200 ")
                        && line.split_whitespace().nth(1) == Some(h.name.as_str()),
                    format!("GET http://{}:{}/ -> {line}", h.address, lab.lvs.port),
                )
            }
        };
        push(Verdict {
            probe: format!("web server {}", h.name),
            pass,
            evidence,
        });
    }

    // 4. Exactly one holder of the VIP, and ARP agrees.
    let director_names: Vec<&str> = lab.directors.iter().map(|(h, _)| h.name.as_str()).collect();
    let non_director: Vec<&(String, String)> = holders
        .iter()
        .filter(|(n, _)| !director_names.contains(&n.as_str()))
        .collect();
    let holder_text = holders
        .iter()
        .map(|(n, d)| format!("{n} ({d})"))
        .collect::<Vec<_>>()
        .join(", ");
    push(Verdict {
        probe: "one VIP holder".into(),
        pass: holders.len() == 1 && non_director.is_empty(),
        evidence: match holders.len() {
            0 => format!("no host holds {vip}"),
            1 => format!("{vip} on {holder_text}"),
            _ => format!(
                "{vip} is on {holder_text}: a keepalived killed before it dropped the VIP leaves it behind (the seed's known flaw); `lvslab up` removes the stale copy"
            ),
        },
    });
    if let Some(client) = lab.client.2 {
        let iface = client.interface.clone().unwrap_or_else(|| "eth0".into());
        let macs = run(&lab.client.1, &commands::arp_probe(&iface, &vip, 2))
            .await
            .map(|o| o.stdout_str())
            .unwrap_or_default();
        let macs: Vec<&str> = macs.lines().filter(|l| !l.is_empty()).collect();
        let mut owners = Vec::new();
        for (h, c) in &lab.directors {
            let iface = h.interface.clone().unwrap_or_else(|| "eth0".into());
            if let Ok(o) = run(
                &c.session,
                &format!("cat /sys/class/net/{}/address", commands::quote(&iface)),
            )
            .await
            {
                let mac = o.stdout_str().trim().to_lowercase();
                if macs.contains(&mac.as_str()) {
                    owners.push(format!("{} ({mac})", h.name));
                }
            }
        }
        push(Verdict {
            probe: "ARP for the VIP".into(),
            pass: macs.len() == 1,
            evidence: format!(
                "arping {vip} from {}: {} MAC(s){}",
                client.name,
                macs.len(),
                if owners.is_empty() {
                    format!(" {}", macs.join(" "))
                } else {
                    format!(": {}", owners.join(", "))
                }
            ),
        });
    }

    // 5. VRRP: one MASTER (the highest priority), the others BACKUP; read again now, since the
    // probes above took a while and the election may have moved on.
    if keepalived {
        let states = vrrp_states(&lab).await;
        let masters: Vec<&(String, String)> =
            states.iter().filter(|(_, s)| s == "MASTER").collect();
        let best = lab
            .directors
            .iter()
            .filter_map(|(h, _)| h.vrrp.as_ref().map(|v| (v.priority, h.name.clone())))
            .max();
        let text = states
            .iter()
            .map(|(n, s)| {
                let prio = lab
                    .directors
                    .iter()
                    .find(|(h, _)| &h.name == n)
                    .and_then(|(h, _)| h.vrrp.as_ref())
                    .map(|v| v.priority)
                    .unwrap_or(0);
                format!("{n} {s} (priority {prio})")
            })
            .collect::<Vec<_>>()
            .join(", ");
        let all_up = states.iter().all(|(_, s)| s == "MASTER" || s == "BACKUP");
        let right_master =
            masters.len() == 1 && best.as_ref().is_some_and(|(_, n)| n == &masters[0].0);
        push(Verdict {
            probe: "VRRP".into(),
            pass: all_up && right_master,
            evidence: text,
        });
    }

    let failed = verdicts.iter().filter(|v| !v.pass).count();
    setup.reporter.emit(Event::Info {
        text: format!(
            "verify: {} passed, {} failed",
            verdicts.len() - failed,
            failed
        ),
    });
    setup.reporter.finish();
    Ok(verdict_code(&lab, failed))
}

/// 4 when a host was unreachable, 2 when a probe failed, else 0.
fn verdict_code(lab: &Lab<'_>, failed: usize) -> i32 {
    if !lab.unreachable.is_empty() {
        crate::exit::UNREACHABLE
    } else if failed > 0 {
        crate::exit::FAILED
    } else {
        crate::exit::OK
    }
}

/// After `down`: nothing of the lab is left.
pub async fn verify_clean(setup: &Setup) -> miette::Result<i32> {
    let lab = Lab::connect(setup).await?;
    let vip = lab.vip();
    let mut failed = 0;
    let mut push = |v: Verdict| {
        if !v.pass {
            failed += 1;
        }
        emit(setup, &v);
    };
    setup.reporter.emit(Event::Info {
        text: "\ncheck that nothing is left:".into(),
    });
    let holders: Vec<String> = {
        let mut all = Vec::new();
        let cmd = commands::address_holders(&vip);
        for (h, c) in lab.directors.iter().chain(lab.real_servers.iter()) {
            if let Ok(o) = run(&c.session, &cmd).await {
                for l in o.stdout_str().lines().filter(|l| !l.is_empty()) {
                    all.push(format!("{} {l}", h.name));
                }
            }
        }
        all
    };
    push(Verdict {
        probe: "VIP nowhere".into(),
        pass: holders.is_empty(),
        evidence: if holders.is_empty() {
            format!("no host holds {vip}")
        } else {
            holders.join(", ")
        },
    });
    for (h, c) in &lab.directors {
        let ka = run(&c.session, &commands::process_running("keepalived"))
            .await
            .map(|o| o.success())
            .unwrap_or(true);
        let table = if c.facts.has_ipvs() {
            run(&c.session, commands::ipvs_save())
                .await
                .map(|o| o.stdout_str().trim().to_string())
                .unwrap_or_else(|e| e)
        } else {
            String::new()
        };
        push(Verdict {
            probe: format!("director {}", h.name),
            pass: !ka && table.is_empty(),
            evidence: format!(
                "keepalived {}; IPVS table {}",
                if ka { "RUNNING" } else { "stopped" },
                if table.is_empty() {
                    "empty".to_string()
                } else {
                    table.replace('\n', "; ")
                }
            ),
        });
    }
    for (h, c) in &lab.real_servers {
        let cmd = format!(
            "ls {}/sysctl-orig 2>/dev/null | wc -l; [ -e {} ] && echo file || echo nofile",
            commands::STATE_DIR,
            commands::SYSCTL_FILE
        );
        let text = run(&c.session, &cmd)
            .await
            .map(|o| o.stdout_str())
            .unwrap_or_default();
        let mut l = text.lines();
        let saved = l.next().unwrap_or("?").trim().to_string();
        let file = l.next().unwrap_or("?") == "file";
        push(Verdict {
            probe: format!("real server {}", h.name),
            pass: saved == "0" && !file,
            evidence: format!(
                "sysctls restored: {}; {}: {}",
                if saved == "0" { "yes" } else { "NO" },
                commands::SYSCTL_FILE,
                if file { "still there" } else { "gone" }
            ),
        });
    }
    setup.reporter.finish();
    Ok(verdict_code(&lab, failed))
}

/// A compact view: VIP holder, VRRP states, the IPVS table with counters.
pub async fn status(setup: &Setup) -> miette::Result<i32> {
    let lab = Lab::connect(setup).await?;
    let holders = vip_holders(&lab).await;
    let mut text = format!(
        "VIP {}: {}\n",
        lab.vip(),
        if holders.is_empty() {
            "held by no host".to_string()
        } else {
            holders
                .iter()
                .map(|(n, d)| format!("{n} ({d})"))
                .collect::<Vec<_>>()
                .join(", ")
        }
    );
    for (n, s) in vrrp_states(&lab).await {
        text.push_str(&format!("  {n:<10} keepalived {s}\n"));
    }
    for (h, c) in &lab.directors {
        if !c.facts.has_ipvs() {
            text.push_str(&format!("{}: no IPVS in this kernel\n", h.name));
            continue;
        }
        let t = run(&c.session, commands::ipvs_list_stats())
            .await
            .map(|o| o.stdout_str())
            .unwrap_or_else(|e| e);
        text.push_str(&format!("{}:\n{}", h.name, t));
    }
    setup.reporter.emit(Event::Info { text });
    setup.reporter.finish();
    Ok(if lab.unreachable.is_empty() {
        crate::exit::OK
    } else {
        crate::exit::UNREACHABLE
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn servers(weights: &[u32]) -> Vec<(String, u32)> {
        weights
            .iter()
            .enumerate()
            .map(|(i, w)| (format!("node{}", i + 2), *w))
            .collect()
    }

    #[test]
    fn every_real_server_gets_two_requests_at_least() {
        assert_eq!(request_count(&servers(&[1, 1]), false, 20), 20);
        assert_eq!(request_count(&servers(&[1; 50]), false, 20), 100);
        // wrr 1:3 — the light one needs 2 of 8.
        assert_eq!(request_count(&servers(&[1, 3]), true, 4), 8);
        // A quiesced real server (weight 0) is expected to get nothing.
        let shares = shares(&servers(&[1, 0, 1]), false, 10);
        assert_eq!(shares["node3"], 0.0);
        assert_eq!(shares["node2"], 5.0);
        assert_eq!(request_count(&servers(&[0]), false, 0), 1);
    }

    #[test]
    fn names_sort_by_their_number() {
        let mut names = vec!["node10", "node2", "client", "node3"];
        names.sort_by_key(|n| natural_key(n));
        assert_eq!(names, ["client", "node2", "node3", "node10"]);
    }
}
