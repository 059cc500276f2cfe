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
    for (name, _) in BUILTIN {
        playbooks.push(Playbook::builtin(
            name,
            global.playbooks.as_deref(),
            &inventory.secrets,
        )?);
    }
    for p in &args.playbooks {
        playbooks.push(Playbook::from_file(p, &inventory.secrets)?);
    }
    Playbook::checked_templates(&playbooks, global.playbooks.as_deref(), &inventory)?;
    println!(
        "{}: {} hosts, {} groups; {} playbooks and their templates are valid",
        global.inventory.display(),
        inventory.hosts.len(),
        inventory.groups.len(),
        playbooks.len()
    );
    Ok(Outcome::Ok)
}
