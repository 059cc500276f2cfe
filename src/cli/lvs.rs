//! The seed's lab as commands: `up` (converge, then verify), `verify`, `down` (teardown, then a
//! check that nothing is left), `status`, and the drills.

use super::Setup;
use super::args::{DownArgs, DrillArgs, DrillCommand, Global, UpArgs, VerifyArgs};
use super::run::run_with;
use crate::cli::outcome::Outcome;
use crate::drills::{self, Drill, DrillOptions, Repair};
use crate::lvs::Management;
use crate::playbook::Playbook;
use crate::playbook::runner::{RunOptions, RunResult, Runner};
use crate::probes::verify::VerifyOptions;
use crate::probes::{self, LvsHosts};
use crate::report::Event;
use crate::transport::BoxFuture;

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
    let playbooks = up_playbooks(management)
        .iter()
        .map(|name| Playbook::builtin(name, global.playbooks.as_deref(), &setup.inventory.secrets))
        .collect::<Result<Vec<_>, _>>()?;
    let what = format!("lvslab up ({} mode)", management.as_str());
    let (outcome, _) =
        run_with(&setup, &playbooks, global, None, Default::default(), &what).await?;
    if outcome != Outcome::Ok || args.no_verify || global.check {
        setup.fleet.close().await;
        return Ok(outcome);
    }
    let outcome = verify_with(&setup, &args.verify, Some(management)).await;
    setup.fleet.close().await;
    outcome
}

async fn verify_with(
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
async fn connect<'a>(setup: &'a Setup, lvs: &'a crate::lvs::Lvs) -> Option<LvsHosts<'a>> {
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

fn interrupted(setup: &Setup) -> Outcome {
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
        None,
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

/// The drill's options; the picture's default name says what and when.
fn drill_options(args: &DrillArgs, what: &str) -> DrillOptions {
    let svg = if args.no_svg {
        None
    } else {
        Some(args.svg.clone().unwrap_or_else(|| {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or_default();
            std::path::PathBuf::from(format!("lvslab-drill-{what}-{now}.svg"))
        }))
    };
    DrillOptions {
        rate: args.rate,
        repeat: args.repeat,
        svg,
    }
}

/// A drill's repair: the built-in keepalived-mode playbooks, limited to one host, on a
/// cancel of its own (a repair after Ctrl-C must still run).
struct UpOnHost<'a> {
    setup: &'a Setup,
    global: &'a Global,
}

impl Repair for UpOnHost<'_> {
    fn converge<'a>(&'a self, host: &'a str) -> BoxFuture<'a, Result<String, String>> {
        Box::pin(async move {
            let setup = self.setup;
            let playbooks = up_playbooks(Management::Keepalived)
                .iter()
                .map(|name| {
                    Playbook::builtin(
                        name,
                        self.global.playbooks.as_deref(),
                        &setup.inventory.secrets,
                    )
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| e.to_string())?;
            let templates = Playbook::checked_templates(
                &playbooks,
                self.global.playbooks.as_deref(),
                &setup.inventory,
            )
            .map_err(|e| e.to_string())?;
            let changed_before = changed_on(setup, host);
            let runner = Runner::new(
                setup.inventory.clone(),
                std::sync::Arc::new(templates),
                setup.fleet.clone(),
                setup.reporter.clone(),
                RunOptions {
                    check: false,
                    diff: false,
                    forks: 1,
                    tags: None,
                    extra_vars: Default::default(),
                    limit: Some(std::iter::once(host.to_string()).collect()),
                },
                crate::cancel::Cancel::new(),
            );
            let mut result = RunResult::default();
            runner.run(&playbooks, &mut result).await;
            if !result.failed.is_empty() || !result.unreachable.is_empty() {
                return Err(format!("lvslab up failed on {host} (see the tasks above)"));
            }
            let changed = changed_on(setup, host).saturating_sub(changed_before);
            Ok(format!("{changed} changed"))
        })
    }

    fn reconnect<'a>(
        &'a self,
        host: &'a str,
    ) -> BoxFuture<'a, Result<crate::transport::Session, String>> {
        Box::pin(async move {
            let inventory_host = self
                .setup
                .inventory
                .host(host)
                .ok_or_else(|| format!("{host} is not in the inventory"))?;
            // A fleet of its own: the run's fleet keeps the lost connection.
            let fleet = super::fleet(self.global);
            let connected = fleet
                .connect(inventory_host)
                .await
                .map_err(|e| e.to_string())?;
            Ok(connected.session.clone())
        })
    }
}

fn changed_on(setup: &Setup, host: &str) -> u32 {
    setup
        .reporter
        .recap(&[host.to_string()])
        .first()
        .map_or(0, |r| r.changed)
}

pub async fn drill(cmd: &DrillCommand, global: &Global) -> miette::Result<Outcome> {
    let mut setup = Setup::new(global)?;
    let outcome = {
        let lvs = setup.lvs()?;
        let Some(hosts) = connect(&setup, lvs).await else {
            return Ok(interrupted(&setup));
        };
        let repair = UpOnHost {
            setup: &setup,
            global,
        };
        let (args, what) = match cmd {
            DrillCommand::Failover(a) => (&a.drill, format!("failover-{}", a.kind.word())),
            DrillCommand::Realserver(a) => {
                (&a.drill, format!("realserver-{}-{}", a.node, a.kind.word()))
            }
            DrillCommand::Reboot(a) => (&a.drill, format!("reboot-{}", a.node)),
        };
        let drill = Drill {
            hosts: &hosts,
            reporter: &setup.reporter,
            cancel: &setup.cancel,
            options: drill_options(args, &what),
            repair: &repair,
        };
        let result = match cmd {
            DrillCommand::Failover(a) => drills::failover(&drill, a.kind).await,
            DrillCommand::Realserver(a) => drills::realserver(&drill, &a.node, a.kind).await,
            DrillCommand::Reboot(a) => drills::reboot(&drill, &a.node).await,
        };
        setup.fleet.close().await;
        result.map_err(|e| miette::miette!("{e}"))
    };
    let outcome = match outcome {
        Ok(o) => Outcome::of_findings(&o.findings),
        Err(e) => {
            setup.reporter.finish();
            return Err(e);
        }
    };
    if !matches!(cmd, DrillCommand::Reboot(_)) || outcome == Outcome::Interrupted {
        setup.reporter.finish();
        return Ok(outcome);
    }
    // The lab as the reboot left it, on new connections, without converging first.
    setup.fleet = super::fleet(global);
    setup.reporter.emit(Event::Info {
        text: "\nverify after the reboot, without converging:".into(),
    });
    let verified = verify_with(&setup, &VerifyArgs { requests: 20 }, None).await?;
    setup.fleet.close().await;
    Ok(outcome.max(verified))
}
