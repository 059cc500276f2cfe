//! Packages through apt-get, dnf or yum: `sh/packages.rs`.

use super::{Answer, Call, State, change, read};
use crate::transport::fake::{failed, out};
use crate::transport::sh;

pub(super) fn answer(s: &mut State, call: &Call) -> Option<Answer> {
    let manager = s.pkg.clone();
    // apt-get's query names them after `for p in`, rpm's after `rpm -q`.
    let names: Vec<String> = match call.words.iter().position(|w| w == "in") {
        Some(i) if manager == "apt-get" => call.words[i + 1..]
            .iter()
            .take_while(|w| *w != "do")
            .map(|w| w.trim_end_matches(';').to_string())
            .collect(),
        _ => call
            .words
            .iter()
            .skip(2)
            .take_while(|w| *w != "|")
            .cloned()
            .collect(),
    };
    if call.is(sh::packages_missing(&manager, &names).line()) {
        let missing: String = names
            .iter()
            .filter(|n| !s.installed.contains(*n))
            .map(|n| format!("{n}\n"))
            .collect();
        return read(out(0, &missing));
    }
    let verb_at = if manager == "apt-get" { 3 } else { 1 };
    let names: Vec<String> = call.words.iter().skip(verb_at + 3).cloned().collect();
    if call.is(sh::packages_install(&manager, &names)) {
        return install(s, &manager, &names);
    }
    if call.is(sh::packages_remove(&manager, &names)) {
        if let Some(refused) = refused(s, &manager) {
            return change(refused);
        }
        for n in &names {
            s.installed.remove(n);
        }
        return change(out(0, &format!("Removing {} ...\n", names.join(" "))));
    }
    None
}

/// The manager's words to a user who is not root.
fn refused(s: &State, manager: &str) -> Option<crate::transport::ExecOutput> {
    if !s.unprivileged {
        return None;
    }
    Some(if manager == "apt-get" {
        failed(
            100,
            "E: Could not open lock file /var/lib/dpkg/lock-frontend - open (13: Permission denied)\n\
             E: Unable to acquire the dpkg frontend lock (/var/lib/dpkg/lock-frontend), are you root?\n",
        )
    } else {
        failed(
            1,
            "Error: This command has to be run with superuser privileges (under the root user on most systems).\n",
        )
    })
}

fn install(s: &mut State, manager: &str, names: &[String]) -> Option<Answer> {
    if let Some(refused) = refused(s, manager) {
        return change(refused);
    }
    if let Some(unknown) = names.iter().find(|n| !s.repository.contains(*n)) {
        return change(if manager == "apt-get" {
            failed(100, &format!("E: Unable to locate package {unknown}\n"))
        } else {
            failed(1, &format!("Error: Unable to find a match: {unknown}\n"))
        });
    }
    s.installed.extend(names.iter().cloned());
    let said: String = names
        .iter()
        .map(|n| format!("Setting up {n} ...\n"))
        .collect();
    change(out(0, &said))
}
