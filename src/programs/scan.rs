//! The guard of the one list: reads lvslab's sources and finds the programs they run, and fails
//! on any that is neither in [`super::PROGRAMS`] nor in [`super::BASE`].
//!
//! Where programs are named: every string of the command builders (the files of
//! `src/transport/sh/`) and of the lab's node scripts (`src/lab/files.rs`) is shell; so are the
//! shell files (the VM's init, the scenarios, the scripts), the shell templates and the
//! playbooks' `cmd:`/`unless:` lines.
//! Elsewhere in Rust, the program of `Command::new("..")`, `sys::run("..", ..)`, `which("..")`
//! and `find_in_path("..")`. In shell, a command is the first word of a pipeline element (after
//! `;`, `&&`, `||`, `|`, `&`, `$(`, `(`, a newline, and keywords such as `if`, `then`, `do`, `!`),
//! past assignments and the wrappers `sudo`, `env`, `exec`, `setsid`, `timeout N`, `nohup`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Shell builtins and keywords: not programs.
const BUILTINS: &[&str] = &[
    "[", "test", "echo", "printf", "read", "set", "trap", "cd", "true", "false", "exit", "return",
    "shift", "wait", "command", "break", "continue", "export", "local", "eval", "exec", "kill",
    "umask", "type", "hash", "ulimit", "getopts", "unset", "readonly", "alias", "then", "else",
    "elif", "fi", "do", "done", "esac", "if", "while", "until", "time", "pwd",
];

/// lvslab itself, and the toolchain that builds it: there before any of this runs.
const OURS: &[&str] = &["lvslab", "cargo"];

/// Where a program is named, for the failure message.
type Found = BTreeMap<String, Vec<String>>;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn files(dir: &Path, ext: &[&str], out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files(&path, ext, out);
        } else if ext.iter().any(|e| path.to_string_lossy().ends_with(e)) {
            out.push(path);
        }
    }
}

/// A string literal of Rust source, unescaped (format strings' `{{`/`}}` made single), with the
/// code just before it, white space left out (`Command::new(`, `argv(&[`, ...).
struct Literal {
    text: String,
    after: String,
}

/// The string literals of Rust source (comments and char literals skipped); those after
/// `#[cfg(test)]` are left out.
fn rust_strings(source: &str) -> Vec<Literal> {
    let source = source.split("#[cfg(test)]").next().unwrap_or_default();
    let chars: Vec<char> = source.chars().collect();
    let mut out: Vec<(String, String)> = Vec::new();
    // The code since the last literal, without white space.
    let mut code = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        let comment = c == '/' && (next == Some('/') || next == Some('*'));
        let raw = c == 'r' && (next == Some('"') || next == Some('#'));
        if !c.is_whitespace() && c != '"' && c != '\'' && !comment && !raw {
            code.push(c);
        }
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            i += 2;
            while i + 1 < chars.len() && !(chars[i] == '*' && chars[i + 1] == '/') {
                i += 1;
            }
            i += 2;
        } else if c == '\'' {
            // A char literal ('x', '\n', '\'') or a lifetime ('a).
            if next == Some('\\') {
                i += 3;
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if chars.get(i + 2) == Some(&'\'') {
                i += 3;
            } else {
                i += 1;
            }
        } else if c == 'r'
            && (next == Some('"') || next == Some('#'))
            && (i == 0 || !chars[i - 1].is_alphanumeric() && chars[i - 1] != '_')
        {
            let mut j = i + 1;
            let mut hashes = 0;
            while chars.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if chars.get(j) != Some(&'"') {
                i += 1;
                continue;
            }
            let start = j + 1;
            let mut k = start;
            let end = loop {
                if k >= chars.len() {
                    break k;
                }
                if chars[k] == '"' && (0..hashes).all(|h| chars.get(k + 1 + h) == Some(&'#')) {
                    break k;
                }
                k += 1;
            };
            out.push((
                chars[start..end.min(chars.len())].iter().collect(),
                std::mem::take(&mut code),
            ));
            i = end + 1 + hashes;
        } else if c == '"' {
            let mut s = String::new();
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    match chars.get(i + 1) {
                        Some('n') => s.push('\n'),
                        Some('\n') => {
                            i += 2;
                            while i < chars.len() && chars[i].is_whitespace() {
                                i += 1;
                            }
                            continue;
                        }
                        Some(other) => s.push(*other),
                        None => {}
                    }
                    i += 2;
                } else {
                    s.push(chars[i]);
                    i += 1;
                }
            }
            out.push((s, std::mem::take(&mut code)));
            i += 1;
        } else {
            i += 1;
        }
    }
    out.into_iter()
        .map(|(s, after)| Literal {
            text: s.replace("{{", "{").replace("}}", "}"),
            after,
        })
        .collect()
}

/// Shell text with what holds no command blanked: comments, here-documents, single-quoted
/// words (sed and awk programs, literal text) and double-quoted text but for its `$( )`.
fn commands_only(text: &str) -> String {
    let joined = text.replace("\\\n", " ");
    let mut lines = Vec::new();
    let mut heredoc: Option<String> = None;
    for line in joined.lines() {
        if let Some(end) = &heredoc {
            if line.trim() == end {
                heredoc = None;
            }
            continue;
        }
        if let Some(at) = line.find("<<") {
            let tag: String = line[at + 2..]
                .trim_start_matches('-')
                .trim_start()
                .trim_matches(|c| c == '\'' || c == '"')
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !tag.is_empty() {
                heredoc = Some(tag);
            }
        }
        lines.push(case_pattern_blanked(line));
    }
    #[derive(PartialEq)]
    enum In {
        Code,
        Single,
        Double,
    }
    let mut out = String::new();
    // Each `$(` opened inside double quotes: the depth of parentheses to return to them at.
    let mut substs: Vec<usize> = Vec::new();
    let mut depth = 0usize;
    let mut state = In::Code;
    for line in lines {
        let chars: Vec<char> = line.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            match state {
                In::Code => match c {
                    '$' if chars.get(i + 1) == Some(&'{') => {
                        // A parameter's expansion (`${X:-a b}`): a value, never a command.
                        while i < chars.len() && chars[i] != '}' {
                            out.push('Q');
                            i += 1;
                        }
                        out.push('Q');
                        i += 1;
                        continue;
                    }
                    '$' if chars.get(i + 1) == Some(&'(') && chars.get(i + 2) == Some(&'(') => {
                        // Arithmetic: no command inside.
                        let mut open = 0i32;
                        while i < chars.len() {
                            match chars[i] {
                                '(' => open += 1,
                                ')' => open -= 1,
                                _ => {}
                            }
                            out.push(' ');
                            i += 1;
                            if open == 0 && chars[i - 1] == ')' {
                                break;
                            }
                        }
                        continue;
                    }
                    '#' if i == 0 || chars[i - 1].is_whitespace() || chars[i - 1] == ';' => {
                        break;
                    }
                    '\\' => {
                        out.push(' ');
                        i += 1;
                    }
                    '\'' => {
                        state = In::Single;
                        out.push('Q');
                    }
                    '"' => {
                        state = In::Double;
                        out.push('Q');
                    }
                    '(' => {
                        depth += 1;
                        out.push(c);
                    }
                    ')' => {
                        if substs.last() == Some(&depth) {
                            substs.pop();
                            state = In::Double;
                        }
                        depth = depth.saturating_sub(1);
                        out.push(c);
                    }
                    _ => out.push(c),
                },
                In::Single => {
                    if c == '\'' {
                        state = In::Code;
                    }
                    out.push('Q');
                }
                In::Double => match c {
                    '\\' => {
                        out.push_str("QQ");
                        i += 1;
                    }
                    '"' => {
                        state = In::Code;
                        out.push('Q');
                    }
                    '$' if chars.get(i + 1) == Some(&'(') && chars.get(i + 2) != Some(&'(') => {
                        depth += 1;
                        substs.push(depth);
                        state = In::Code;
                        out.push_str(" (");
                        i += 1;
                    }
                    _ => out.push('Q'),
                },
            }
            i += 1;
        }
        out.push('\n');
    }
    out
}

/// A line that starts a case branch (`start)`, `*" inet "*)`, `a|b)`) without it.
fn case_pattern_blanked(line: &str) -> String {
    let body = line.trim_start();
    if let Some(end) = body.find(')') {
        let pattern = &body[..end];
        if !pattern.is_empty() && !pattern.contains('(') && !pattern.contains(' ') {
            return format!(
                "{}{}",
                " ".repeat(line.len() - body.len() + end + 1),
                &body[end + 1..]
            );
        }
    }
    line.to_string()
}

/// The text with the pattern after each `;;` (`;; node3)`) blanked.
fn after_case_branches(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find(";;") {
        out.push_str(&rest[..at + 2]);
        rest = &rest[at + 2..];
        let body = rest.trim_start();
        let lead = rest.len() - body.len();
        match body.find(')') {
            Some(end) if !body[..end].contains(|c: char| c.is_whitespace() || c == '(') => {
                out.push_str(&" ".repeat(lead + end + 1));
                rest = &body[end + 1..];
            }
            _ => {}
        }
    }
    out.push_str(rest);
    out
}

/// The names a shell text defines as functions (`name() {`).
fn functions(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| {
            let l = l.trim_start();
            let (name, rest) = l.split_once("()")?;
            (rest.trim_start().starts_with('{') || rest.trim().is_empty())
                .then(|| name.trim().to_string())
                .filter(|n| n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        })
        .collect()
}

/// The programs a shell text runs (see the module's doc).
fn shell_commands(text: &str) -> Vec<String> {
    let plain = after_case_branches(&commands_only(text))
        .replace("$(", "\n")
        .replace('`', "\n");
    let mut out = Vec::new();
    for segment in plain.split(['\n', ';', '|', '&', '(', ')']) {
        let words: Vec<&str> = segment
            .split_whitespace()
            .map(|w| w.trim_matches('"'))
            .filter(|w| !w.is_empty())
            .collect();
        let mut k = 0;
        while k < words.len() {
            let w = words[k];
            match w {
                "if" | "then" | "else" | "elif" | "do" | "while" | "until" | "!" | "{" | "}"
                | "exec" | "setsid" | "nohup" | "time" => k += 1,
                // A case pattern, a for list: no command in the rest.
                "case" | "for" | "in" | "esac" => {
                    k = words.len();
                }
                "sudo" | "env" => {
                    k += 1;
                    while k < words.len() && (words[k].starts_with('-') || words[k].contains('=')) {
                        k += 1;
                    }
                }
                "timeout" => {
                    k += 1;
                    while k < words.len()
                        && (words[k].starts_with('-')
                            || words[k].chars().next().is_some_and(|c| c.is_ascii_digit()))
                    {
                        k += 1;
                    }
                }
                _ if w.contains('=') && !w.starts_with('=') && !w.starts_with('-') => k += 1,
                _ => break,
            }
        }
        let Some(word) = words.get(k) else { continue };
        let name = match word.strip_prefix('/') {
            Some(_) => {
                let bin = [
                    "/bin/",
                    "/sbin/",
                    "/usr/bin/",
                    "/usr/sbin/",
                    "/usr/local/sbin/",
                ];
                if !bin.iter().any(|b| word.starts_with(b)) {
                    continue;
                }
                word.rsplit('/').next().unwrap_or_default()
            }
            None => word,
        };
        let is_name = name.starts_with(|c: char| c.is_ascii_lowercase())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.+".contains(c));
        if is_name && !BUILTINS.contains(&name) {
            out.push(name.to_string());
        }
    }
    out
}

/// The programs a Rust file runs: the literal program of `Command::new("x")`, `sys::run("x",
/// ..)`, `which("x")` and `find_in_path("x")`; in a file that builds shell (`shell`), every
/// literal of more than one word as shell (but those that read output, see [`reads_output`]),
/// and the first word of `argv(&["x", ..])` and `vec!["x", ..]`.
fn rust_programs(source: &str, shell: bool) -> Vec<String> {
    let mut out = Vec::new();
    let mut texts = Vec::new();
    let calls = ["Command::new(", "sys::run(", "which(", "find_in_path("];
    for literal in rust_strings(source) {
        let after = literal.after.as_str();
        let one_word = !literal
            .text
            .contains(|c: char| c.is_whitespace() || ";|&$".contains(c));
        if calls.iter().any(|c| after.ends_with(c)) {
            out.push(literal.text);
        } else if !shell || reads_output(after) {
            continue;
        } else if one_word {
            if after.ends_with("argv(&[") || after.ends_with("vec![") {
                out.push(literal.text);
            }
        } else {
            texts.push(literal.text);
        }
    }
    // `@NET_RESET@` and the like stand for other literals, spliced in; a systemd unit runs
    // the commands of its `Exec...=` lines.
    let texts: Vec<String> = texts
        .iter()
        .map(|t| match t.starts_with("[Unit]") {
            true => t
                .lines()
                .filter_map(|l| l.strip_prefix("Exec")?.split_once('=').map(|(_, v)| v))
                .collect::<Vec<_>>()
                .join("\n"),
            false => placeholders_as_lines(t),
        })
        .collect();
    let defined: Vec<String> = texts.iter().flat_map(|t| functions(t)).collect();
    out.extend(
        texts
            .iter()
            .flat_map(|t| shell_commands(t))
            .filter(|name| !defined.contains(name)),
    );
    out
}

/// Whether a literal of a file that builds shell, after the code `after`, reads a query's output
/// instead of being run: what it is compared or matched with, or a parser's message about
/// output it cannot read.
fn reads_output(after: &str) -> bool {
    [
        "==",
        "!=",
        "matches(",
        "strip_prefix(",
        "starts_with(",
        "ends_with(",
        "contains(",
        "split_once(",
        "ParseError::new(",
        "ParseError::new(format!(",
    ]
    .iter()
    .any(|c| after.ends_with(c))
}

fn placeholders_as_lines(text: &str) -> String {
    let mut out = String::new();
    let mut parts = text.split('@').peekable();
    if let Some(first) = parts.next() {
        out.push_str(first);
    }
    let mut inside = false;
    while let Some(part) = parts.next() {
        let name = !inside
            && !part.is_empty()
            && part.chars().all(|c| c.is_ascii_uppercase() || c == '_')
            && parts.peek().is_some();
        if name {
            out.push('\n');
            inside = true;
        } else {
            if !inside {
                out.push('@');
            }
            out.push_str(part);
            inside = false;
        }
    }
    out
}

fn note(found: &mut Found, names: Vec<String>, path: &Path) {
    let shown = path
        .strip_prefix(root())
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned();
    for name in names {
        let places = found.entry(name).or_default();
        if !places.contains(&shown) {
            places.push(shown.clone());
        }
    }
}

/// Every program lvslab's sources run, with the files that name it.
fn programs_in_sources() -> Found {
    let top = root();
    let mut found = Found::new();
    let mut shell_rust = vec![top.join("src/lab/files.rs")];
    files(&top.join("src/transport/sh"), &[".rs"], &mut shell_rust);
    let mut rust = Vec::new();
    files(&top.join("src"), &[".rs"], &mut rust);
    files(&top.join("tests"), &[".rs"], &mut rust);
    for path in rust {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        note(
            &mut found,
            rust_programs(&text, shell_rust.contains(&path)),
            &path,
        );
    }
    let mut shell = Vec::new();
    for dir in ["src", "tests", "scripts", "templates", ".ci"] {
        files(
            &top.join(dir),
            &[".sh", ".sh.j2", ".init.j2", "/run"],
            &mut shell,
        );
    }
    // Template expressions are values, not commands.
    let texts: Vec<(PathBuf, String)> = shell
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let text = strip_between(&strip_between(&text, "{{", "}}"), "{%", "%}");
            (path, text)
        })
        .collect();
    // A scenario calls the functions of the library it sources.
    let defined: Vec<String> = texts.iter().flat_map(|(_, t)| functions(t)).collect();
    for (path, text) in &texts {
        let names = shell_commands(text)
            .into_iter()
            .filter(|n| !defined.contains(n))
            .collect();
        note(&mut found, names, path);
    }
    let mut playbooks = Vec::new();
    files(&top.join("playbooks"), &[".yml"], &mut playbooks);
    for path in playbooks {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let text = strip_between(&text, "{{", "}}");
        let mut names = Vec::new();
        for key in ["cmd: \"", "unless: \"", "creates: \""] {
            for (at, _) in text.match_indices(key) {
                let rest = &text[at + key.len()..];
                if let Some(end) = rest.find('"') {
                    names.extend(shell_commands(&rest[..end]));
                }
            }
        }
        note(&mut found, names, &path);
    }
    found
}

fn strip_between(text: &str, open: &str, close: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find(open) {
        out.push_str(&rest[..start]);
        match rest[start..].find(close) {
            Some(end) => {
                out.push_str(" X ");
                rest = &rest[start + end + close.len()..];
            }
            None => rest = "",
        }
    }
    out.push_str(rest);
    out
}

#[test]
fn every_program_lvslab_runs_is_in_the_one_list() {
    let found = programs_in_sources();
    let unlisted: Vec<String> = found
        .iter()
        .filter(|(name, _)| {
            super::named(name).is_none()
                && !super::BASE.contains(&name.as_str())
                && !OURS.contains(&name.as_str())
        })
        .map(|(name, places)| format!("`{name}` (run in {})", places.join(", ")))
        .collect();
    assert!(
        unlisted.is_empty(),
        "programs run by lvslab, its lab or its tests that src/programs.rs does not list with \
         their package (add them there, or to BASE when every base system has them):\n{}",
        unlisted.join("\n")
    );
    // The scan sees what it must: programs of the list that the sources run.
    for must in [
        "ping",
        "arping",
        "ipvsadm",
        "tc",
        "qemu-system-x86_64",
        "awk",
        "systemd-nspawn",
    ] {
        assert!(
            found.contains_key(must),
            "the scan missed `{must}`: {found:?}"
        );
    }
}

#[test]
fn the_scan_reads_shell_as_a_shell_would() {
    let cmds = shell_commands(
        "set -e; if ping -c 1 x >/dev/null; then c=200; fi; r=$(ip -o addr | awk '{print $1; foo}') \
         && sudo -n -- sh -c x | timeout 5 curl -s; case $x in running) ;; esac; for p in a b; do \
         FOO=1 /usr/sbin/ipvsadm -Ln; done; /etc/init.d/x start; echo \"a; b $(date +%s) (c)\"\n\
         cat <<EOF\nnot; a command\nEOF\n# no; comment\nmodprobe x; i=$((i+1)); for m in a \\\n  ip_vs; do x; done; case $n in a) b=1 ;; node3) c=2 ;; esac; \"$s\" start; L=${L:-a b}",
    );
    assert_eq!(
        cmds,
        [
            "ping", "ip", "awk", "sh", "curl", "ipvsadm", "date", "cat", "modprobe", "x"
        ]
    );
    let strings: Vec<String> = rust_strings(
        "let a = \"ip {{x}}\"; // \"not me\"\nlet b = r#\"arping \"q\"\"#; let c = 'x'; let q = '\\''; fn f<'a>() {} \"tc\"",
    )
    .into_iter()
    .map(|l| l.text)
    .collect();
    assert_eq!(strings, ["ip {x}", "arping \"q\"", "tc"]);
    let programs = rust_programs(
        "Command::new(\"qemu\"); argv(&[\"ipvsadm\", \"-L\"]); words.extend([\"label\", l]); \
         format!(\"f() {{ tc x; }}; f; echo \\\"a; b $(ping x)\\\"\"); \
         if l == \"tunl0 up\" {}; l.trim_start_matches(\"route \"); \
         ParseError::new(format!(\"no address in {l}\"), t)",
        true,
    );
    assert_eq!(programs, ["qemu", "ipvsadm", "tc", "ping"]);
}
