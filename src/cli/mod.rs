//! The command line: the arguments ([`args`]), and one handler per command, which puts the
//! library parts (inventory, playbooks, probes, drills, the lab) together and says how the
//! command ended ([`Outcome`]); [`dispatch`] turns that into the exit code.

pub mod adhoc;
pub mod args;
pub mod bench;
pub mod converge;
pub mod drain;
pub mod drill;
pub mod lab;
pub mod outcome;
pub mod run;
pub mod set;
pub mod switchover;
pub mod validate;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::CommandFactory;

use self::outcome::Outcome;
use crate::cancel::Cancel;
use crate::fleet::Fleet;
use crate::inventory::Inventory;
use crate::lock::HostLocks;
use crate::playbook::runner::RunResult;
use crate::report::{self, Event, Reporter};
use crate::transport::ssh::SshOptions;
pub use args::{Cli, Command, Global};

/// Runs the command and returns its exit code.
pub async fn dispatch(cli: Cli) -> i32 {
    let g = &cli.global;
    let unread = g.unread_by(&cli.command);
    if !unread.is_empty() {
        for why in unread {
            eprintln!("lvslab: {why}");
        }
        eprintln!("lvslab: nothing was done");
        return Outcome::Input.code();
    }
    let result = match cli.command {
        Command::Up(args) => converge::up(&args, g).await,
        Command::Verify(args) => converge::verify(&args, g).await,
        Command::Down(args) => converge::down(&args, g).await,
        Command::Status => converge::status(g).await,
        Command::Drill(cmd) => drill::drill(&cmd, g).await,
        Command::Bench(args::BenchCommand::Modes(args)) => bench::modes(&args, g).await,
        Command::Run(args) => run::run(&args, g).await,
        Command::Exec(args) => adhoc::exec(&args, g).await,
        Command::Ping => adhoc::ping(g).await,
        Command::Validate(args) => validate::validate(&args, g),
        Command::Set(args) => set::set(&args, g),
        Command::Drain(args) => drain::drain(&args, g, true).await,
        Command::Undrain(args) => {
            let args = args::DrainArgs {
                node: args.node,
                timeout: 0,
            };
            drain::drain(&args, g, false).await
        }
        Command::Switchover(args) => switchover::switchover(&args, g).await,
        Command::Lab(cmd) => lab::run(cmd, g).await,
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "lvslab", &mut script);
            Ok(outcome::write_stdout(&script))
        }
    };
    match result {
        Ok(outcome) => outcome.code(),
        Err(report) => {
            eprintln!(
                "{}",
                crate::secrets::mask_registered(&format!("{report:?}"))
            );
            Outcome::Input.code()
        }
    }
}

/// Connections to the hosts as the options say (SSH timeouts, trust on first use).
pub fn fleet(global: &Global) -> Arc<Fleet> {
    Arc::new(Fleet::ssh(
        SshOptions {
            connect_timeout: Duration::from_secs(global.connect_timeout.max(1)),
            accept_new_host_keys: global.accept_new_host_keys,
        },
        Duration::from_secs(global.command_timeout.max(1)),
    ))
}

/// The inventory, with the warnings about it and about `--playbooks DIR` (a directory others
/// can write decides what runs as root, as the inventory does).
/// The hosts `--limit` leaves in scope (`None`: all), or the pattern's unknown name.
pub fn limit_of(
    global: &Global,
    inventory: &crate::inventory::Inventory,
) -> miette::Result<Option<HashSet<String>>> {
    let Some(pattern) = &global.limit else {
        return Ok(None);
    };
    let hosts = inventory.select(pattern).map_err(|name| {
        miette::miette!(
            "--limit {pattern}: `{name}` is no host or group of {}",
            global.inventory.display()
        )
    })?;
    Ok(Some(hosts.iter().map(|h| h.name.clone()).collect()))
}

pub fn load_inventory(global: &Global) -> miette::Result<(Inventory, Vec<String>)> {
    let (inventory, mut warnings) = crate::inventory::load(&global.inventory)?;
    if let Some(dir) = &global.playbooks {
        warnings.extend(crate::perms::writable_by_others(dir, "playbook directory"));
    }
    Ok((inventory, warnings))
}

/// What every host-facing command needs: the checked inventory, the views, the connections,
/// the locks that keep two runs off the same hosts, and Ctrl-C as a [`Cancel`].
pub struct Setup {
    pub inventory: Arc<Inventory>,
    pub reporter: Reporter,
    pub fleet: Arc<Fleet>,
    pub limit: Option<HashSet<String>>,
    pub started: Instant,
    pub cancel: Cancel,
    _lock: HostLocks,
}

impl Setup {
    pub fn new(global: &Global) -> miette::Result<Setup> {
        let (inventory, warnings) = load_inventory(global)?;
        crate::secrets::register(&inventory.secrets);
        let limit = limit_of(global, &inventory)?;
        let in_scope: Vec<&crate::inventory::Host> = inventory
            .hosts
            .iter()
            .filter(|h| {
                limit
                    .as_ref()
                    .is_none_or(|l: &HashSet<String>| l.contains(&h.name))
            })
            .collect();
        let lock = crate::lock::lock_dir()
            .and_then(|dir| HostLocks::acquire(&dir, &global.inventory, &in_scope))
            .map_err(|e| miette::miette!("{e}"))?;
        let reporter = report::reporter(
            global.json,
            global.no_progress,
            global.verbose,
            inventory.secrets.clone(),
        );
        for w in warnings {
            reporter.emit(Event::Warning { text: w });
        }
        let fleet = fleet(global);
        Ok(Setup {
            inventory: Arc::new(inventory),
            reporter,
            fleet,
            limit,
            started: Instant::now(),
            cancel: cancel_on_ctrl_c(),
            _lock: lock,
        })
    }

    /// Hosts in scope (inventory order, `--limit` applied).
    pub fn host_names(&self) -> Vec<String> {
        self.inventory
            .hosts
            .iter()
            .filter(|h| self.limit.as_ref().is_none_or(|l| l.contains(&h.name)))
            .map(|h| h.name.clone())
            .collect()
    }

    /// The load balancer, or an input error saying what the inventory lacks.
    pub fn lvs(&self) -> miette::Result<&crate::lvs::Lvs> {
        self.inventory.complete_lvs().map_err(|why| {
            miette::miette!(
                help = "see inventory.example.yml: vip, port, scheduler, vrrp, and the groups directors and real_servers",
                "{why}"
            )
        })
    }

    /// This setup with the plays limited to the directors (`drain`, `switchover`: the change is
    /// theirs alone).
    pub fn on_directors(mut self) -> miette::Result<Setup> {
        let directors = self
            .lvs()?
            .directors
            .iter()
            .map(|d| d.name.clone())
            .collect();
        self.limit = Some(directors);
        Ok(self)
    }

    /// Print the recap, and turn the result into how the command ended.
    pub fn finish(&self, result: &RunResult, check: bool, hosts: &[String]) -> Outcome {
        let trips = self.fleet.round_trips();
        let mut recap = self.reporter.recap(hosts);
        for r in &mut recap {
            r.round_trips = trips.get(&r.host).copied().unwrap_or(0);
            r.unreachable |= result.unreachable.contains(&r.host);
        }
        self.reporter.emit(Event::Recap {
            hosts: recap,
            elapsed_ms: self.started.elapsed().as_millis() as u64,
            check,
        });
        self.reporter.finish();
        Outcome::of_run(result)
    }
}

/// A [`Cancel`] set by the first Ctrl-C (SIGINT) this process receives; a second Ctrl-C ends
/// the process at once (exit 130), for when winding down takes too long for the user.
pub fn cancel_on_ctrl_c() -> Cancel {
    let cancel = Cancel::new();
    let flag = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            flag.cancel();
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("lvslab: interrupted twice: exiting now");
                std::process::exit(Outcome::Interrupted.code());
            }
        }
    });
    cancel
}
