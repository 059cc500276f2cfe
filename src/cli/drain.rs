//! `lvslab drain NODE` and `lvslab undrain NODE`: a real server taken out of service and put
//! back as one operation. The inventory says it (`drained: true` on the host, so a later `up`
//! keeps it out), the directors converge to it (weight 0: keepalived reloaded, or the manual
//! table edited), and the drain waits until the connections it still carries have ended.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::Setup;
use super::args::{DrainArgs, Global};
use super::converge::{connect, converge, interrupted};
use crate::cli::outcome::Outcome;
use crate::inventory::edit;
use crate::live::{DirectorHost, LvsHosts};
use crate::lvs::Management;
use crate::report::Event;
use crate::transport::sh;

/// How long keepalived may take to apply a reload to the kernel's table.
const APPLIED_WAIT: Duration = Duration::from_secs(15);

/// How often the directors' connection tables are read while draining.
const POLL: Duration = Duration::from_secs(1);

pub async fn drain(args: &DrainArgs, global: &Global, drained: bool) -> miette::Result<Outcome> {
    let verb = if drained { "drain" } else { "undrain" };
    let node = args.node.as_str();
    let setup = Setup::new(global)?;
    let lvs = setup.lvs()?;
    let Some(rs) = lvs.real_servers.iter().find(|r| r.name == node) else {
        let names: Vec<&str> = lvs.real_servers.iter().map(|r| r.name.as_str()).collect();
        miette::bail!(
            "`{node}` is not a real server of {} (real servers: {})",
            global.inventory.display(),
            names.join(", ")
        );
    };
    // The inventory first: what the directors converge to, and what a later `up` keeps.
    let setup = if rs.drained == drained {
        setup.reporter.emit(Event::Info {
            text: format!(
                "{}: {node} is already {} (the directors are converged to it all the same)",
                global.inventory.display(),
                if drained { "drained" } else { "in service" }
            ),
        });
        setup
    } else {
        drop(setup);
        let written = record(global, node, drained)?;
        let setup = Setup::new(global)?;
        setup.reporter.emit(Event::Info { text: written });
        setup
    };
    // The plays run on the directors alone.
    let setup = setup.on_directors()?;
    let lvs = setup.lvs()?;
    let Some(rs) = lvs.real_servers.iter().find(|r| r.name == node) else {
        miette::bail!("`{node}` is no longer a real server after the edit");
    };
    let Some(hosts) = connect(&setup, lvs).await else {
        return Ok(interrupted(&setup));
    };
    if hosts.directors.is_empty() {
        setup.reporter.emit(Event::Warning {
            text: format!(
                "no director could be reached: the inventory says {node} is {}, the directors do not yet; run `lvslab {verb} {node}` again",
                if drained { "drained" } else { "in service" }
            ),
        });
        setup.reporter.finish();
        return Ok(Outcome::Unreachable);
    }
    let management = if keepalived_runs(&hosts).await {
        Management::Keepalived
    } else {
        Management::Manual
    };
    let listed = listing(hosts.lvs, &hosts.directors, rs.address).await;
    if listed.values().all(Option::is_none) {
        setup.reporter.emit(Event::Info {
            text: format!(
                "no director lists {node} in its IPVS table (is the load balancer up?): the inventory says it, `lvslab up` applies it"
            ),
        });
        setup.reporter.finish();
        return Ok(Outcome::Ok);
    }

    // The directors converge to the inventory: the weight is the one thing that differs.
    let what = format!("lvslab {verb} {node} ({} mode)", management.as_str());
    let outcome = converge(&setup, global, management, &what).await?;
    if outcome != Outcome::Ok {
        setup.reporter.emit(Event::Warning {
            text: format!(
                "the inventory says {node} is {}, but not every director converged to it (see the tasks above): run `lvslab {verb} {node}` again",
                if drained { "drained" } else { "in service" }
            ),
        });
        return Ok(outcome);
    }
    let want = rs.weight;
    let applied = setup
        .cancel
        .guard(weight_applied(
            hosts.lvs,
            &hosts.directors,
            rs.address,
            want,
        ))
        .await;
    let Some(weights) = applied else {
        return Ok(interrupted(&setup));
    };
    let wrong: Vec<String> = weights
        .iter()
        .filter(|(_, w)| w.is_some_and(|w| w != want))
        .map(|(d, w)| format!("{d}: weight {}", w.unwrap_or_default()))
        .collect();
    if !wrong.is_empty() {
        setup.reporter.emit(Event::Warning {
            text: format!(
                "{node} should have weight {want}, but after {} s the directors hold {}",
                APPLIED_WAIT.as_secs(),
                wrong.join(", ")
            ),
        });
        setup.reporter.finish();
        return Ok(Outcome::Failed);
    }
    let on: Vec<&str> = weights
        .iter()
        .filter(|(_, w)| w.is_some())
        .map(|(d, _)| d.as_str())
        .collect();
    if !drained {
        setup.reporter.emit(Event::Info {
            text: format!(
                "{node} is back in service: weight {want} on {}",
                on.join(", ")
            ),
        });
        setup.reporter.finish();
        return Ok(Outcome::Ok);
    }

    // Drained: no new connections go to it; wait for the ones it carries. They pass the
    // director that holds the VIP: another director's table keeps entries of connections it
    // served before a failover until they time out (it never sees their end).
    let holders = hosts.vip_holders().await;
    let carrying: Vec<DirectorHost<'_>> = hosts
        .directors
        .iter()
        .filter(|d| holders.iter().any(|(n, _)| n == &d.director.name))
        .cloned()
        .collect();
    let carrying = if carrying.is_empty() {
        hosts.directors.clone()
    } else {
        carrying
    };
    let deadline = Duration::from_secs(args.timeout);
    let waited = setup
        .cancel
        .guard(until_idle(&setup, &carrying, rs.address, deadline))
        .await;
    let Some(Idle {
        at_start,
        left,
        took,
    }) = waited
    else {
        setup.reporter.emit(Event::Warning {
            text: format!(
                "interrupted while waiting: {node} stays drained (weight 0); `lvslab undrain {node}` puts it back"
            ),
        });
        return Ok(interrupted(&setup));
    };
    let started = if at_start == 0 {
        "it carried no connection".to_string()
    } else {
        format!("{at_start} active connection(s) at the start")
    };
    let (text, outcome) = if deadline.is_zero() {
        (
            format!(
                "{node} drained: weight 0 on {}; {started}, not waited for (--timeout 0): they end on their own, and are cut off if it stops first",
                on.join(", ")
            ),
            Outcome::Ok,
        )
    } else if left == 0 {
        (
            format!(
                "{node} drained: weight 0 on {}; {started}{}; nothing goes to it now: safe to work on it, then `lvslab undrain {node}`",
                on.join(", "),
                if at_start == 0 {
                    String::new()
                } else {
                    format!(", none after {:.1} s", took.as_secs_f64())
                }
            ),
            Outcome::Ok,
        )
    } else {
        (
            format!(
                "{node} is drained (weight 0 on {}) but {left} connection(s) are still open after {} s ({started}): its clients are cut off if it stops now (IPVS keeps an entry whose end it did not see, after a failover, until it times out); wait with `lvslab drain {node} --timeout SECS`, or `lvslab undrain {node}`",
                on.join(", "),
                deadline.as_secs()
            ),
            Outcome::Failed,
        )
    };
    setup.reporter.emit(Event::Info { text });
    setup.reporter.finish();
    Ok(outcome)
}

/// Writes `drained: VALUE` into the host's entry, keeping the rest of the file; nothing is
/// written unless the result loads. Returns the line that says what was written.
fn record(global: &Global, node: &str, drained: bool) -> miette::Result<String> {
    let path = &global.inventory;
    let text = std::fs::read_to_string(path)
        .map_err(|e| miette::miette!("cannot read inventory {}: {e}", path.display()))?;
    let edited = edit::put_flag(&text, &["hosts".into(), node.into()], "drained", drained)
        .map_err(|e| miette::miette!("{}: {e}", path.display()))?;
    super::set::write_checked(path, &edited.text)?;
    Ok(format!(
        "{}: hosts.{node}.drained: {drained} (written)",
        path.display()
    ))
}

/// Whether keepalived runs on a director (then it owns the IPVS table).
async fn keepalived_runs(hosts: &LvsHosts<'_>) -> bool {
    for d in &hosts.directors {
        if crate::live::keepalived_runs(&d.conn.session, &hosts.vip()).await {
            return true;
        }
    }
    false
}

/// Each director's weight for the real server (the lowest over its services), `None` where it
/// is not listed or the table cannot be read.
async fn listing(
    lvs: &crate::lvs::Lvs,
    directors: &[DirectorHost<'_>],
    address: std::net::IpAddr,
) -> BTreeMap<String, Option<u16>> {
    let mut out = BTreeMap::new();
    for d in directors {
        let weight = d
            .conn
            .session
            .read(&sh::ipvs_save())
            .await
            .ok()
            .and_then(|t| {
                lvs.client_services(&t)
                    .flat_map(|s| s.real_servers.iter())
                    .filter(|r| r.endpoint.address == address)
                    .map(|r| r.weight)
                    .min()
            });
        out.insert(d.director.name.clone(), weight);
    }
    out
}

/// The weights once every director that lists the server holds `want` (keepalived applies a
/// reload on its own time), or as they are after [`APPLIED_WAIT`].
async fn weight_applied(
    lvs: &crate::lvs::Lvs,
    directors: &[DirectorHost<'_>],
    address: std::net::IpAddr,
    want: u16,
) -> BTreeMap<String, Option<u16>> {
    let start = Instant::now();
    loop {
        let now = listing(lvs, directors, address).await;
        if now.values().all(|w| w.is_none_or(|w| w == want)) || start.elapsed() > APPLIED_WAIT {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// How a drain's wait ended.
struct Idle {
    at_start: usize,
    left: usize,
    took: Duration,
}

/// Waits until no director has a client's established connection to the server, up to
/// `deadline`; says each change of the count.
async fn until_idle(
    setup: &Setup,
    directors: &[DirectorHost<'_>],
    address: std::net::IpAddr,
    deadline: Duration,
) -> Idle {
    let start = Instant::now();
    let mut at_start = None;
    let mut said = None;
    loop {
        let mut per = Vec::new();
        let mut total = 0;
        let mut unread = false;
        for d in directors {
            let read = d.conn.session.read(&sh::ipvs_connections()).await;
            match read {
                Ok(table) => {
                    // A director's own connections are its health checks through the VIP
                    // (`via_vip`), not clients'.
                    let n = table
                        .iter()
                        .filter(|c| c.server.address == address && c.state == "ESTABLISHED")
                        .filter(|c| {
                            !directors
                                .iter()
                                .any(|h| h.director.address == c.client.address)
                        })
                        .count();
                    if n > 0 {
                        per.push(format!("{}: {n}", d.director.name));
                    }
                    total += n;
                }
                // Unknown is not none: the wait goes on until it can be read.
                Err(e) => {
                    unread = true;
                    per.push(format!("{}: connection table unread: {e}", d.director.name));
                }
            }
        }
        let at_start = *at_start.get_or_insert(total);
        if (total == 0 && !unread) || start.elapsed() >= deadline {
            return Idle {
                at_start,
                left: total.max(usize::from(unread)),
                took: start.elapsed(),
            };
        }
        if said != Some((total, unread)) {
            setup.reporter.emit(Event::Info {
                text: format!(
                    "[{:>4.1} s] {total} active connection(s) still on it ({}); waiting up to {} s",
                    start.elapsed().as_secs_f64(),
                    per.join(", "),
                    deadline.as_secs()
                ),
            });
            said = Some((total, unread));
        }
        tokio::time::sleep(POLL).await;
    }
}
