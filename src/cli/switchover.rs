//! `lvslab switchover NODE`: the VIP moved to the director NODE as a planned operation (before
//! maintenance of the one that holds it). The inventory says it: NODE gets the highest priority
//! and `state: MASTER`, the director that had them gets NODE's priority and `state: BACKUP`, so
//! a later `up` keeps the VIP where it went. The directors converge (keepalived reloads the new
//! priorities; the higher one takes over at once and sends its gratuitous ARPs). With `preempt:
//! false` a priority moves nothing, so keepalived is restarted on the holder: a stopping
//! keepalived sends priority 0 and the other takes over within its skew, and the restarted one
//! stays BACKUP. lvslab then waits until NODE is MASTER and holds the VIP alone.

use std::time::{Duration, Instant};

use super::Setup;
use super::args::{Global, SwitchoverArgs};
use super::converge::{connect, converge, interrupted};
use crate::cli::outcome::Outcome;
use crate::inventory::edit;
use crate::live::LvsHosts;
use crate::lvs::{DirectorState, Lvs, Management};
use crate::report::Event;
use crate::transport::sh;

/// How often the directors are read while the VIP moves.
const POLL: Duration = Duration::from_millis(200);

pub async fn switchover(args: &SwitchoverArgs, global: &Global) -> miette::Result<Outcome> {
    let node = args.node.as_str();
    let setup = Setup::new(global)?;
    let lvs = setup.lvs()?;
    let Some(vrrp) = &lvs.vrrp else {
        miette::bail!(
            "switchover moves the VIP between keepalived directors, and {} has no `lvs.vrrp` (manual mode: the VIP is on the first director)",
            global.inventory.display()
        );
    };
    let advert_int = u64::from(vrrp.advert_int);
    if lvs.director(node).is_none() {
        let names: Vec<&str> = lvs.directors.iter().map(|d| d.name.as_str()).collect();
        miette::bail!(
            "`{node}` is not a director of {} (directors: {})",
            global.inventory.display(),
            names.join(", ")
        );
    }
    // The inventory first: what the directors converge to, and what a later `up` keeps.
    let setup = match swapped(lvs, node) {
        None => {
            setup.reporter.emit(Event::Info {
                text: format!(
                    "{}: {node} has the highest priority already (the directors are converged to it all the same)",
                    global.inventory.display()
                ),
            });
            setup
        }
        Some((from, writes)) => {
            drop(setup);
            let written = record(global, &writes)?;
            let setup = Setup::new(global)?;
            setup.reporter.emit(Event::Info {
                text: format!("{written} ({node} takes over from {from})"),
            });
            setup
        }
    };
    let setup = setup.on_directors()?;
    let lvs = setup.lvs()?;
    let Some(hosts) = connect(&setup, lvs).await else {
        return Ok(interrupted(&setup));
    };
    let missing: Vec<&str> = lvs
        .directors
        .iter()
        .map(|d| d.name.as_str())
        .filter(|n| !hosts.directors.iter().any(|h| h.director.name == *n))
        .collect();
    if !missing.is_empty() {
        setup.reporter.emit(Event::Warning {
            text: format!(
                "{} could not be reached: the inventory says {node} holds the VIP, the directors do not know yet; run `lvslab switchover {node}` again",
                missing.join(", ")
            ),
        });
        setup.reporter.finish();
        return Ok(Outcome::Unreachable);
    }
    for d in &hosts.directors {
        if !crate::live::keepalived_runs(&d.conn.session, &hosts.vip()).await {
            setup.reporter.emit(Event::Warning {
                text: format!(
                    "keepalived does not run on {}: run `lvslab up` (the inventory already says {node} holds the VIP)",
                    d.director.name
                ),
            });
            setup.reporter.finish();
            return Ok(Outcome::Failed);
        }
    }

    let outcome = converge(
        &setup,
        global,
        Management::Keepalived,
        &format!("lvslab switchover {node}"),
    )
    .await?;
    if outcome != Outcome::Ok {
        setup.reporter.emit(Event::Warning {
            text: format!(
                "the inventory says {node} holds the VIP, but not every director converged to it (see the tasks above): run `lvslab switchover {node}` again"
            ),
        });
        return Ok(outcome);
    }
    let converged = Instant::now();
    // A reloaded priority moves the VIP within an advert or two; nopreempt keeps it where it
    // is, and keepalived is restarted on the holder after that wait.
    let preempt_wait = Duration::from_secs(3 * advert_int + 2);
    let deadline = Duration::from_secs(6 * advert_int + 15);
    let mut restarted: Option<String> = None;
    let moved = setup
        .cancel
        .guard(async {
            loop {
                let (done, holders) = moved_to(&hosts, node).await;
                if done {
                    return Ok(());
                }
                let elapsed = converged.elapsed();
                if elapsed >= deadline {
                    return Err(holders);
                }
                if restarted.is_none() && !hosts.lvs.preempts() && elapsed >= preempt_wait {
                    restarted = Some(restart_holder(&hosts, node, &setup).await);
                }
                tokio::time::sleep(POLL).await;
            }
        })
        .await;
    let took = converged.elapsed().as_secs_f64();
    let Some(moved) = moved else {
        return Ok(interrupted(&setup));
    };
    let how = match &restarted {
        Some(r) => format!(" ({r})"),
        None => String::new(),
    };
    let (text, outcome) = match moved {
        Ok(()) => (
            format!(
                "{node} holds the VIP (MASTER), {} BACKUP: {took:.1} s after the directors converged{how}; the inventory keeps it there (`lvslab switchover NODE` moves it again)",
                others(lvs, node)
            ),
            Outcome::Ok,
        ),
        Err(holders) => (
            format!(
                "after {took:.1} s {node} does not hold the VIP alone as MASTER{how}: {holders}; `lvslab status` shows the directors' states"
            ),
            Outcome::Failed,
        ),
    };
    setup.reporter.emit(Event::Info { text });
    setup.reporter.finish();
    Ok(outcome)
}

/// Inventory edits: each a key (dotted path) and its new value.
type Writes = Vec<(Vec<String>, String)>;

/// The inventory edits that make `node` the highest priority and MASTER, and the director that
/// had the highest priority BACKUP with `node`'s (the keys and values, and that director's
/// name); `None` when `node` has the highest priority already.
fn swapped(lvs: &Lvs, node: &str) -> Option<(String, Writes)> {
    let top = lvs.expected_master()?;
    let target = lvs.director(node)?;
    if top.name == target.name {
        return None;
    }
    let (top_priority, target_priority) =
        (top.vrrp.as_ref()?.priority, target.vrrp.as_ref()?.priority);
    if target_priority >= top_priority {
        return None;
    }
    let key = |host: &str, k: &str| vec!["hosts".into(), host.into(), "vrrp".into(), k.into()];
    Some((
        top.name.clone(),
        vec![
            (key(node, "priority"), top_priority.to_string()),
            (key(node, "state"), "MASTER".into()),
            (key(&top.name, "priority"), target_priority.to_string()),
            (key(&top.name, "state"), "BACKUP".into()),
        ],
    ))
}

/// Writes the edits into the inventory, keeping the rest of the file; nothing is written
/// unless the result loads. Returns the line that says what was written.
fn record(global: &Global, writes: &Writes) -> miette::Result<String> {
    let path = &global.inventory;
    let mut text = std::fs::read_to_string(path)
        .map_err(|e| miette::miette!("cannot read inventory {}: {e}", path.display()))?;
    let mut said = Vec::new();
    for (key, value) in writes {
        let edited =
            edit::set(&text, key, value).map_err(|e| miette::miette!("{}: {e}", path.display()))?;
        said.push(format!("{}: {value}", key.join(".")));
        text = edited.text;
    }
    super::set::write_checked(path, &text)?;
    Ok(format!("{}: {} (written)", path.display(), said.join(", ")))
}

/// Whether `node` is MASTER and holds the VIP alone; else the directors' states and holders
/// in words.
async fn moved_to(hosts: &LvsHosts<'_>, node: &str) -> (bool, String) {
    let states = hosts.director_states().await;
    let holders = hosts.vip_holders().await;
    let done = holders.len() == 1
        && holders[0].0 == node
        && states
            .iter()
            .all(|(n, s)| (n == node) == (*s == DirectorState::Master));
    let words: Vec<String> = states
        .iter()
        .map(|(n, s)| format!("{n} {}", s.word()))
        .collect();
    let held: Vec<&str> = holders.iter().map(|(h, _)| h.as_str()).collect();
    (
        done,
        format!(
            "{}; the VIP on {}",
            words.join(", "),
            if held.is_empty() {
                "no host".to_string()
            } else {
                held.join(" and ")
            }
        ),
    )
}

/// With nopreempt: keepalived restarted on the director that holds the VIP (not `node`), so
/// that it gives the VIP up (priority 0) and comes back BACKUP. Says what was done.
async fn restart_holder(hosts: &LvsHosts<'_>, node: &str, setup: &Setup) -> String {
    let holders = hosts.vip_holders().await;
    let Some(holder) = hosts
        .directors
        .iter()
        .find(|d| d.director.name != node && holders.iter().any(|(h, _)| *h == d.director.name))
    else {
        return "nopreempt: no other director held the VIP to restart".into();
    };
    let name = &holder.director.name;
    setup.reporter.emit(Event::Info {
        text: format!(
            "preempt: false keeps the VIP on {name} whatever the priorities: restarting keepalived there (it sends priority 0, {node} takes over, {name} comes back BACKUP)"
        ),
    });
    let line = sh::service_action(&holder.conn.facts.init, "keepalived", "restart");
    match crate::live::run(&holder.conn.session, &line).await {
        Ok(out) if out.success() => format!("keepalived restarted on {name}, as nopreempt needs"),
        Ok(out) => format!(
            "restarting keepalived on {name} failed: {}",
            out.stderr_str().trim()
        ),
        Err(e) => format!("restarting keepalived on {name} failed: {e}"),
    }
}

/// The directors other than `node`, in inventory order.
fn others(lvs: &Lvs, node: &str) -> String {
    lvs.directors
        .iter()
        .filter(|d| d.name != node)
        .map(|d| d.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}
