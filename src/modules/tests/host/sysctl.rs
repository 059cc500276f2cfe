//! Kernel settings, lvslab's sysctl file and the originals it keeps: `sh/sysctl.rs`.

use super::{Answer, Call, File, State, change, done, read};
use crate::transport::fake::{failed, out};
use crate::transport::sh::{self, STATE_DIR, SYSCTL_FILE};

fn proc_path(key: &str) -> String {
    format!("/proc/sys/{}", key.replace('.', "/"))
}

fn orig_path(key: &str) -> String {
    format!("{STATE_DIR}/sysctl-orig/{key}")
}

/// A value as the kernel prints it: numbers apart by tabs.
fn as_kernel_prints(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join("\t")
}

/// Whether a line of the sysctl file sets `key` (sed's `^KEY *=`).
fn sets(line: &str, key: &str) -> bool {
    line.strip_prefix(key)
        .is_some_and(|rest| rest.trim_start_matches(' ').starts_with('='))
}

pub(super) fn answer(s: &mut State, call: &Call) -> Option<Answer> {
    let (_, rest) = call.line.split_once("/sysctl-orig/")?;
    let key: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || "._-".contains(*c))
        .collect();
    if call.is(sh::sysctl_query(&key).line()) {
        return read(out(0, &query(s, &key)));
    }
    if call.is(sh::sysctl_restore(&key)) {
        return restore(s, &key);
    }
    let value = call
        .words
        .windows(4)
        .find(|w| w[0] == "printf" && w[3] == ">")
        .map(|w| w[2].clone())?;
    if call.is(sh::sysctl_set(&key, &value)) {
        return set(s, &key, &value);
    }
    None
}

/// What [`sh::sysctl_query`] prints: runtime, persisted, original.
fn query(s: &State, key: &str) -> String {
    let runtime = s.sysctls.get(key).cloned();
    let persisted = s.content(SYSCTL_FILE).and_then(|text| {
        text.lines()
            .filter(|l| l.starts_with(&format!("{key}=")) || l.starts_with(&format!("{key} ")))
            .filter_map(|l| l.split_once('='))
            .map(|(_, v)| v.strip_prefix(' ').unwrap_or(v).to_string())
            .next_back()
    });
    let original = s
        .content(&orig_path(key))
        .map(|o| o.lines().next().unwrap_or_default().trim().to_string());
    format!(
        "{}\n{}\n{}\n",
        runtime.as_deref().unwrap_or("<missing>"),
        persisted.as_deref().unwrap_or("<none>"),
        original.as_deref().unwrap_or("<none>")
    )
}

fn set(s: &mut State, key: &str, value: &str) -> Option<Answer> {
    if s.unprivileged {
        return change(failed(
            1,
            &format!("mkdir: cannot create directory '{STATE_DIR}': Permission denied\n"),
        ));
    }
    let Some(runtime) = s.sysctls.get(key).cloned() else {
        return change(failed(
            2,
            &format!(
                "sh: 1: cannot create {}: Directory nonexistent\n",
                proc_path(key)
            ),
        ));
    };
    s.files
        .entry(orig_path(key))
        .or_insert_with(|| File::new(&format!("{runtime}\n")));
    s.sysctls.insert(key.into(), as_kernel_prints(value));
    let mut file: String = s
        .content(SYSCTL_FILE)
        .unwrap_or_default()
        .lines()
        .filter(|l| !sets(l, key))
        .map(|l| format!("{l}\n"))
        .collect();
    file.push_str(&format!("{key} = {value}\n"));
    s.files.insert(SYSCTL_FILE.into(), File::new(&file));
    done()
}

fn restore(s: &mut State, key: &str) -> Option<Answer> {
    if let Some(original) = s.content(&orig_path(key)) {
        if s.sysctls.contains_key(key) {
            if s.unprivileged {
                return change(failed(
                    2,
                    &format!(
                        "sh: 1: cannot create {}: Permission denied\n",
                        proc_path(key)
                    ),
                ));
            }
            s.sysctls
                .insert(key.into(), as_kernel_prints(original.trim()));
        }
        s.files.remove(&orig_path(key));
    }
    if let Some(text) = s.content(SYSCTL_FILE) {
        let kept: String = text
            .lines()
            .filter(|l| !sets(l, key))
            .map(|l| format!("{l}\n"))
            .collect();
        if kept.is_empty() {
            s.files.remove(SYSCTL_FILE);
        } else {
            s.files.insert(SYSCTL_FILE.into(), File::new(&kept));
        }
    }
    done()
}
