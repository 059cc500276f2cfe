//! `verify`: the probes that prove the lab works, one function each, every one returning a
//! [`Verdict`] with what it saw.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use futures::future::{BoxFuture, FutureExt};
use futures::stream::StreamExt;

use super::{Findings, Verdict, path};
use crate::cancel::Cancel;
use crate::live::{
    DirectorHost, LvsHosts, Needs, Reading, RealServerHost, read, wait_for_election,
};
use crate::lvs::ipvs::Connection;
use crate::lvs::names::{LOOPBACK, TUNNEL};
use crate::lvs::{DirectorState, Forwarding, Lvs, Management, Spread, VirtualService};
use crate::report::{Event, Reporter};
use crate::transport::sh::{self, Answer};

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

/// What verify's probes run: curl and arping on the client; on the directors ip and awk (who
/// holds the VIP), pgrep (keepalived), curl (each real server's page), ipvsadm where the kernel
/// has IPVS; ip and awk on the real servers.
fn needs(hosts: &LvsHosts<'_>) -> Needs {
    use crate::programs::{ARPING, AWK, CURL, IP, IPVSADM, PGREP};
    let mut directors = vec![IP, AWK, PGREP, CURL];
    if hosts.directors.iter().any(|d| d.conn.facts.has_ipvs()) {
        directors.push(IPVSADM);
    }
    Needs {
        client: if hosts.client.host.is_some() {
            vec![CURL, ARPING]
        } else {
            vec![CURL]
        },
        directors,
        real_servers: vec![IP, AWK],
    }
}

async fn all(hosts: &LvsHosts<'_>, options: VerifyOptions, reporter: &Reporter, f: &mut Findings) {
    let lvs = hosts.lvs;
    // A program missing on a host would read as a broken lab: say so instead of probing.
    if let Err(why) = hosts.require(&needs(hosts)) {
        f.push(reporter, Verdict::new("programs", false, why));
        return;
    }
    // Without a director nothing of the load balancer can be known: say so, and send no
    // request whose failure would only be read as a broken VIP.
    if hosts.directors.is_empty() {
        let names: Vec<&str> = lvs.directors.iter().map(|d| d.name.as_str()).collect();
        f.push(
            reporter,
            Verdict::new(
                "directors",
                false,
                format!(
                    "no director answered ({}: unreachable): who holds the VIP, keepalived or manual mode, and the IPVS table are unknown; nothing more was probed",
                    names.join(", ")
                ),
            ),
        );
        return;
    }
    let keepalived = match options.management {
        Some(m) => m == Management::Keepalived,
        None => hosts
            .director_states()
            .await
            .iter()
            .any(|(_, s)| s.in_vrrp()),
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
    let (verdict, sent) = http_via_vip(hosts, &url, options.requests, active.as_ref()).await;
    f.push(reporter, verdict);
    // The probes below only read, or send requests of their own that no other probe counts:
    // they run side by side (a few at a time, so no host is asked for more SSH channels than
    // its sshd allows) and are shown in their order. The path waits up to 3 s for the
    // director's counters (the kernel sums them every 2 s); the others run meanwhile.
    let holders = hosts.vip_holders().await;
    let holders = &holders;
    let mut probes: Vec<BoxFuture<'_, Option<Verdict>>> = Vec::new();
    if let (Some(d), Some(before)) = (active.clone(), before) {
        let mark = &mark;
        let sent = sent.clone();
        probes.push(
            async move {
                let after = path::read_after(hosts, &d, &before, sent.scheduled).await;
                Some(match after {
                    Ok(after) => {
                        let client = hosts.client.host.map(|h| h.address);
                        path::verdict(hosts, &d, &before, &after, sent.requests, mark, client).await
                    }
                    Err(e) => Verdict::new("path", false, e),
                })
            }
            .boxed(),
        );
    }
    for service in lvs.services.iter().skip(1) {
        probes.push(async move { Some(service_via_vip(hosts, service).await) }.boxed());
    }
    for service in lvs.services.iter().filter(|s| s.persistence.is_some()) {
        probes.push(persistent_clients(hosts, service).boxed());
    }
    for d in &hosts.directors {
        let active = holders.iter().any(|(n, _)| n == &d.director.name);
        if !active && !keepalived {
            continue;
        }
        probes.push(async move { Some(ipvs_table(lvs, d, keepalived).await) }.boxed());
        if active && d.conn.facts.has_ipvs() {
            probes.push(async move { Some(ipvs_connections(hosts, d).await) }.boxed());
            if keepalived && lvs.vrrp.as_ref().is_some_and(|v| v.sync_daemon) {
                let ports = &sent.ports;
                probes.push(async move { Some(connection_sync(hosts, d, ports).await) }.boxed());
            }
        }
    }
    for r in &hosts.real_servers {
        probes.push(async move { Some(real_server_settings(hosts, r).await) }.boxed());
        probes.push(async move { Some(web_server(hosts, r).await) }.boxed());
    }
    probes.push(async move { Some(one_vip_holder(hosts, holders)) }.boxed());
    if lvs.forwarding() == Forwarding::Nat {
        probes.push(nat_gateway(hosts, holders).boxed());
    }
    probes.push(arp_for_vip(hosts).boxed());
    if keepalived {
        probes.push(async move { Some(vrrp_roles(hosts).await) }.boxed());
    }
    let mut decided = futures::stream::iter(probes).buffered(PROBES_AT_ONCE);
    while let Some(verdict) = decided.next().await {
        if let Some(v) = verdict {
            f.push(reporter, v);
        }
    }
}

/// How many read-only probes run at once: below OpenSSH's default MaxSessions (10 channels on
/// one connection), as every real server's page is asked from the same director.
const PROBES_AT_ONCE: usize = 8;

/// The requests each real server should answer out of `count`: by weight for wrr and wlc,
/// evenly otherwise (for a scheduler that does not share, how many requests give each real
/// server a chance); a weight of 0 takes a real server out of every scheduler's choice.
pub fn shares(lvs: &Lvs, count: u32) -> BTreeMap<String, f64> {
    let service = lvs.service();
    let weighted = service.spread() == Spread::ByWeight;
    let members = &service.real_servers;
    let total: u32 = members
        .iter()
        .map(|r| u32::from(r.weight))
        .sum::<u32>()
        .max(1);
    let active = members.iter().filter(|r| r.weight > 0).count().max(1);
    members
        .iter()
        .map(|r| {
            let share = if r.weight == 0 {
                0.0
            } else if weighted {
                f64::from(r.weight) / f64::from(total)
            } else {
                1.0 / active as f64
            };
            let name = r.name.clone().unwrap_or_else(|| r.address.to_string());
            (name, share * f64::from(count))
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

/// How many rounds of requests the HTTP probe sends at most to have `count` of them scheduled.
const ROUNDS: u32 = 10;

/// What the HTTP probe sent: every request, and those IPVS scheduled (the others reused the
/// client port of a connection still in the director's table), and the client ports of those
/// IPVS scheduled.
#[derive(Debug, Clone, Default)]
pub struct Sent {
    pub requests: u32,
    pub scheduled: u32,
    pub ports: Vec<u16>,
}

/// The entries of `d`'s IPVS connection table from the probe's client (any client when it is
/// this machine) to the service.
async fn client_entries(hosts: &LvsHosts<'_>, d: &DirectorHost<'_>) -> Vec<Connection> {
    let service = hosts.lvs.service().endpoint();
    let client = hosts.client.host.map(|h| h.address);
    read(&d.conn.session, &sh::ipvs_connections())
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|c| c.virtual_address == service && client.is_none_or(|ip| c.client.address == ip))
        .collect()
}

/// The same, by client port, for the entries a new connection from that port is matched to
/// instead of being scheduled: all but TIME_WAIT and CLOSE, which `conn_reuse_mode`'s default
/// expires and schedules anew (a NAT director sees the server's FIN, so its entries reach
/// TIME_WAIT; DR and TUN ones stay in FIN_WAIT).
async fn client_ports_in_table(
    hosts: &LvsHosts<'_>,
    d: &DirectorHost<'_>,
) -> BTreeMap<u16, Connection> {
    client_entries(hosts, d)
        .await
        .into_iter()
        .filter(|c| !matches!(c.state.as_str(), "TIME_WAIT" | "CLOSE"))
        .map(|c| (c.client.port, c))
        .collect()
}

/// How many requests each real server answered.
fn answered_by(answers: &[Answer]) -> BTreeMap<String, u32> {
    let mut tally = BTreeMap::new();
    for a in answers.iter().filter(|a| a.ok()) {
        *tally.entry(a.who().to_string()).or_insert(0) += 1;
    }
    tally
}

/// The VIP answers, and every real server takes its share. The share is judged on the requests
/// IPVS scheduled: a request whose client port still has an entry in the active director's
/// connection table goes where that entry went (sent again until `count` were scheduled, at most
/// [`ROUNDS`] rounds).
pub async fn http_via_vip(
    hosts: &LvsHosts<'_>,
    url: &str,
    asked: u32,
    active: Option<&DirectorHost<'_>>,
) -> (Verdict, Sent) {
    let lvs = hosts.lvs;
    let count = request_count(lvs, asked);
    let mut answers = Vec::new();
    let mut scheduled = Vec::new();
    let mut reused: Vec<(Answer, Connection)> = Vec::new();
    let mut sent = Sent::default();
    for _round in 0..ROUNDS {
        let table = match active {
            Some(d) => client_ports_in_table(hosts, d).await,
            None => BTreeMap::new(),
        };
        let round = match hosts.http_answers(url, count - sent.scheduled).await {
            Ok(a) => a,
            Err(e) => {
                let v = Verdict::new(
                    "http",
                    false,
                    format!("could not send requests from {}: {e}", hosts.client.name),
                );
                return (v, sent);
            }
        };
        for a in round {
            sent.requests += 1;
            match table.get(&a.port).filter(|_| a.port != 0) {
                Some(c) => reused.push((a.clone(), c.clone())),
                None => {
                    sent.scheduled += 1;
                    if a.port != 0 {
                        sent.ports.push(a.port);
                    }
                    scheduled.push(a.clone());
                }
            }
            answers.push(a);
        }
        if sent.scheduled >= count || active.is_none() {
            break;
        }
    }
    let failed = answers.iter().filter(|a| !a.ok()).count();
    let tally = answered_by(&answers);
    let scheduled_tally = answered_by(&scheduled);
    let expected = shares(lvs, sent.scheduled);
    let mut answered: Vec<(&String, &u32)> = tally.iter().collect();
    answered.sort_by_key(|(n, _)| natural_key(n));
    let seen: Vec<String> = answered.iter().map(|(n, c)| format!("{n}={c}")).collect();
    let service = lvs.service();
    let spread = service.spread();
    let shared = matches!(spread, Spread::Even | Spread::ByWeight);
    let missing: Vec<&str> = expected
        .iter()
        .filter(|(n, share)| shared && **share > 0.0 && !tally.contains_key(*n))
        .map(|(n, _)| n.as_str())
        .collect();
    let (spread_ok, spread_said) = judge_spread(spread, &scheduled_tally);
    let off: Vec<String> = if shared {
        expected
            .iter()
            .filter(|(n, e)| {
                let got = f64::from(*scheduled_tally.get(*n).unwrap_or(&0));
                (got - **e).abs() > (1.0f64).max(**e * 0.25)
            })
            .map(|(n, e)| format!("{n} expected ~{e:.0}"))
            .collect()
    } else {
        Vec::new()
    };
    // Shares judged on too few scheduled requests would prove nothing: at least two for each
    // real server's share.
    let judged = sent.scheduled >= count.min(request_count(lvs, 0));
    let pass = failed == 0 && missing.is_empty() && off.is_empty() && spread_ok && judged;
    let mut evidence = format!(
        "{} GET {} from {}: {} ({failed} failed{})",
        sent.requests,
        hosts.url(),
        hosts.client.name,
        seen.join(" "),
        failures(&answers),
    );
    if let (false, Some(d)) = (reused.is_empty(), active) {
        let mut states: BTreeMap<&str, u32> = BTreeMap::new();
        let mut went: BTreeMap<&str, u32> = BTreeMap::new();
        for (a, c) in &reused {
            *states.entry(c.state.as_str()).or_insert(0) += 1;
            *went
                .entry(if a.ok() { a.who() } else { "no answer" })
                .or_insert(0) += 1;
        }
        let list = |m: &BTreeMap<&str, u32>| {
            m.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        evidence.push_str(&format!(
            "; {} reused a client port still in {}'s connection table ({}), so IPVS sent them \
             where that connection went ({}), not where {} chose: shares judged on the other {}",
            reused.len(),
            d.director.name,
            list(&states),
            list(&went),
            lvs.service().scheduler,
            sent.scheduled
        ));
    }
    if !judged {
        evidence.push_str(&format!(
            "; only {} of {count} requests were scheduled in {ROUNDS} rounds: the shares cannot be \
             judged (the client's ports keep meeting connections still in the table)",
            sent.scheduled
        ));
    }
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
    if let Some(said) = spread_said {
        evidence.push_str(&format!("; {}: {said}", service.desired().scheduling()));
    }
    (Verdict::new("http via VIP", pass, evidence), sent)
}

/// What one client's scheduled requests (`tally`: answers per real server) say of a scheduler
/// that does not share them by weight: whether they went as it decides, and in words (`None`
/// for one that shares: the shares are judged instead).
fn judge_spread(spread: Spread, tally: &BTreeMap<String, u32>) -> (bool, Option<String>) {
    let mut names: Vec<&String> = tally.keys().collect();
    names.sort_by_key(|n| natural_key(n));
    let names: Vec<&str> = names.iter().map(|n| n.as_str()).collect();
    match spread {
        Spread::Even | Spread::ByWeight => (true, None),
        Spread::One(why) => match names[..] {
            [] => (true, None),
            [one] => (
                true,
                Some(format!("one real server ({one}) for the one client: {why}")),
            ),
            _ => (
                false,
                Some(format!(
                    "{} real servers ({}) answered one client, though {why}",
                    names.len(),
                    names.join(", ")
                )),
            ),
        },
        Spread::Every(why) => (
            names.len() != 1,
            Some(if names.len() == 1 {
                format!(
                    "only {} answered, though {why}: its connections should spread",
                    names[0]
                )
            } else {
                format!(
                    "spread over {} ({why}; the shares are not judged)",
                    names.join(", ")
                )
            }),
        ),
        Spread::Random => (
            true,
            Some(format!(
                "answered by {} (chosen at random by weight: the shares are not judged)",
                names.join(", ")
            )),
        ),
    }
}

/// Why requests failed and from which client ports (a few): `: no answer in time x2 (ports
/// 41234, 41236)`; empty when none did.
fn failures(answers: &[Answer]) -> String {
    let mut why: BTreeMap<String, u32> = BTreeMap::new();
    let mut ports = Vec::new();
    for a in answers {
        if let Some(reason) = failure(a) {
            *why.entry(reason).or_insert(0) += 1;
            ports.push(a.port.to_string());
        }
    }
    if why.is_empty() {
        return String::new();
    }
    let reasons: Vec<String> = why.iter().map(|(r, n)| format!("{r} x{n}")).collect();
    ports.truncate(4);
    format!(
        ": {} (client ports {})",
        reasons.join(", "),
        ports.join(", ")
    )
}

/// Why a request failed, in words (curl's exit status), or `None` when it was answered.
fn failure(a: &Answer) -> Option<String> {
    if a.ok() {
        return None;
    }
    Some(match a.exit {
        // curl before 7.75 does not print why.
        0 if a.code == "000" => "no answer".to_string(),
        0 => format!("HTTP {}", a.code),
        6 => "no such host".to_string(),
        7 => "refused".to_string(),
        28 => "no answer in time".to_string(),
        52 => "closed without an answer".to_string(),
        56 => "connection reset".to_string(),
        n => format!("curl exit {n}"),
    })
}

/// 2. A director's IPVS table against the inventory's virtual services (with keepalived
///    and `health_check.via_vip`, each real server's path check too).
pub async fn ipvs_table(lvs: &Lvs, d: &DirectorHost<'_>, keepalived: bool) -> Verdict {
    let probe = format!("ipvs table on {}", d.director.name);
    if !d.conn.facts.has_ipvs() {
        return Verdict::new(
            probe,
            false,
            "this kernel has no IPVS (run the lab with `lvslab lab up --vm`)",
        );
    }
    let paths = if keepalived {
        lvs.path_services()
    } else {
        Vec::new()
    };
    let table = match read(&d.conn.session, &sh::ipvs_save()).await {
        Ok(t) => t,
        Err(e) => return Verdict::new(probe, false, e),
    };
    let first = table_verdict(probe.clone(), lvs, &table, d.director.address, &paths);
    if first.pass || !keepalived {
        return first;
    }
    // keepalived applies a reload in its own time: a changed checker starts over, and the
    // real servers it checks can leave the table and come back within a check (seen in the VM
    // right after `up` switched HTTP_GET to MISC_CHECK). One more look after a check's length
    // tells that from a server that stays out.
    let hc = &lvs.health_check;
    let again = Duration::from_secs(u64::from(
        (hc.delay_loop + hc.connect_timeout).min(SECOND_LOOK_MAX_SECS),
    ));
    tokio::time::sleep(again).await;
    let Ok(table) = read(&d.conn.session, &sh::ipvs_save()).await else {
        return first;
    };
    let second = table_verdict(probe, lvs, &table, d.director.address, &paths);
    if second.pass {
        Verdict::new(
            second.probe,
            true,
            format!(
                "{} (on a second look {} s later: keepalived was still applying a change)",
                second.evidence,
                again.as_secs()
            ),
        )
    } else {
        second
    }
}

/// The longest verify waits for a second look at a keepalived director's table.
const SECOND_LOOK_MAX_SECS: u32 = 10;

/// Each service of the inventory as the table holds it, drift named on its service, and each
/// path check (`paths`) with its one real server; a service the inventory does not have fails
/// too.
fn table_verdict(
    probe: String,
    lvs: &Lvs,
    table: &crate::lvs::ipvs::Table,
    director: std::net::IpAddr,
    paths: &[VirtualService],
) -> Verdict {
    let mut pass = true;
    let mut parts = Vec::new();
    for service in &lvs.services {
        let want = service.desired();
        let Some(have) = table.service(&want.key) else {
            pass = false;
            parts.push(format!("no virtual service {}", want.key));
            continue;
        };
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
        let mut evidence = format!(
            "{} {} -> {text}",
            want.key.endpoint_text(),
            have.scheduling()
        );
        if have.scheduler != want.scheduler
            || have.flags != want.flags
            || have.persistence != want.persistence
        {
            pass = false;
            evidence.push_str(&format!(
                " (scheduling differs from the inventory's {})",
                want.scheduling()
            ));
        }
        // With sorry_server_inhibit the sorry server stands by at weight 0: it answers only
        // with a weight.
        let standing_by = service.sorry_endpoint(director).filter(|e| {
            service.on_failure.sorry_server_inhibit
                && have
                    .real_servers
                    .iter()
                    .any(|s| s.endpoint == *e && s.weight == 0)
        });
        let mut have = have.clone();
        if let Some(e) = standing_by {
            have.real_servers.retain(|s| s.endpoint != e);
            evidence.push_str(&format!(
                " (the sorry server {e} stands by at weight 0: sorry_server_inhibit)"
            ));
        }
        let sorry = service
            .sorry_endpoint(director)
            .filter(|e| have.real_servers.iter().any(|s| s.endpoint == *e));
        if let Some(e) = sorry {
            pass = false;
            evidence.push_str(&format!(
                " (the sorry server {e} answers: keepalived found no real server of it in service)"
            ));
        } else if have.sorted_servers() != want.sorted_servers() {
            pass = false;
            let inhibited: Vec<String> = have
                .real_servers
                .iter()
                .filter(|s| s.weight == 0 && service.on_failure.inhibit_on_failure)
                .filter(|s| {
                    want.real_servers
                        .iter()
                        .any(|w| w.endpoint == s.endpoint && w.weight > 0)
                })
                .map(|s| s.endpoint.to_string())
                .collect();
            if inhibited.is_empty() {
                evidence.push_str(" (real servers differ from the inventory)");
            } else {
                evidence.push_str(&format!(
                    " (real servers differ from the inventory: {} at weight 0, its check failing: inhibit_on_failure keeps a failed server listed)",
                    inhibited.join(", ")
                ));
            }
        }
        parts.push(evidence);
    }
    if !paths.is_empty() {
        let mut checks = Vec::new();
        for p in paths {
            let want = p.desired();
            let node = p
                .real_servers
                .iter()
                .filter_map(|m| m.name.as_deref())
                .collect::<Vec<_>>()
                .join(", ");
            match table.service(&want.key) {
                Some(have) if have.sorted_servers() == want.sorted_servers() => {
                    checks.push(format!("{} -> {node}", want.key));
                }
                Some(_) => {
                    pass = false;
                    checks.push(format!("{} -> {node} (its real server differs)", want.key));
                }
                None => {
                    pass = false;
                    checks.push(format!("no {} -> {node}", want.key));
                }
            }
        }
        parts.push(format!(
            "checks through the VIP (via_vip): {}",
            checks.join(", ")
        ));
    }
    for extra in &table.services {
        if !lvs
            .services
            .iter()
            .chain(paths)
            .any(|s| s.key() == extra.key)
        {
            pass = false;
            parts.push(format!("{} is not in the inventory", extra.key));
        }
    }
    Verdict::new(probe, pass, parts.join("; "))
}

/// 1b. Each service after the first, on each of its ports, through the VIP from the client:
/// every request answered; a persistent service keeps the one client on one real server
/// (across all its ports, for a firewall-mark service), another has every real server with a
/// weight answer (the first service's probe judges the shares).
pub async fn service_via_vip(hosts: &LvsHosts<'_>, service: &VirtualService) -> Verdict {
    let probe = format!("http via VIP, {}", service.name());
    let members: Vec<&str> = service
        .real_servers
        .iter()
        .filter(|m| m.weight > 0)
        .filter_map(|m| m.name.as_deref())
        .collect();
    let per_port = requests_per_port(service.spread(), members.len());
    let mut answers = Vec::new();
    for url in service.urls() {
        match hosts.http_answers(&url, per_port).await {
            Ok(a) => answers.extend(a),
            Err(e) => {
                return Verdict::new(
                    probe,
                    false,
                    format!("could not send requests from {}: {e}", hosts.client.name),
                );
            }
        }
    }
    let failed = answers.iter().filter(|a| !a.ok()).count();
    let tally = answered_by(&answers);
    let mut seen: Vec<(&String, &u32)> = tally.iter().collect();
    seen.sort_by_key(|(n, _)| natural_key(n));
    let seen: Vec<String> = seen.iter().map(|(n, c)| format!("{n}={c}")).collect();
    let ports: Vec<String> = service.ports.iter().map(u16::to_string).collect();
    let mut evidence = format!(
        "{} GET on port{} {} from {}: {} ({failed} failed{})",
        answers.len(),
        if ports.len() > 1 { "s" } else { "" },
        ports.join(", "),
        hosts.client.name,
        seen.join(" "),
        failures(&answers)
    );
    let judged = match service.spread() {
        Spread::Even | Spread::ByWeight => {
            let missing: Vec<&str> = members
                .iter()
                .copied()
                .filter(|m| !tally.contains_key(*m))
                .collect();
            if !missing.is_empty() {
                evidence.push_str(&format!("; never answered: {}", missing.join(", ")));
            }
            missing.is_empty()
        }
        spread => {
            let (ok, said) = judge_spread(spread, &tally);
            if let Some(said) = said {
                evidence.push_str(&format!(
                    "; {}: {said}{}",
                    service.desired().scheduling(),
                    if ports.len() > 1 && tally.len() == 1 {
                        " (on every port)"
                    } else {
                        ""
                    }
                ));
            }
            ok
        }
    };
    Verdict::new(probe, failed == 0 && judged, evidence)
}

/// How many requests [`service_via_vip`] sends to each port: two per real server with a weight
/// (at least 6), or, where one client's connections spread by chance (a hashed client port),
/// 20 like the first service's probe, so that all of them landing on one real server, which
/// fails the probe, stays below one run in 100 000 (two real servers: 2 in 2^20; with 6
/// requests it was 1 in 32).
fn requests_per_port(spread: Spread, members: usize) -> u32 {
    match spread {
        Spread::Every(_) => 20,
        _ => u32::try_from(members * 2).unwrap_or(u32::MAX).max(6),
    }
}

/// How many requests [`persistent_clients`] sends from each of the client's addresses.
const PER_CLIENT: u32 = 4;

/// 1c. A persistent service as different clients see it: the same requests from each address
/// the client host has on its interface (up to [`MAX_CLIENTS`]; the lab's client has two): each
/// client stays on one real server; two clients inside one `persistence_granularity` share
/// it; two outside one may land on different ones (said when they did). `None` without a
/// client host of the inventory.
pub async fn persistent_clients(hosts: &LvsHosts<'_>, service: &VirtualService) -> Option<Verdict> {
    let persistence = service.persistence?;
    let host = hosts.client.host?;
    let probe = format!("persistent clients, {}", service.name());
    let iface = host.interface.as_deref().unwrap_or("eth0");
    let mut sources = vec![host.address];
    match read(&hosts.client.session, &sh::address_list(iface)).await {
        Ok(addresses) => sources.extend(
            addresses
                .iter()
                .map(|a| a.cidr.address)
                .filter(|a| a.is_ipv4() == service.vip.is_ipv4() && *a != host.address)
                .filter(|a| *a != service.vip)
                .take(MAX_CLIENTS - 1),
        ),
        Err(e) => {
            return Some(Verdict::new(
                probe,
                false,
                format!(
                    "could not read {}'s addresses on {iface}: {e}",
                    hosts.client.name
                ),
            ));
        }
    }
    if sources.len() < 2 {
        return Some(Verdict::new(
            probe,
            true,
            format!(
                "{} has one address ({}): whether another client may land on another real server was not tried (a second address on its {iface} shows it)",
                hosts.client.name, host.address
            ),
        ));
    }
    let url = service.urls().into_iter().next()?;
    let mut landed: Vec<(IpAddr, Vec<String>)> = Vec::new();
    let mut failed = 0;
    for source in &sources {
        match hosts
            .http_answers_from(&url, PER_CLIENT, Some(*source))
            .await
        {
            Ok(answers) => {
                failed += answers.iter().filter(|a| !a.ok()).count();
                let mut servers: Vec<String> = answered_by(&answers).into_keys().collect();
                servers.sort_by(|a, b| natural_key(a).cmp(&natural_key(b)));
                landed.push((*source, servers));
            }
            Err(e) => {
                return Some(Verdict::new(
                    probe,
                    false,
                    format!(
                        "could not send requests from {} ({source}): {e}",
                        hosts.client.name
                    ),
                ));
            }
        }
    }
    let mask = persistence
        .granularity
        .unwrap_or(crate::lvs::Persistence::ONE_ADDRESS);
    let granule = |a: &IpAddr| match a {
        IpAddr::V4(v4) => u32::from(*v4) & u32::from(mask),
        IpAddr::V6(_) => 0,
    };
    let mut problems = Vec::new();
    for (source, servers) in &landed {
        if servers.len() > 1 {
            problems.push(format!(
                "{source} was answered by {}: not kept on one",
                servers.join(", ")
            ));
        }
    }
    let one = |servers: &Vec<String>| (servers.len() == 1).then(|| servers[0].clone());
    let mut same_granule = Vec::new();
    let mut apart: Vec<(IpAddr, String)> = Vec::new();
    for (i, (a, sa)) in landed.iter().enumerate() {
        for (b, sb) in landed.iter().skip(i + 1) {
            if let (Some(x), Some(y)) = (one(sa), one(sb))
                && granule(a) == granule(b)
            {
                if x != y {
                    problems.push(format!(
                        "{a} and {b} are one client under persistence_granularity {mask}, yet went to {x} and {y}"
                    ));
                } else {
                    same_granule.push(format!("{a} and {b} (one client under {mask}) both on {x}"));
                }
            }
        }
        if let Some(x) = one(sa)
            && !apart.iter().any(|(b, _)| granule(a) == granule(b))
        {
            apart.push((*a, x));
        }
    }
    let mut distinct: Vec<&str> = apart.iter().map(|(_, s)| s.as_str()).collect();
    distinct.sort_unstable();
    distinct.dedup();
    let each: Vec<String> = landed
        .iter()
        .map(|(a, s)| {
            format!(
                "{a} -> {}",
                if s.is_empty() {
                    "none".into()
                } else {
                    s.join("+")
                }
            )
        })
        .collect();
    let mut evidence = format!(
        "{PER_CLIENT} GET {url} from each of {} addresses of {} ({failed} failed): {}",
        landed.len(),
        hosts.client.name,
        each.join(", ")
    );
    if problems.is_empty() {
        evidence.push_str("; each client kept one real server");
        if distinct.len() > 1 {
            evidence.push_str(&format!(
                ", and clients landed on different ones ({})",
                distinct.join(", ")
            ));
        } else if apart.len() > 1 {
            // Not a fault: a client keeps the real server of its template while the template
            // lives (an earlier run's may still), and a scheduler may choose the same one.
            evidence.push_str(&format!(
                ", all on {}: that another client can land elsewhere was not shown this time (the templates of earlier requests decide until they expire)",
                distinct.join(", ")
            ));
        }
        for s in &same_granule {
            evidence.push_str(&format!("; {s}"));
        }
    } else {
        evidence.push_str(&format!("; {}", problems.join("; ")));
    }
    Some(Verdict::new(
        probe,
        failed == 0 && problems.is_empty(),
        evidence,
    ))
}

/// The most client addresses [`persistent_clients`] sends from.
const MAX_CLIENTS: usize = 4;

/// 2b. The active director's connection table shows the probe's requests (the seed's
/// `ipvsadm -lnc`).
pub async fn ipvs_connections(hosts: &LvsHosts<'_>, d: &DirectorHost<'_>) -> Verdict {
    let entries = client_entries(hosts, d).await;
    let example = entries.first().map(|c| {
        format!(
            ", e.g. {} {} {} -> {} -> {}",
            c.protocol, c.state, c.client, c.virtual_address, c.server
        )
    });
    Verdict::new(
        format!("ipvs connections on {}", d.director.name),
        !entries.is_empty(),
        format!(
            "{} entries for the probe's requests{}",
            entries.len(),
            example.unwrap_or_default()
        ),
    )
}

/// How long the BACKUP's table may lag the MASTER's: the kernel's flush, and a second to read it.
const SYNC_LAG: Duration = crate::lvs::ipvs::SYNC_FLUSH.saturating_add(Duration::from_secs(1));

/// 2c. Connection sync (`sync_daemon`): the active director runs the master sync daemon, every
/// other director the backup one, and each of those holds the entries of the probe's requests
/// (a connection is sent after its third packet and at each change of state).
pub async fn connection_sync(
    hosts: &LvsHosts<'_>,
    active: &DirectorHost<'_>,
    probe_ports: &[u16],
) -> Verdict {
    let probe = "connection sync";
    let daemons = |d: &DirectorHost<'_>| {
        let session = d.conn.session.clone();
        async move { read(&session, &sh::ipvs_sync_daemons()).await }
    };
    let role_of = |list: &[crate::lvs::ipvs::SyncDaemon], role: &str| {
        list.iter()
            .find(|s| s.role == role)
            .map(|s| format!("{role} sync daemon on {}", s.interface))
    };
    let mut words = Vec::new();
    let mut pass = true;
    match daemons(active).await {
        Ok(list) => match role_of(&list, "master") {
            Some(w) => words.push(format!("{} {w}", active.director.name)),
            None => {
                pass = false;
                words.push(format!(
                    "{} runs no master sync daemon (keepalived starts it on the MASTER)",
                    active.director.name
                ));
            }
        },
        Err(e) => return Verdict::new(probe, false, format!("{}: {e}", active.director.name)),
    }
    // The probe's own connections, as the MASTER has them (older ones may predate the sync).
    let ports: std::collections::BTreeSet<u16> = client_entries(hosts, active)
        .await
        .into_iter()
        .map(|c| c.client.port)
        .filter(|p| probe_ports.contains(p))
        .collect();
    for d in hosts
        .directors
        .iter()
        .filter(|d| d.director.name != active.director.name && d.conn.facts.has_ipvs())
    {
        let name = &d.director.name;
        let backup = match daemons(d).await {
            Ok(list) => role_of(&list, "backup"),
            Err(e) => {
                pass = false;
                words.push(format!("{name}: {e}"));
                continue;
            }
        };
        let Some(backup) = backup else {
            pass = false;
            words.push(format!(
                "{name} runs no backup sync daemon (keepalived starts it on a BACKUP)"
            ));
            continue;
        };
        let deadline = std::time::Instant::now() + SYNC_LAG;
        let held = loop {
            let held = client_entries(hosts, d)
                .await
                .into_iter()
                .filter(|c| ports.contains(&c.client.port))
                .count();
            if held >= ports.len() || std::time::Instant::now() >= deadline {
                break held;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
        if held < ports.len() || ports.is_empty() {
            pass = false;
        }
        words.push(format!(
            "{name} {backup}, holding {held} of the {} connections of the probe's requests (synced from {})",
            ports.len(),
            active.director.name
        ));
    }
    Verdict::new(probe, pass, words.join("; "))
}

/// A real server's settings for the forwarding method, as the kernel has them: DR: ARP
/// settings and the VIP /32 on lo; TUN: ARP settings, the VIP /32 on an up tunl0, rp_filter 0;
/// NAT: no VIP, the default route through the gateway.
pub async fn real_server_settings(hosts: &LvsHosts<'_>, r: &RealServerHost<'_>) -> Verdict {
    let iface = &r.real_server.interface;
    let probe = format!("real server {}", r.real_server.name);
    let state = match read(&r.conn.session, &sh::real_server_state(iface, &hosts.vip())).await {
        Ok(s) => s,
        Err(e) => return Verdict::new(probe, false, e),
    };
    let sh::RealServerState {
        arp_ignore: ignore,
        arp_announce: announce,
        rp_filter: rp,
        default_route: route,
        tunl0_up,
        holders,
    } = state;
    let on = |dev: &str| {
        holders
            .iter()
            .any(|h| h.device == dev && h.cidr.prefix == 32)
    };
    let arp_ok = ignore == 1 && announce == 2;
    let arp = format!("arp_ignore={ignore} arp_announce={announce} (max of all and {iface})");
    let yes = |b: bool| if b { "yes" } else { "NO" };
    let (pass, evidence) = match hosts.lvs.forwarding() {
        Forwarding::Dr => (
            arp_ok && on(LOOPBACK),
            format!("{arp}; VIP /32 on {LOOPBACK}: {}", yes(on(LOOPBACK))),
        ),
        Forwarding::Tun => {
            let rp_ok = rp.iter().all(|v| v == "0");
            (
                arp_ok && on(TUNNEL) && tunl0_up && rp_ok,
                format!(
                    "{arp}; {TUNNEL} up: {}; VIP /32 on {TUNNEL}: {}; rp_filter all={} {TUNNEL}={}",
                    yes(tunl0_up),
                    yes(on(TUNNEL)),
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
    let query = sh::address_holders(&gateway);
    let mut holders = Vec::new();
    for d in &hosts.directors {
        if read(&d.conn.session, &query)
            .await
            .is_ok_and(|held| !held.is_empty())
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
    match read(session, &sh::http_probe(&url, 1, 2)).await {
        Err(e) => Verdict::new(probe, false, e),
        Ok(mut answers) => {
            let answer = answers.pop();
            let (pass, shown) = match &answer {
                Some(a) => (
                    a.ok() && a.who() == r.real_server.name,
                    format!("{} {}", a.code, a.page),
                ),
                None => (false, "no answer".to_string()),
            };
            Verdict::new(probe, pass, format!("GET {url} from {from} -> {shown}"))
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
    let macs = read(&hosts.client.session, &sh::arp_probe(&iface, &vip, 2))
        .await
        .unwrap_or_default();
    let mut owners = Vec::new();
    for d in &hosts.directors {
        if let Ok(mac) = read(&d.conn.session, &sh::mac_address(&d.director.interface)).await
            && macs.contains(&mac)
        {
            owners.push(format!("{} ({mac})", d.director.name));
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

/// VRRP: one MASTER (the highest priority), the others BACKUP, as keepalived itself says,
/// each watched for an advert interval and a half: a BACKUP must hear the MASTER's adverts
/// meanwhile (the states are read again now: the probes before took a while and the election
/// may have moved on). A director out of VRRP (frozen, hung, FAULT, deaf, stopped,
/// unreadable) fails it: the pair has no failover through it.
pub async fn vrrp_roles(hosts: &LvsHosts<'_>) -> Verdict {
    let advert = hosts.lvs.vrrp.as_ref().map_or(1, |v| v.advert_int);
    let window = Duration::from_millis(u64::from(advert) * 1500);
    let (readings, joined) = futures::join!(hosts.director_readings(Some(window)), async {
        let unicast = hosts.lvs.vrrp.as_ref().is_some_and(|v| v.unicast);
        let reads = hosts
            .directors
            .iter()
            .filter(|_| unicast)
            .map(|d| async move {
                let joined = read(
                    &d.conn.session,
                    &sh::vrrp_group_joined(&d.director.interface),
                )
                .await;
                (d.director.name.clone(), joined)
            });
        futures::future::join_all(reads).await
    });
    let mut verdict = vrrp_verdict(hosts.lvs, &readings, &joined);
    if let Some(words) = crate::live::split_brain(&readings, crate::live::epoch_now()) {
        let follows = hosts
            .client_follows()
            .await
            .unwrap_or_else(|| "the client's ARP entry is not known".into());
        verdict
            .evidence
            .push_str(&format!("; split brain: {words}; {follows}"));
    }
    verdict
}

/// The VRRP verdict from the directors' readings and, with unicast, whether each joined the
/// multicast group of adverts.
fn vrrp_verdict(
    lvs: &Lvs,
    readings: &[(String, Reading)],
    joined: &[(String, Result<bool, String>)],
) -> Verdict {
    let masters: Vec<&String> = readings
        .iter()
        .filter(|(_, r)| r.state == DirectorState::Master)
        .map(|(n, _)| n)
        .collect();
    let best = lvs.expected_master().map(|d| d.name.clone());
    let mut text = readings
        .iter()
        .map(|(n, r)| format!("{n} {}", r.words()))
        .collect::<Vec<_>>()
        .join(", ");
    let all_up = readings.iter().all(|(_, r)| r.state.in_vrrp());
    let right_master = masters.len() == 1 && (!lvs.preempts() || best.as_ref() == Some(masters[0]));
    let mut problems = Vec::new();
    if let Some(v) = &lvs.vrrp {
        if let Some(words) = v.preemption_words() {
            text.push_str(&format!("; {words}"));
        }
        if !v.track_interface.is_empty() {
            text.push_str(&format!(
                "; tracks {} (FAULT, giving up the VIP, while one is down)",
                v.track_interface.join(", ")
            ));
        }
        for t in &v.track_script {
            text.push_str(&format!("; tracks the script {} ({})", t.name, t.effect()));
        }
        if let Some(refresh) = v.garp.master_refresh.filter(|r| *r > 0) {
            text.push_str(&format!(
                "; gratuitous ARPs refreshed every {refresh} s while MASTER"
            ));
        }
        // What keepalived runs with, from its own dump: a configuration not yet loaded shows.
        for (n, r) in readings {
            if let Some(i) = &r.instance {
                problems.extend(running_differences(n, i, v));
            }
        }
        if v.unicast {
            let mut words = Vec::new();
            for (n, j) in joined {
                match j {
                    Ok(false) => words.push(n.as_str()),
                    Ok(true) => {
                        problems.push(format!("{n} joined {} (multicast adverts)", sh::VRRP_GROUP))
                    }
                    Err(e) => problems.push(format!("{n}'s multicast groups unknown: {e}")),
                }
            }
            text.push_str(&format!(
                "; unicast: {} joined no {} group, so the adverts a BACKUP heard were sent to its own address",
                words.join(", "),
                sh::VRRP_GROUP
            ));
        }
    }
    if !problems.is_empty() {
        text.push_str(&format!(
            "; {} (the inventory says otherwise: run `lvslab up`)",
            problems.join("; ")
        ));
    }
    // Another VRRP router on the VRID: keepalived counts its adverts as errors; the pair may
    // still elect, but a router of that VRID with the same VIPs would take them over.
    let foreign: Vec<String> = readings
        .iter()
        .filter_map(|(n, r)| {
            r.foreign_adverts
                .filter(|f| *f > 0)
                .map(|f| format!("{n} {f}"))
        })
        .collect();
    let vrid = lvs.vrrp.as_ref().map_or(0, |v| v.virtual_router_id);
    if !foreign.is_empty() {
        text.push_str(&format!(
            "; another VRRP router uses virtual_router_id {vrid} on this network: adverts for it with another VIP list or password ({}, while watched); give this pair a virtual_router_id of its own",
            foreign.join(", ")
        ));
    } else {
        // None now, but some since keepalived started: said, not failed (it may have gone).
        let earlier: Vec<String> = readings
            .iter()
            .filter_map(|(n, r)| {
                let total = r.instance.as_ref()?.foreign_adverts;
                (total > 0).then(|| format!("{n} {total}"))
            })
            .collect();
        if !earlier.is_empty() {
            text.push_str(&format!(
                "; none while watched, but since keepalived started adverts for virtual_router_id {vrid} came with another VIP list or password ({}): another router used it, or still does (a keepalived MASTER of that VRID restarts its advert timer on each of this pair's adverts, so it may send only now and then: look for the other router)",
                earlier.join(", ")
            ));
        }
    }
    Verdict::new(
        "VRRP",
        all_up && right_master && problems.is_empty() && foreign.is_empty(),
        text,
    )
}

/// Where director `n`'s keepalived runs with other VRRP settings than the inventory's `v`.
fn running_differences(n: &str, i: &sh::VrrpInstance, v: &crate::lvs::Vrrp) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(nopreempt) = i.nopreempt
        && nopreempt == v.preempt
    {
        let with = if nopreempt { "with" } else { "without" };
        out.push(format!("{n}'s keepalived runs {with} nopreempt"));
    }
    if let Some(delay) = i.preempt_delay
        && delay != u64::from(v.preempt_delay)
    {
        out.push(format!("{n}'s keepalived runs with preempt_delay {delay}"));
    }
    for name in &v.track_interface {
        if !i.tracked.contains(name) {
            out.push(format!("{n}'s keepalived does not track {name}"));
        }
    }
    for t in &v.track_script {
        if !i.tracked_scripts.contains(&sh::command_words(&t.script)) {
            out.push(format!(
                "{n}'s keepalived does not track the script {} ({})",
                t.name, t.script
            ));
        }
    }
    if let Some(g) = &i.garp {
        let running = [
            (
                "garp_master_delay",
                v.garp.master_delay,
                g.delay.round() as u64,
            ),
            ("garp_master_repeat", v.garp.master_repeat, g.repeat),
            ("garp_master_refresh", v.garp.master_refresh, g.refresh),
            (
                "garp_master_refresh_repeat",
                v.garp.master_refresh_repeat,
                g.refresh_repeat,
            ),
        ];
        for (key, want, runs) in running {
            if let Some(want) = want
                && u64::from(want) != runs
            {
                out.push(format!("{n}'s keepalived runs with {key} {runs}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A later service's probe sends enough requests that a spread by chance (sh with
    /// sh-port) is not taken for one real server answering all: with two real servers, every
    /// one of `n` requests on the same one happens 2 in 2^n times.
    #[test]
    fn a_spread_by_chance_gets_enough_requests_to_be_seen() {
        let every = Spread::Every("a hash of the client's port");
        for members in [2, 3, 5] {
            let n = requests_per_port(every, members);
            let all_on_one = members as f64 * (1.0 / members as f64).powi(n as i32);
            assert!(
                all_on_one < 1e-5,
                "{members} real servers, {n} requests: {all_on_one}"
            );
        }
        assert_eq!(requests_per_port(Spread::Even, 2), 6);
        assert_eq!(requests_per_port(Spread::Even, 5), 10);
        assert_eq!(requests_per_port(Spread::One("persistent"), 3), 6);
    }

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

    /// What one client's requests must show for each scheduler: shares for rr/wrr/lc/wlc,
    /// one real server for the hashing and filling ones (and with persistence), a spread with
    /// a flag that hashes the port, nothing judged for twos.
    #[test]
    fn each_scheduler_is_judged_by_what_it_decides_by() {
        use crate::lvs::{SchedFlag, Scheduler, Spread};
        for s in Scheduler::ALL {
            let spread = s.spread();
            let expected = match s {
                Scheduler::Rr | Scheduler::Lc => "even",
                Scheduler::Wrr | Scheduler::Wlc => "weight",
                Scheduler::Twos => "random",
                _ => "one",
            };
            let got = match spread {
                Spread::Even => "even",
                Spread::ByWeight => "weight",
                Spread::One(_) => "one",
                Spread::Every(_) => "every",
                Spread::Random => "random",
            };
            assert_eq!(got, expected, "{s}");
        }
        let mut service = lvs(&[1, 1], "sh").services[0].clone();
        assert!(matches!(service.spread(), Spread::One(_)));
        service.scheduler_flags = vec![SchedFlag::ShPort];
        assert!(matches!(service.spread(), Spread::Every(_)));
        let tally = |pairs: &[(&str, u32)]| -> BTreeMap<String, u32> {
            pairs.iter().map(|(n, c)| (n.to_string(), *c)).collect()
        };
        let one = Scheduler::Sh.spread();
        let (ok, said) = judge_spread(one, &tally(&[("node2", 20)]));
        assert!(ok);
        assert_eq!(
            said.as_deref(),
            Some(
                "one real server (node2) for the one client: the source address's hash picks one real server"
            )
        );
        let (ok, said) = judge_spread(one, &tally(&[("node10", 1), ("node2", 19)]));
        assert!(!ok);
        assert!(
            said.unwrap_or_default()
                .starts_with("2 real servers (node2, node10) answered one client, though"),
        );
        let every = service.spread();
        assert!(!judge_spread(every, &tally(&[("node2", 20)])).0);
        let (ok, said) = judge_spread(every, &tally(&[("node2", 12), ("node3", 8)]));
        assert!(ok);
        assert_eq!(
            said.as_deref(),
            Some(
                "spread over node2, node3 (the client's port is hashed with its address; the shares are not judged)"
            )
        );
        assert_eq!(
            judge_spread(Spread::Even, &tally(&[("node2", 20)])),
            (true, None)
        );
        // The shares of a scheduler that does not share are not expected of it.
        assert_eq!(
            shares(&lvs(&[1, 3], "sh"), 8)
                .into_values()
                .collect::<Vec<_>>(),
            [4.0, 4.0]
        );
    }

    #[test]
    fn a_frozen_or_stopped_director_fails_vrrp_and_says_why() {
        let yaml = "lvs: { vip: 10.0.0.100, vrrp: { virtual_router_id: 51, auth_pass: pw1111ab } }\nhosts:\n  d1: { address: 10.0.0.11, interface: eth0, vrrp: { state: MASTER, priority: 100 } }\n  d2: { address: 10.0.0.14, interface: eth0, vrrp: { state: BACKUP, priority: 50 } }\n  r1: { address: 10.0.0.12, interface: eth0 }\ngroups:\n  directors: { hosts: [d1, d2] }\n  real_servers: { hosts: [r1] }\n";
        let lvs = crate::inventory::load_str(std::path::Path::new("i.yml"), yaml.into())
            .unwrap()
            .0
            .lvs
            .unwrap();
        let pair = |a, b| {
            let reading = |state, detail: &str| Reading {
                state,
                detail: detail.to_string(),
                instance: None,
                foreign_adverts: None,
            };
            [
                ("d1".to_string(), reading(a, "priority 100")),
                ("d2".to_string(), reading(b, "priority 50")),
            ]
        };
        let ok = vrrp_verdict(
            &lvs,
            &pair(DirectorState::Master, DirectorState::Backup),
            &[],
        );
        assert!(ok.pass, "{}", ok.evidence);
        assert_eq!(
            ok.evidence,
            "d1 MASTER (priority 100), d2 BACKUP (priority 50)"
        );
        let frozen = vrrp_verdict(
            &lvs,
            &pair(DirectorState::Master, DirectorState::Frozen),
            &[],
        );
        assert!(!frozen.pass);
        assert!(
            frozen
                .evidence
                .contains("d2 FROZEN (priority 50): keepalived stopped by a signal"),
            "{}",
            frozen.evidence
        );
        let wrong = vrrp_verdict(
            &lvs,
            &pair(DirectorState::Backup, DirectorState::Master),
            &[],
        );
        assert!(!wrong.pass, "the lower priority holds the VIP");
        let stopped = vrrp_verdict(
            &lvs,
            &pair(DirectorState::Master, DirectorState::Stopped),
            &[],
        );
        assert!(!stopped.pass && stopped.evidence.contains("no keepalived"));
        // What keepalived itself says: a BACKUP that hears no MASTER, FAULT, a hung daemon.
        for (state, words) in [
            (
                DirectorState::Deaf,
                "d2 BACKUP (priority 50): it heard no advert",
            ),
            (
                DirectorState::Fault,
                "d2 FAULT (priority 50): keepalived is in FAULT",
            ),
            (
                DirectorState::Hung,
                "d2 HUNG (priority 50): keepalived does not answer",
            ),
            (
                DirectorState::Init,
                "d2 INIT (priority 50): keepalived is starting",
            ),
        ] {
            let v = vrrp_verdict(&lvs, &pair(DirectorState::Master, state), &[]);
            assert!(!v.pass && v.evidence.contains(words), "{}", v.evidence);
        }
    }

    /// nopreempt: either director may hold the VIP, and keepalived must run with it; unicast:
    /// a director that joined the multicast group of adverts fails it.
    #[test]
    fn nopreempt_and_unicast_as_keepalived_runs_them() {
        let yaml = "lvs: { vip: 10.0.0.100, vrrp: { virtual_router_id: 51, preempt: false, unicast: true } }\nhosts:\n  d1: { address: 10.0.0.11, interface: eth0, vrrp: { state: MASTER, priority: 100 } }\n  d2: { address: 10.0.0.14, interface: eth0, vrrp: { state: BACKUP, priority: 50 } }\n  r1: { address: 10.0.0.12, interface: eth0 }\ngroups:\n  directors: { hosts: [d1, d2] }\n  real_servers: { hosts: [r1] }\n";
        let (inv, warnings) =
            crate::inventory::load_str(std::path::Path::new("i.yml"), yaml.into()).unwrap();
        assert!(
            warnings.iter().any(|w| w.starts_with("i.yml:3:")
                && w.contains("`d1` starts as BACKUP: keepalived ignores `nopreempt`")),
            "{warnings:?}"
        );
        let lvs = inv.lvs.unwrap();
        let instance = |nopreempt| crate::transport::sh::VrrpInstance {
            name: "VI_1".into(),
            state: crate::transport::sh::VrrpWord::Master,
            effective_priority: 50,
            adverts_received: 0,
            adverts_sent: 3,
            foreign_adverts: 0,
            last_transition: 0.0,
            nopreempt: Some(nopreempt),
            preempt_delay: Some(0),
            garp: None,
            tracked: Vec::new(),
            tracked_scripts: Vec::new(),
        };
        let readings = |nopreempt| {
            [
                (
                    "d1".to_string(),
                    Reading {
                        state: DirectorState::Backup,
                        detail: "priority 100".into(),
                        instance: None,
                        foreign_adverts: None,
                    },
                ),
                (
                    "d2".to_string(),
                    Reading {
                        state: DirectorState::Master,
                        detail: "priority 50".into(),
                        instance: Some(instance(nopreempt)),
                        foreign_adverts: Some(0),
                    },
                ),
            ]
        };
        let none_joined = [("d1".to_string(), Ok(false)), ("d2".to_string(), Ok(false))];
        let v = vrrp_verdict(&lvs, &readings(true), &none_joined);
        assert!(
            v.pass,
            "the lower priority may hold the VIP: {}",
            v.evidence
        );
        assert!(
            v.evidence
                .contains("nopreempt: the VIP stays with its holder")
                && v.evidence
                    .contains("unicast: d1, d2 joined no 224.0.0.18 group"),
            "{}",
            v.evidence
        );
        let stale = vrrp_verdict(&lvs, &readings(false), &none_joined);
        assert!(
            !stale.pass
                && stale
                    .evidence
                    .contains("d2's keepalived runs without nopreempt"),
            "{}",
            stale.evidence
        );
        let joined = [("d1".to_string(), Ok(true)), ("d2".to_string(), Ok(false))];
        let multicast = vrrp_verdict(&lvs, &readings(true), &joined);
        assert!(
            !multicast.pass && multicast.evidence.contains("d1 joined 224.0.0.18"),
            "{}",
            multicast.evidence
        );
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

    /// A seed-like lab over the scripted transport: director d1, node2 and node3 (rr), a client.
    /// The client answers each round of GETs with `round(n, count)`; d1's connection table holds
    /// `table`.
    async fn http_probe_with(
        table: &'static str,
        round: impl Fn(usize, u32) -> Vec<(u16, &'static str)> + Send + Sync + 'static,
    ) -> (Verdict, Sent) {
        use crate::transport::fake::{FakeHosts, out};
        use std::sync::atomic::{AtomicUsize, Ordering};
        let yaml = "lvs: { vip: 10.0.0.100, scheduler: rr }\nhosts:\n  \
                    d1: { address: 10.0.0.11, interface: eth0 }\n  \
                    node2: { address: 10.0.0.12, interface: eth0 }\n  \
                    node3: { address: 10.0.0.13, interface: eth0 }\n  \
                    client: { address: 10.0.0.10 }\ngroups:\n  directors: { hosts: [d1] }\n  \
                    real_servers: { hosts: [node2, node3] }\n  clients: { hosts: [client] }\n";
        let (inventory, _) =
            crate::inventory::load_str(std::path::Path::new("i.yml"), yaml.to_string()).unwrap();
        let rounds = AtomicUsize::new(0);
        let fakes = FakeHosts::default()
            .host("d1", move |cmd| {
                out(
                    0,
                    if cmd == sh::ipvs_connections().line() {
                        table
                    } else {
                        ""
                    },
                )
            })
            .host("node2", |_| out(0, ""))
            .host("node3", |_| out(0, ""))
            .host("client", move |cmd| {
                let count = cmd
                    .split("-lt ")
                    .nth(1)
                    .and_then(|r| r.split(' ').next())
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0);
                let n = rounds.fetch_add(1, Ordering::SeqCst);
                let lines: String = round(n, count)
                    .into_iter()
                    .map(|(port, who)| match who {
                        "" => format!("\n@@lvslab 000 {port} 28\n"),
                        who => format!("{who} 10.0.0.1\n\n@@lvslab 200 {port} 0\n"),
                    })
                    .collect();
                out(0, &lines)
            });
        let fleet = crate::fleet::Fleet::new(
            std::sync::Arc::new(fakes),
            std::time::Duration::from_secs(5),
        );
        let reporter = Reporter::new(vec![], crate::secrets::Secrets::new(vec![]));
        let lvs = inventory.lvs.as_ref().unwrap();
        let hosts = LvsHosts::connect(&inventory, lvs, &fleet, &reporter).await;
        let active = hosts.directors.first().cloned();
        http_via_vip(&hosts, "http://10.0.0.100:80/", 20, active.as_ref()).await
    }

    /// `count` fresh requests from port `from` on, rr between node2 and node3.
    fn alternating(from: u16, count: u32) -> Vec<(u16, &'static str)> {
        (0..count as u16)
            .map(|i| (from + 2 * i, if i % 2 == 0 { "node2" } else { "node3" }))
            .collect()
    }

    const SIX_TO_NODE3: &str = "IPVS connection entries\n\
        pro expire state       source             virtual            destination\n\
        TCP 01:50  FIN_WAIT    10.0.0.10:40000    10.0.0.100:80      10.0.0.13:80\n\
        TCP 01:50  FIN_WAIT    10.0.0.10:40002    10.0.0.100:80      10.0.0.13:80\n\
        TCP 01:50  FIN_WAIT    10.0.0.10:40004    10.0.0.100:80      10.0.0.13:80\n\
        TCP 01:50  FIN_WAIT    10.0.0.10:40006    10.0.0.100:80      10.0.0.13:80\n\
        TCP 01:50  FIN_WAIT    10.0.0.10:40008    10.0.0.100:80      10.0.0.13:80\n\
        TCP 01:50  FIN_WAIT    10.0.0.10:40010    10.0.0.100:80      10.0.0.13:80\n\
        TCP 01:50  FIN_WAIT    10.0.0.100:40012   10.0.0.100:80      10.0.0.13:80\n\
        TCP 01:50  TIME_WAIT   10.0.0.10:40014    10.0.0.100:80      10.0.0.13:80\n";

    #[tokio::test]
    async fn requests_that_reuse_a_port_still_in_the_table_are_not_judged_as_scheduled() {
        // Round one: six requests reuse ports of FIN_WAIT entries to node3 (IPVS sends them
        // there), fourteen are scheduled; round two sends six more.
        let (v, sent) = http_probe_with(SIX_TO_NODE3, |n, count| match n {
            0 => (0..6)
                .map(|i| (40000 + 2 * i, "node3"))
                .chain(alternating(50000, count - 6))
                .collect(),
            _ => alternating(52000, count),
        })
        .await;
        assert!(v.pass, "{}", v.evidence);
        assert_eq!((sent.requests, sent.scheduled), (26, 20));
        assert!(
            v.evidence.starts_with(
                "26 GET http://10.0.0.100:80/ from client: node2=10 node3=16 (0 failed)"
            ),
            "{}",
            v.evidence
        );
        assert!(
            v.evidence
                .contains("6 reused a client port still in d1's connection table (FIN_WAIT=6)"),
            "{}",
            v.evidence
        );
        assert!(
            v.evidence
                .contains("(node3=6), not where rr chose: shares judged on the other 20"),
            "{}",
            v.evidence
        );
    }

    #[tokio::test]
    async fn a_failed_request_fails_the_probe_and_says_why_and_from_which_port() {
        let (v, _) = http_probe_with("", |_, count| {
            let mut answers = alternating(50000, count);
            answers[1].1 = "";
            answers
        })
        .await;
        assert!(!v.pass, "{}", v.evidence);
        assert!(
            v.evidence
                .contains("node2=10 node3=9 (1 failed: no answer in time x1 (client ports 50002))"),
            "{}",
            v.evidence
        );
    }

    #[tokio::test]
    async fn a_skew_without_reused_ports_fails_and_so_does_one_that_cannot_be_judged() {
        // Another client's entry (10.0.0.100:40012) is not the probe's: its port is free; a
        // TIME_WAIT entry (40014) is expired and scheduled anew.
        let (v, _) = http_probe_with(SIX_TO_NODE3, |_, count| {
            (0..count as u16)
                .map(|i| (40012 + 2 * i, if i < 7 { "node2" } else { "node3" }))
                .collect()
        })
        .await;
        assert!(!v.pass, "{}", v.evidence);
        assert!(
            v.evidence
                .contains("distribution off for rr: node2 expected ~10, node3 expected ~10"),
            "{}",
            v.evidence
        );
        assert!(!v.evidence.contains("reused"), "{}", v.evidence);

        // Every round meets the table's ports: nothing to judge the shares on.
        let (v, sent) = http_probe_with(SIX_TO_NODE3, |_, count| {
            (0..count as u16)
                .map(|i| (40000 + 2 * (i % 6), "node3"))
                .collect()
        })
        .await;
        assert!(!v.pass, "{}", v.evidence);
        assert_eq!((sent.requests, sent.scheduled), (200, 0));
        assert!(
            v.evidence
                .contains("only 0 of 20 requests were scheduled in 10 rounds"),
            "{}",
            v.evidence
        );
    }

    #[test]
    fn names_sort_by_their_number() {
        let mut names = vec!["node10", "node2", "client", "node3"];
        names.sort_by_key(|n| natural_key(n));
        assert_eq!(names, ["client", "node2", "node3", "node10"]);
    }
}
