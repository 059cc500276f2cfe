//! Files, directories and boot entries: `sh/files.rs` and `sh/boot.rs`.

use sha2::{Digest, Sha256};

use super::{Answer, Call, State, change, done, read};
use crate::transport::fake::{failed, out};
use crate::transport::sh::{self, BOOT_DIR};

/// A regular file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    pub content: Vec<u8>,
    /// Octal, as stat prints it: `644`.
    pub mode: String,
    /// `user:group`.
    pub owner: String,
}

impl File {
    /// Root's, mode 644.
    pub fn new(content: &str) -> File {
        File {
            content: content.as_bytes().to_vec(),
            mode: "644".into(),
            owner: "root:root".into(),
        }
    }
}

impl State {
    pub(super) fn is_dir(&self, path: &str) -> bool {
        let under = format!("{path}/");
        self.dirs.contains_key(path)
            || self.files.keys().any(|p| p.starts_with(&under))
            || self.dirs.keys().any(|p| p.starts_with(&under))
    }
}

pub(super) fn answer(s: &mut State, call: &Call) -> Option<Answer> {
    let word = |i| call.word(i).unwrap_or_default().to_string();
    // `if [ -f PATH ]...`, `if [ -d PATH ]...`, `rm -rf -- PATH`, `mkdir -p -- PATH && chmod
    // MODE PATH`: the path is the fourth word; `cat PATH`'s the second, `[ -e PATH ]`'s the third.
    let path = word(3);
    if call.is(sh::file_stat(&path).line()) {
        return read(out(0, &stat(s, &path)));
    }
    if call.is(sh::path_kind(&path).line()) {
        let kind = if s.files.contains_key(&path) {
            "file".to_string()
        } else if s.is_dir(&path) {
            let mode = s.dirs.get(&path).map_or("755", String::as_str);
            format!("directory {mode}")
        } else {
            "absent".to_string()
        };
        return read(out(0, &format!("{kind}\n")));
    }
    if call.is(sh::remove_path(&path)) {
        return remove(s, &path);
    }
    if call.is(sh::make_dir(&path, &word(6))) {
        return make_dir(s, &path, &word(6));
    }
    if call.is(sh::file_read(&word(1))) {
        return read(match s.files.get(&word(1)) {
            Some(f) => crate::transport::ExecOutput {
                stdout: f.content.clone(),
                ..out(0, "")
            },
            None => failed(1, &format!("cat: {}: No such file or directory\n", word(1))),
        });
    }
    if call.is(sh::exists(&word(2))) {
        let there = s.files.contains_key(&word(2)) || s.is_dir(&word(2));
        return read(out(if there { 0 } else { 1 }, ""));
    }
    write(s, call)
        .or_else(|| chmod_chown(s, call))
        .or_else(|| boot(s, call))
}

/// What [`sh::file_stat`] prints.
fn stat(s: &State, path: &str) -> String {
    match s.files.get(path) {
        Some(f) => {
            let sum: String = Sha256::digest(&f.content)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            format!("{} {} {sum}  -\n", f.mode, f.owner)
        }
        None if s.is_dir(path) => "notafile\n".into(),
        None => "absent\n".into(),
    }
}

fn remove(s: &mut State, path: &str) -> Option<Answer> {
    if s.unprivileged {
        return change(failed(
            1,
            &format!("rm: cannot remove '{path}': Permission denied\n"),
        ));
    }
    let under = format!("{path}/");
    s.files.retain(|p, _| p != path && !p.starts_with(&under));
    s.dirs.retain(|p, _| p != path && !p.starts_with(&under));
    done()
}

fn make_dir(s: &mut State, path: &str, mode: &str) -> Option<Answer> {
    if s.unprivileged {
        return change(failed(
            1,
            &format!("mkdir: cannot create directory '{path}': Permission denied\n"),
        ));
    }
    if s.files.contains_key(path) {
        return change(failed(
            1,
            &format!("mkdir: cannot create directory '{path}': File exists\n"),
        ));
    }
    s.dirs.insert(path.into(), mode.into());
    done()
}

/// [`sh::file_write`]: the content from stdin, validated, the previous version kept.
fn write(s: &mut State, call: &Call) -> Option<Answer> {
    let path = call
        .words
        .iter()
        .find_map(|w| w.strip_prefix("p="))?
        .trim_end_matches(';')
        .to_string();
    let modes = candidates(call.all_after("chmod"));
    let owners = candidates(call.all_after("chown"));
    let validate = call
        .line
        .split_once("if ! out=$( ")
        .and_then(|(_, rest)| rest.split_once(" 2>&1 ); then"))
        .map(|(v, _)| v.replace("\"$t\"", "%s"));
    let validates = [None, validate.as_deref()];
    let (mode, owner, validate) = modes.iter().find_map(|m| {
        owners.iter().find_map(|o| {
            validates
                .iter()
                .find(|v| call.is(sh::file_write(&path, *m, *o, **v)))
                .map(|v| (*m, *o, *v))
        })
    })?;
    let content = call.stdin.unwrap_or_default().to_vec();
    let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
    if s.unprivileged {
        return change(failed(
            1,
            &format!(
                "mktemp: failed to create file via template '{dir}/.lvslab.XXXXXX': Permission denied\n"
            ),
        ));
    }
    if let Some(v) = validate {
        let Some(check) = call.validators.get(v) else {
            panic!("the fake host does not know the validation command `{v}`");
        };
        if let Err(said) = check(&content) {
            return change(failed(3, &format!("validation failed: {said}\n")));
        }
    }
    let old = s.files.get(&path).cloned();
    let new = File {
        content,
        mode: mode
            .map(str::to_string)
            .or_else(|| old.as_ref().map(|f| f.mode.clone()))
            .unwrap_or_else(|| "644".into()),
        owner: match owner {
            Some(o) if o.contains(':') => o.to_string(),
            Some(user) => format!("{user}:root"),
            None => old
                .as_ref()
                .map_or_else(|| "root:root".into(), |f| f.owner.clone()),
        },
    };
    if let Some(old) = old {
        let both = u32::from_str_radix(&old.mode, 8).unwrap_or(0)
            & u32::from_str_radix(&new.mode, 8).unwrap_or(0);
        s.files.insert(
            format!("{path}.lvslab-prev"),
            File {
                mode: format!("{both:o}"),
                ..old
            },
        );
    }
    s.files.insert(path, new);
    done()
}

/// `None` and each of `words`: what a builder's optional argument may have been.
fn candidates(words: Vec<&str>) -> Vec<Option<&str>> {
    std::iter::once(None)
        .chain(words.into_iter().map(Some))
        .collect()
}

fn chmod_chown(s: &mut State, call: &Call) -> Option<Answer> {
    let path = call.after("--")?.to_string();
    let modes = candidates(call.all_after("chmod"));
    let owners = candidates(call.all_after("chown"));
    let (mode, owner) = modes.iter().find_map(|m| {
        owners
            .iter()
            .find(|o| call.is(sh::file_chmod_chown(&path, *m, **o)))
            .map(|o| (*m, *o))
    })?;
    let Some(file) = s.files.get_mut(&path) else {
        return change(failed(
            1,
            &format!("chmod: cannot access '{path}': No such file or directory\n"),
        ));
    };
    if s.unprivileged {
        return change(failed(
            1,
            &format!("chmod: changing permissions of '{path}': Operation not permitted\n"),
        ));
    }
    if let Some(m) = mode {
        file.mode = m.to_string();
    }
    if let Some(o) = owner {
        let group = file.owner.split(':').nth(1).unwrap_or("root").to_string();
        file.owner = if o.contains(':') {
            o.to_string()
        } else {
            format!("{o}:{group}")
        };
    }
    done()
}

/// The boot entries: files in [`BOOT_DIR`].
fn boot(s: &mut State, call: &Call) -> Option<Answer> {
    let entry = |path: &str| {
        path.strip_prefix(BOOT_DIR)?
            .strip_prefix('/')
            .map(str::to_string)
    };
    let name = call.word(1).and_then(entry).unwrap_or_default();
    if call.is(sh::boot_entry_read(&name).line()) {
        let path = format!("{BOOT_DIR}/{name}");
        return read(out(0, &s.content(&path).unwrap_or_default()));
    }
    let prefix = call
        .after("in")
        .map(|w| w.trim_end_matches(';').trim_end_matches('*'))
        .unwrap_or_default();
    if call.is(sh::boot_entries_list(prefix).line()) {
        let names: String = s
            .children(BOOT_DIR)
            .filter(|n| n.starts_with(prefix))
            .map(|n| format!("{n}\n"))
            .collect();
        return read(out(0, &names));
    }
    let name = call.words.last().and_then(|p| entry(p)).unwrap_or_default();
    if call.is(sh::boot_entry_write(&name)) {
        if s.unprivileged {
            return change(failed(
                1,
                &format!("mkdir: cannot create directory '{BOOT_DIR}': Permission denied\n"),
            ));
        }
        let content = String::from_utf8_lossy(call.stdin.unwrap_or_default()).into_owned();
        s.files
            .insert(format!("{BOOT_DIR}/{name}"), File::new(&content));
        return done();
    }
    let at = call.words.iter().position(|w| w == "--")?;
    let names: Vec<String> = call.words[at + 1..]
        .iter()
        .filter_map(|p| entry(p))
        .collect();
    if call.is(sh::boot_entries_remove(&names)) {
        if s.unprivileged {
            return change(failed(
                1,
                &format!(
                    "rm: cannot remove '{BOOT_DIR}/{}': Permission denied\n",
                    names.join(" ")
                ),
            ));
        }
        for n in names {
            s.files.remove(&format!("{BOOT_DIR}/{n}"));
        }
        return done();
    }
    None
}
