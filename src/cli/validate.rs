//! `lvslab validate`: the inventory, the built-in playbooks and any given ones, and the
//! templates, checked without contacting a host.

use super::args::{Global, ValidateArgs};
use crate::cli::outcome::Outcome;
use crate::playbook::{BUILTIN, Playbook};

pub fn validate(args: &ValidateArgs, global: &Global) -> miette::Result<Outcome> {
    let (inventory, warnings) = super::load_inventory(global)?;
    crate::secrets::register(&inventory.secrets);
    for w in &warnings {
        println!("warning: {w}");
    }
    let mut playbooks = Vec::new();
    // The built-in playbooks set up a load balancer: checked against an inventory that has
    // one. Without it, the inventory is what is wrong for `lvslab up`, not boot.yml's line.
    match (inventory.complete_lvs(), args.playbooks.is_empty()) {
        (Ok(_), _) => {
            for (name, _) in BUILTIN {
                playbooks.push(Playbook::builtin(
                    name,
                    global.playbooks.as_deref(),
                    &inventory.secrets,
                )?);
            }
        }
        (Err(why), true) => {
            return Err(miette::miette!(
                help = "see inventory.example.yml: `lvs:` (vip, vrrp, ...) and the groups directors and real_servers; to check only your own playbooks, name them: lvslab validate PLAYBOOK...",
                "{why}: `lvslab up` would have no load balancer to set up"
            ));
        }
        (Err(why), false) => {
            println!(
                "note: {why}: the built-in playbooks (`lvslab up`, `down`) are not checked against it"
            );
        }
    }
    for p in &args.playbooks {
        playbooks.push(Playbook::from_file(p, &inventory.secrets)?);
    }
    Playbook::checked_templates(&playbooks, global.playbooks.as_deref(), &inventory, &[])?;
    println!(
        "{}: {} hosts, {} groups; {} playbooks and their templates are valid",
        global.inventory.display(),
        inventory.hosts.len(),
        inventory.groups.len(),
        playbooks.len()
    );
    Ok(Outcome::Ok)
}
