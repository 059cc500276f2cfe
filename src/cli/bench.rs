//! `lvslab bench modes`: the same load through each forwarding method in turn, on the lab that
//! is up, and one table of what it cost and what crossed the director.

use std::sync::Arc;

use serde_json::json;

use super::Setup;
use super::args::{BenchModesArgs, Global};
use super::converge::up_playbooks;
use crate::cli::outcome::Outcome;
use crate::inventory::Inventory;
use crate::live::LvsHosts;
use crate::lvs::Forwarding;
use crate::playbook::Playbook;
use crate::playbook::runner::{RunOptions, RunResult, Runner};
use crate::probes::load::{self, Load};
use crate::report::{Event, Reporter};

/// One method's row: its load, or why there is none.
struct Row {
    forwarding: Forwarding,
    result: Result<Load, String>,
}

/// The inventory with another forwarding method.
fn with_forwarding(inventory: &Inventory, forwarding: Forwarding) -> Inventory {
    let mut inv = inventory.clone();
    if let Some(lvs) = &mut inv.lvs {
        for s in &mut lvs.services {
            s.forwarding = forwarding;
        }
    }
    inv
}

pub async fn modes(args: &BenchModesArgs, global: &Global) -> miette::Result<Outcome> {
    let setup = Setup::new(global)?;
    let lvs = setup.lvs()?;
    let own = lvs.forwarding();
    let management = args.mode;
    let playbooks = up_playbooks(management)
        .iter()
        .map(|name| Playbook::builtin(name, global.playbooks.as_deref(), &setup.inventory.secrets))
        .collect::<Result<Vec<_>, _>>()?;
    let templates = Arc::new(Playbook::checked_templates(
        &playbooks,
        global.playbooks.as_deref(),
        &setup.inventory,
        &[],
    )?);
    // The other methods first, the inventory's own last: the lab ends as the inventory says.
    let mut order: Vec<Forwarding> = Forwarding::ALL.into_iter().filter(|f| *f != own).collect();
    order.push(own);
    let info = |text: String| setup.reporter.emit(Event::Info { text });
    info(format!(
        "bench modes: {} requests per method, {} at once, from {}; the lab ends in {} again",
        args.requests,
        args.concurrency,
        setup
            .inventory
            .client()
            .map_or("this machine".to_string(), |c| c.name.clone()),
        own.keepalived_kind()
    ));
    let mut rows = Vec::new();
    for forwarding in order {
        if setup.cancel.is_cancelled() {
            break;
        }
        if forwarding == Forwarding::Nat && lvs.nat.is_none() {
            rows.push(Row {
                forwarding,
                result: Err("the inventory has no `nat:` network (a NAT lab: `lvslab lab up --forwarding nat`)".into()),
            });
            continue;
        }
        let inventory = Arc::new(with_forwarding(&setup.inventory, forwarding));
        let result = setup
            .cancel
            .guard(one(
                &setup, global, &inventory, &playbooks, &templates, args,
            ))
            .await
            .unwrap_or_else(|| Err("interrupted".into()));
        match &result {
            Ok(l) => info(format!(
                "  {}: {:.0} requests/s, p50 {:.1} ms, p99 {:.1} ms, {} failed",
                forwarding.keepalived_kind(),
                l.requests_per_s,
                l.p50_ms,
                l.p99_ms,
                l.failed
            )),
            Err(e) => info(format!("  {}: {e}", forwarding.keepalived_kind())),
        }
        rows.push(Row { forwarding, result });
    }
    info(table(&rows));
    setup.reporter.emit(Event::Result {
        what: "bench modes".into(),
        data: json!(
            rows.iter()
                .map(|r| match &r.result {
                    Ok(l) => json!({"forwarding": r.forwarding, "load": l}),
                    Err(e) => json!({"forwarding": r.forwarding, "error": e}),
                })
                .collect::<Vec<_>>()
        ),
    });
    setup.reporter.finish();
    setup.fleet.close().await;
    Ok(if setup.cancel.is_cancelled() {
        Outcome::Interrupted
    } else if rows.iter().all(|r| r.result.is_ok()) {
        Outcome::Ok
    } else {
        Outcome::Failed
    })
}

/// Converges the lab to `inventory`'s method (fresh connections: the facts must be the lab's
/// now), waits for the VRRP election, and runs the load.
async fn one(
    setup: &Setup,
    global: &Global,
    inventory: &Arc<Inventory>,
    playbooks: &[Playbook],
    templates: &Arc<crate::templates::Templates>,
    args: &BenchModesArgs,
) -> Result<Load, String> {
    let fleet = super::fleet(global);
    let quiet = Reporter::new(Vec::new(), inventory.secrets.clone());
    let runner = Runner::new(
        inventory.clone(),
        templates.clone(),
        fleet.clone(),
        quiet,
        RunOptions {
            forks: global.forks(),
            ..RunOptions::default()
        },
        setup.cancel.clone(),
    );
    let mut result = RunResult::default();
    runner.run(playbooks, &mut result).await;
    if Outcome::of_run(&result) != Outcome::Ok {
        let mut hosts: Vec<&String> = result.failed.iter().chain(&result.unreachable).collect();
        hosts.sort();
        fleet.close().await;
        return Err(format!(
            "could not converge (failed on {}; `lvslab up` with this method shows why)",
            hosts
                .iter()
                .map(|h| h.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let lvs = inventory.lvs.as_ref().ok_or("no lvs")?;
    let hosts = LvsHosts::connect(inventory, lvs, &fleet, &setup.reporter).await;
    crate::live::wait_for_election(&hosts).await;
    // The method serves before it is measured: a switch settles (keepalived reloads, routes
    // and neighbour entries change) within seconds; 20 answered requests in a row say it has.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let warm = hosts.http_answers(&hosts.url(), 20).await;
        let all_answered = warm.is_ok_and(|a| a.iter().all(|a| a.ok()));
        if all_answered || std::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    let measured = match hosts.active_director().await {
        None => Err("no director holds the VIP".to_string()),
        Some(d) if !d.conn.facts.has_ipvs() => Err(format!(
            "{} has no IPVS in its kernel (`lvslab lab up --vm`)",
            d.director.name
        )),
        Some(d) => load::measure(&hosts, &d, args.requests, args.concurrency).await,
    };
    fleet.close().await;
    measured
}

fn table(rows: &[Row]) -> String {
    let mut out = String::from(
        "\n| method | requests/s | p50 ms | p99 ms | failed | IPVS in B/req | IPVS out B/req | director rx B/req | director tx B/req | softirq ms |\n|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let m = r.forwarding.keepalived_kind();
        match &r.result {
            Ok(l) => out.push_str(&format!(
                "| {m} | {:.0} | {:.1} | {:.1} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {} |\n",
                l.requests_per_s,
                l.p50_ms,
                l.p99_ms,
                l.failed,
                l.per_request(l.ipvs_in_bytes),
                l.per_request(l.ipvs_out_bytes),
                l.per_request(l.rx_bytes),
                l.per_request(l.tx_bytes),
                l.softirq_ms.map_or("-".into(), |v| v.to_string()),
            )),
            Err(e) => out.push_str(&format!("| {m} | not measured: {e} |||||||||\n")),
        }
    }
    out.push_str(
        "IPVS out B/req: bytes of answers the director's IPVS handled (only NAT's come back through it). \
         director rx/tx: every network card of the active director. softirq: the director's kernel \
         (on a lab in one VM or namespaces, the kernel every node shares).",
    );
    out
}
