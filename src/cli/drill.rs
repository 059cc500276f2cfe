//! `lvslab drill ...`: the failure drills on the load balancer, each repaired by `up` on the
//! failed host where it must be, and verified after.

use super::Setup;
use super::args::{DrillArgs, DrillCommand, Global, VerifyArgs};
use super::converge::{connect, interrupted, up_playbooks, verify_with};
use crate::cli::outcome::Outcome;
use crate::drills::{self, Drill, DrillOptions, Repair};
use crate::lvs::Management;
use crate::playbook::Playbook;
use crate::playbook::runner::{RunOptions, RunResult, Runner};
use crate::report::Event;
use crate::transport::BoxFuture;

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
        margin_ms: args.margin,
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
                &[],
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
                    limit: Some(std::iter::once(host.to_string()).collect()),
                    ..RunOptions::default()
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
            DrillCommand::Failover(a) => drills::failover(&drill, a.kind, a.hold).await,
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
