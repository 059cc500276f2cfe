//! `lvslab run PLAYBOOK...`: check everything first, then run.

use std::sync::Arc;

use super::Setup;
use super::args::{Global, RunArgs};
use crate::cli::outcome::Outcome;
use crate::playbook::Playbook;
use crate::playbook::runner::{RunOptions, RunResult, Runner};
use crate::report::Event;

pub async fn run(args: &RunArgs, global: &Global) -> miette::Result<Outcome> {
    // The inventory first: its secrets are masked in any error about the playbooks.
    let setup = Setup::new(global)?;
    let playbooks = args
        .playbooks
        .iter()
        .map(|p| Playbook::from_file(p, &setup.inventory.secrets))
        .collect::<Result<Vec<_>, _>>()?;
    // A playbook others can write decides what runs as root, as the inventory does.
    for p in &args.playbooks {
        for text in crate::perms::writable_by_others(p, "playbook") {
            setup.reporter.emit(Event::Warning { text });
        }
    }
    let mut extra = crate::inventory::Vars::new();
    for kv in &args.extra_vars {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| miette::miette!("-e {kv}: write KEY=VALUE"))?;
        extra.insert(k.to_string(), serde_yaml_scalar(v));
    }
    let tags = args
        .tags
        .as_ref()
        .map(|t| t.split(',').map(|s| s.trim().to_string()).collect());
    let what = format!(
        "lvslab run {}",
        args.playbooks
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(" ")
    );
    let (outcome, _) = run_with(&setup, &playbooks, global, tags, extra, &what).await?;
    setup.fleet.close().await;
    Ok(outcome)
}

/// `true`, `3` and `x` as YAML would read them.
fn serde_yaml_scalar(v: &str) -> serde_json::Value {
    serde_json::from_str(v).unwrap_or_else(|_| serde_json::Value::String(v.to_string()))
}

/// Run with an existing setup (so `up` can verify over the same connections).
pub async fn run_with(
    setup: &Setup,
    playbooks: &[Playbook],
    global: &Global,
    tags: Option<Vec<String>>,
    extra_vars: crate::inventory::Vars,
    what: &str,
) -> miette::Result<(Outcome, RunResult)> {
    let templates = Arc::new(Playbook::checked_templates(
        playbooks,
        global.playbooks.as_deref(),
        &setup.inventory,
    )?);
    let hosts = setup.host_names();
    setup.reporter.emit(Event::RunStart {
        what: what.to_string(),
        hosts: hosts.clone(),
        check: global.check,
    });
    let runner = Runner::new(
        setup.inventory.clone(),
        templates,
        setup.fleet.clone(),
        setup.reporter.clone(),
        RunOptions {
            check: global.check,
            diff: global.diff,
            forks: global.forks(),
            tags,
            extra_vars,
            limit: setup.limit.clone(),
        },
        setup.cancel.clone(),
    );
    let mut result = RunResult::default();
    runner.run(playbooks, &mut result).await;
    let outcome = setup.finish(&result, global.check, &hosts);
    Ok((outcome, result))
}
