//! `lvslab set KEY=VALUE...`: values of the inventory changed in place (see
//! [`crate::inventory::edit`]); written only when every key exists and the result loads.

use std::os::unix::fs::PermissionsExt;

use super::args::{Global, SetArgs};
use crate::cli::outcome::Outcome;
use crate::inventory::edit;

pub fn set(args: &SetArgs, global: &Global) -> miette::Result<Outcome> {
    let path = &global.inventory;
    let before = std::fs::read_to_string(path)
        .map_err(|e| miette::miette!("cannot read inventory {}: {e}", path.display()))?;
    let mut text = before.clone();
    let mut lines = Vec::new();
    for arg in &args.assignments {
        let (key, value) = edit::assignment(arg).map_err(|e| miette::miette!("{e}"))?;
        let edited = edit::set(&text, &key, &value)
            .map_err(|e| miette::miette!("{}: {e}", path.display()))?;
        lines.push(format!("{}: {} -> {}", key.join("."), edited.was, value));
        text = edited.text;
    }
    if text == before {
        // Still checked: an inventory that does not load is said, not called unchanged.
        load_checked(path, &text)?;
        println!("{}: unchanged", path.display());
        return Ok(Outcome::Ok);
    }
    write_checked(path, &text)?;
    for line in lines {
        println!("{}: {line}", path.display());
    }
    Ok(Outcome::Ok)
}

/// Fails unless `text` is an inventory lvslab takes (what `path` would hold).
fn load_checked(path: &std::path::Path, text: &str) -> miette::Result<()> {
    crate::inventory::load_str(path, text.to_string())
        .map(|_| ())
        .map_err(|e| {
            miette::Report::new(*e).wrap_err(format!(
                "not written: {} would not load after this change",
                path.display()
            ))
        })
}

/// Writes an edited inventory in place (atomically, its mode kept) once it loads; nothing is
/// written otherwise. `set`, `drain` and `switchover` change the file through it.
pub(super) fn write_checked(path: &std::path::Path, text: &str) -> miette::Result<()> {
    load_checked(path, text)?;
    let mode = std::fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o7777)
        .unwrap_or(0o600);
    crate::lab::write_atomically(path, text.as_bytes(), mode).map_err(|e| miette::miette!("{e}"))
}
