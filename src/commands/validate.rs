//! `lvslab validate`: the inventory, the built-in playbooks and any given ones, and the
//! templates, checked without contacting a host.

use crate::cli::{Global, ValidateArgs};
use crate::playbook::template::Templates;
use crate::playbook::{BUILTIN, Playbook};

pub fn validate(args: &ValidateArgs, global: &Global) -> miette::Result<i32> {
    let (inventory, warnings) = crate::inventory::load(&global.inventory)?;
    for w in &warnings {
        println!("warning: {w}");
    }
    let mut playbooks = Vec::new();
    for (name, _) in BUILTIN {
        playbooks.push(Playbook::builtin(name, global.playbooks.as_deref())?);
    }
    for p in &args.playbooks {
        playbooks.push(Playbook::from_file(p)?);
    }
    let mut dirs: Vec<std::path::PathBuf> = global
        .playbooks
        .iter()
        .map(|d| d.join("templates"))
        .collect();
    dirs.extend(playbooks.iter().flat_map(|p| p.template_dirs()));
    let templates = Templates::new(&dirs)?;
    for pb in &playbooks {
        pb.check(&inventory, &templates)
            .map_err(|e| miette::Report::new(*e))?;
    }
    println!(
        "{}: {} hosts, {} groups; {} playbooks and their templates are valid",
        global.inventory.display(),
        inventory.hosts.len(),
        inventory.groups.len(),
        playbooks.len()
    );
    Ok(crate::exit::OK)
}
