//! `lvslab run PLAYBOOK...`: check everything first, then run.

use std::sync::Arc;

use super::Setup;
use super::args::{Global, RunArgs};
use crate::cli::outcome::Outcome;
use crate::playbook::Playbook;
use crate::playbook::runner::{RunOptions, RunResult, Runner};
use crate::report::Event;

pub async fn run(args: &RunArgs, global: &Global) -> miette::Result<Outcome> {
    if let Some(answer) = args.ansible_answer() {
        return Err(miette::miette!("{answer}"));
    }
    if args.list_tasks || args.list_hosts {
        return list(args, global);
    }
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
    let extra = extra_vars(&args.extra_vars)?;
    if let Some(name) = &args.start_at_task
        && Runner::start_of(&playbooks, name).is_none()
    {
        return Err(miette::miette!(
            "--start-at-task {name:?}: no task of these playbooks has that name (nothing was done)"
        ));
    }
    let select = Selection {
        tags: args.tags.as_deref().map(words),
        skip_tags: args.skip_tags.as_deref().map(words).unwrap_or_default(),
        start_at_task: args.start_at_task.clone(),
    };
    let what = format!(
        "lvslab run {}",
        args.playbooks
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(" ")
    );
    let (outcome, _) = run_with(&setup, &playbooks, global, select, extra, &what).await?;
    setup.fleet.close().await;
    Ok(outcome)
}

/// `a, b,c` as words.
fn words(list: &str) -> Vec<String> {
    list.split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Which tasks run: `--tags`, `--skip-tags`, `--start-at-task` (the default: all).
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub tags: Option<Vec<String>>,
    pub skip_tags: Vec<String>,
    pub start_at_task: Option<String>,
}

/// `-e` values in order, the later winning: `KEY=VALUE`, a JSON object, or `@FILE` holding a
/// YAML (or JSON) map.
fn extra_vars(given: &[String]) -> miette::Result<crate::inventory::Vars> {
    let mut extra = crate::inventory::Vars::new();
    for e in given {
        if let Some(path) = e.strip_prefix('@') {
            let text = std::fs::read_to_string(path)
                .map_err(|err| miette::miette!("-e @{path}: cannot read it: {err}"))?;
            let vars: crate::inventory::Vars = serde_saphyr::from_str(&text)
                .map_err(|err| miette::miette!("-e @{path}: not a YAML map of variables: {err}"))?;
            extra.extend(vars);
        } else if e.trim_start().starts_with('{') {
            let vars: crate::inventory::Vars = serde_json::from_str(e)
                .map_err(|err| miette::miette!("-e {e}: not a JSON object: {err}"))?;
            extra.extend(vars);
        } else {
            let (k, v) = e.split_once('=').ok_or_else(|| {
                miette::miette!("-e {e}: write KEY=VALUE, a JSON object, or @FILE")
            })?;
            extra.insert(k.to_string(), serde_yaml_scalar(v));
        }
    }
    Ok(extra)
}

/// `--list-tasks` / `--list-hosts`: what would run, from the files alone.
fn list(args: &RunArgs, global: &Global) -> miette::Result<Outcome> {
    let (inventory, _) = super::load_inventory(global)?;
    let limit = super::limit_of(global, &inventory)?;
    let mut out = String::new();
    for path in &args.playbooks {
        let pb = Playbook::from_file(path, &inventory.secrets)?;
        out.push_str(&format!("playbook: {}\n", path.display()));
        for play in &pb.plays {
            let hosts: Vec<String> = inventory
                .select(&play.hosts.value)
                .unwrap_or_default()
                .iter()
                .map(|h| h.name.clone())
                .filter(|h| limit.as_ref().is_none_or(|l| l.contains(h)))
                .collect();
            out.push_str(&format!(
                "  play `{}` (hosts: {})",
                play.name, play.hosts.value
            ));
            if args.list_hosts {
                out.push_str(&format!(": {} host(s): {}", hosts.len(), hosts.join(", ")));
            }
            out.push('\n');
            if args.list_tasks {
                for t in &play.tasks {
                    let tags = &t.value.tags.0;
                    out.push_str(&format!("    {}", t.value.title()));
                    if !tags.is_empty() {
                        out.push_str(&format!("  [tags: {}]", tags.join(", ")));
                    }
                    out.push('\n');
                }
            }
        }
    }
    Ok(super::outcome::write_stdout(out.as_bytes()))
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
    select: Selection,
    extra_vars: crate::inventory::Vars,
    what: &str,
) -> miette::Result<(Outcome, RunResult)> {
    let extra_names: Vec<String> = extra_vars.keys().cloned().collect();
    let templates = Arc::new(Playbook::checked_templates(
        playbooks,
        global.playbooks.as_deref(),
        &setup.inventory,
        &extra_names,
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
            tags: select.tags,
            skip_tags: select.skip_tags,
            start_at_task: select.start_at_task,
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
