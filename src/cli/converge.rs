//! The load balancer's life as commands: `up` (converge, then verify), `verify`, `down`
//! (teardown, then a check that nothing is left) and `status`. The drills are in `drill.rs`.

use super::Setup;
use super::args::{DownArgs, Global, UpArgs, VerifyArgs};
use super::run::run_with;
use crate::cli::outcome::Outcome;
use crate::live::LvsHosts;
use crate::lvs::Management;
use crate::playbook::Playbook;
use crate::probes;
use crate::probes::verify::VerifyOptions;
use crate::report::Event;

/// The built-in playbooks `up` runs for a mode: lvslab-boot, the real servers, then the
/// directors.
pub fn up_playbooks(management: Management) -> [&'static str; 3] {
    match management {
        Management::Keepalived => ["boot.yml", "real-servers.yml", "keepalived.yml"],
        Management::Manual => ["boot.yml", "real-servers.yml", "manual.yml"],
    }
}

pub async fn up(args: &UpArgs, global: &Global) -> miette::Result<Outcome> {
    let setup = Setup::new(global)?;
    setup.lvs()?;
    let management = args.mode;
    let what = format!("lvslab up ({} mode)", management.as_str());
    let outcome = converge(&setup, global, management, &what).await?;
    if outcome != Outcome::Ok || args.no_verify || global.check {
        setup.fleet.close().await;
        return Ok(outcome);
    }
    let outcome = verify_with(&setup, &args.verify, Some(management)).await;
    setup.fleet.close().await;
    outcome
}

/// Runs `up`'s playbooks for `management` on the setup's hosts (its `--limit`), as `what`.
pub(super) async fn converge(
    setup: &Setup,
    global: &Global,
    management: Management,
    what: &str,
) -> miette::Result<Outcome> {
    let playbooks = up_playbooks(management)
        .iter()
        .map(|name| Playbook::builtin(name, global.playbooks.as_deref(), &setup.inventory.secrets))
        .collect::<Result<Vec<_>, _>>()?;
    let (outcome, _) = run_with(
        setup,
        &playbooks,
        global,
        Default::default(),
        Default::default(),
        what,
    )
    .await?;
    Ok(outcome)
}

pub(super) async fn verify_with(
    setup: &Setup,
    args: &VerifyArgs,
    management: Option<Management>,
) -> miette::Result<Outcome> {
    let lvs = setup.lvs()?;
    let Some(hosts) = connect(setup, lvs).await else {
        return Ok(interrupted(setup));
    };
    let findings = probes::verify::verify(
        &hosts,
        VerifyOptions {
            requests: args.requests,
            management,
        },
        &setup.reporter,
        &setup.cancel,
    )
    .await;
    interrupted_note(setup, findings.interrupted);
    setup.reporter.finish();
    Ok(Outcome::of_findings(&findings))
}

/// The load balancer's hosts, connected; `None` after Ctrl-C.
pub(super) async fn connect<'a>(
    setup: &'a Setup,
    lvs: &'a crate::lvs::Lvs,
) -> Option<LvsHosts<'a>> {
    setup
        .cancel
        .guard(LvsHosts::connect(
            &setup.inventory,
            lvs,
            &setup.fleet,
            &setup.reporter,
        ))
        .await
}

pub(super) fn interrupted(setup: &Setup) -> Outcome {
    interrupted_note(setup, true);
    setup.reporter.finish();
    Outcome::Interrupted
}

fn interrupted_note(setup: &Setup, interrupted: bool) {
    if interrupted {
        setup.reporter.emit(Event::Warning {
            text: "interrupted: the probes in flight were ended; nothing was changed".into(),
        });
    }
}

pub async fn verify(args: &VerifyArgs, global: &Global) -> miette::Result<Outcome> {
    let setup = Setup::new(global)?;
    let outcome = verify_with(&setup, args, None).await;
    setup.fleet.close().await;
    outcome
}

pub async fn down(args: &DownArgs, global: &Global) -> miette::Result<Outcome> {
    let setup = Setup::new(global)?;
    let lvs = setup.lvs()?;
    let playbook = Playbook::builtin(
        "teardown.yml",
        global.playbooks.as_deref(),
        &setup.inventory.secrets,
    )?;
    let mut extra = crate::inventory::Vars::new();
    extra.insert("purge".into(), serde_json::Value::Bool(args.purge));
    let (outcome, _) = run_with(
        &setup,
        std::slice::from_ref(&playbook),
        global,
        Default::default(),
        extra,
        "lvslab down",
    )
    .await?;
    if outcome != Outcome::Ok || global.check {
        setup.fleet.close().await;
        return Ok(outcome);
    }
    let Some(hosts) = connect(&setup, lvs).await else {
        return Ok(interrupted(&setup));
    };
    let findings = probes::clean::verify_clean(&hosts, &setup.reporter, &setup.cancel).await;
    interrupted_note(&setup, findings.interrupted);
    setup.reporter.finish();
    setup.fleet.close().await;
    Ok(Outcome::of_findings(&findings))
}

pub async fn status(global: &Global) -> miette::Result<Outcome> {
    let setup = Setup::new(global)?;
    let lvs = setup.lvs()?;
    let Some(hosts) = connect(&setup, lvs).await else {
        return Ok(interrupted(&setup));
    };
    let outcome = match setup.cancel.guard(probes::status::status(&hosts)).await {
        Some(text) => {
            setup.reporter.emit(Event::Info { text });
            if hosts.unreachable.is_empty() {
                Outcome::Ok
            } else {
                Outcome::Unreachable
            }
        }
        None => Outcome::Interrupted,
    };
    setup.reporter.finish();
    setup.fleet.close().await;
    Ok(outcome)
}
