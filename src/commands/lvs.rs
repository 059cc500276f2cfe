//! The seed's lab as commands: `up` (converge, then verify), `verify`, `down` (teardown, then a
//! check that nothing is left), `status`, and the drills.

use crate::cli::{DownArgs, DrillCommand, Global, Mode, UpArgs, VerifyArgs};
use crate::commands::Setup;
use crate::commands::run::run_with;
use crate::playbook::Playbook;
use crate::probes;

fn need_lvs(setup: &Setup) -> miette::Result<()> {
    if setup.inventory.lvs.is_none() {
        return Err(miette::miette!(
            help = "see inventory.example.yml: vip, port, scheduler, vrrp, and the groups directors and real_servers",
            "{} has no `lvs:` section",
            setup.inventory.path.display()
        ));
    }
    for g in ["directors", "real_servers"] {
        if setup
            .inventory
            .group_members(g)
            .is_none_or(|m| m.is_empty())
        {
            return Err(miette::miette!(
                "{} has no hosts in group `{g}`, which the LVS lab needs",
                setup.inventory.path.display()
            ));
        }
    }
    Ok(())
}

pub async fn up(args: &UpArgs, global: &Global) -> miette::Result<i32> {
    let setup = Setup::new(global)?;
    need_lvs(&setup)?;
    let name = match args.mode {
        Mode::Keepalived => "keepalived.yml",
        Mode::Manual => "lvs-dr.yml",
    };
    let playbook = Playbook::builtin(name, global.playbooks.as_deref())?;
    let what = format!(
        "lvslab up ({} mode)",
        if args.mode == Mode::Manual {
            "manual"
        } else {
            "keepalived"
        }
    );
    let (code, result) = run_with(
        &setup,
        std::slice::from_ref(&playbook),
        global,
        None,
        Default::default(),
        &what,
    )
    .await?;
    if code != crate::exit::OK || args.no_verify || global.check || result.interrupted {
        return Ok(code);
    }
    let code = probes::verify(&setup, &args.verify, Some(args.mode)).await;
    setup.fleet.close().await;
    code
}

pub async fn verify(args: &VerifyArgs, global: &Global) -> miette::Result<i32> {
    let setup = Setup::new(global)?;
    need_lvs(&setup)?;
    let code = probes::verify(&setup, args, None).await;
    setup.fleet.close().await;
    code
}

pub async fn down(args: &DownArgs, global: &Global) -> miette::Result<i32> {
    let setup = Setup::new(global)?;
    need_lvs(&setup)?;
    let playbook = Playbook::builtin("teardown.yml", global.playbooks.as_deref())?;
    let mut extra = crate::inventory::Vars::new();
    extra.insert("purge".into(), serde_json::Value::Bool(args.purge));
    let (code, result) = run_with(
        &setup,
        std::slice::from_ref(&playbook),
        global,
        None,
        extra,
        "lvslab down",
    )
    .await?;
    if code != crate::exit::OK || global.check || result.interrupted {
        return Ok(code);
    }
    let code = probes::verify_clean(&setup).await;
    setup.fleet.close().await;
    code
}

pub async fn status(global: &Global) -> miette::Result<i32> {
    let setup = Setup::new(global)?;
    need_lvs(&setup)?;
    let code = probes::status(&setup).await;
    setup.fleet.close().await;
    code
}

pub async fn drill(cmd: &DrillCommand, global: &Global) -> miette::Result<i32> {
    let setup = Setup::new(global)?;
    need_lvs(&setup)?;
    match cmd {
        DrillCommand::Failover => probes::drill::failover(&setup).await,
        DrillCommand::Realserver { node } => probes::drill::realserver(&setup, node).await,
    }
}
