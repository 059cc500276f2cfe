//! The Debian mirror for the guest's root filesystem, read from this machine's own apt sources
//! (`sources.list` one-line format and deb822 `.sources` files). The project names no host.

use std::fs;
use std::path::Path;

/// Where apt keeps its sources.
const SOURCES_LIST: &str = "/etc/apt/sources.list";
const SOURCES_DIR: &str = "/etc/apt/sources.list.d";

/// An override for machines whose apt sources name no Debian `suite` (a mirror URL).
pub const MIRROR_ENV: &str = "LVSLAB_VM_MIRROR";

/// `deb URI SUITE main` lines for `suite` and its `-updates` and `-security` suites, as found in
/// the machine's apt sources, in the order found and without duplicates. `LVSLAB_VM_MIRROR`
/// (a mirror URL) replaces them.
pub fn debian_mirrors(suite: &str) -> Result<Vec<String>, String> {
    if let Some(url) = std::env::var_os(MIRROR_ENV) {
        let url = url.to_string_lossy().trim().to_string();
        if url.is_empty() || url.contains(char::is_whitespace) {
            return Err(format!("{MIRROR_ENV} must be one mirror URL, not {url:?}"));
        }
        return Ok(vec![
            format!("deb {url} {suite} main"),
            format!("deb {url} {suite}-updates main"),
        ]);
    }
    let mut texts = Vec::new();
    if let Ok(text) = fs::read_to_string(SOURCES_LIST) {
        texts.push((false, text));
    }
    if let Ok(dir) = fs::read_dir(SOURCES_DIR) {
        let mut paths: Vec<_> = dir.filter_map(|e| e.ok()).map(|e| e.path()).collect();
        paths.sort();
        for path in paths {
            // apt reads only these two extensions; `.disabled`, `.save` etc. are ignored.
            let deb822 = match path.extension().and_then(|e| e.to_str()) {
                Some("sources") => true,
                Some("list") => false,
                _ => continue,
            };
            if let Ok(text) = fs::read_to_string(&path) {
                texts.push((deb822, text));
            }
        }
    }
    let mut lines = Vec::new();
    for (deb822, text) in &texts {
        let found = if *deb822 {
            parse_deb822(text, suite)
        } else {
            parse_one_line(text, suite)
        };
        for line in found {
            if !lines.contains(&line) {
                lines.push(line);
            }
        }
    }
    if lines.iter().any(|l| l.split(' ').nth(2) == Some(suite)) {
        Ok(lines)
    } else {
        Err(format!(
            "no Debian {suite} source with component main in {} or {}/*.sources|*.list; \
             set {MIRROR_ENV} to a Debian mirror URL",
            Path::new(SOURCES_LIST).display(),
            SOURCES_DIR
        ))
    }
}

/// The suites the guest takes packages from, given the release name.
fn wanted(suite: &str, candidate: &str) -> bool {
    candidate == suite
        || candidate == format!("{suite}-updates")
        || candidate == format!("{suite}-security")
}

fn line_for(uri: &str, suite: &str) -> String {
    format!("deb {} {suite} main", uri.trim_end_matches('/'))
}

fn parse_one_line(text: &str, suite: &str) -> Vec<String> {
    let mut found = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or_default();
        let mut words = line.split_whitespace().peekable();
        if words.next() != Some("deb") {
            continue;
        }
        // Options: `[arch=amd64 signed-by=...]`, possibly several words.
        if words.peek().is_some_and(|w| w.starts_with('[')) {
            for word in words.by_ref() {
                if word.ends_with(']') {
                    break;
                }
            }
        }
        let (Some(uri), Some(candidate)) = (words.next(), words.next()) else {
            continue;
        };
        if wanted(suite, candidate) && words.any(|c| c == "main") {
            found.push(line_for(uri, candidate));
        }
    }
    found
}

fn parse_deb822(text: &str, suite: &str) -> Vec<String> {
    let mut found = Vec::new();
    let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    for stanza in lines.split(|l| l.trim().is_empty()) {
        let field = |name: &str| -> Vec<&str> {
            let mut values = Vec::new();
            let mut in_field = false;
            for line in stanza {
                if line.starts_with([' ', '\t']) {
                    if in_field {
                        values.extend(line.split_whitespace());
                    }
                    continue;
                }
                in_field = false;
                if let Some((key, value)) = line.split_once(':')
                    && key.trim().eq_ignore_ascii_case(name)
                {
                    in_field = true;
                    values.extend(value.split_whitespace());
                }
            }
            values
        };
        let enabled = field("Enabled")
            .first()
            .is_none_or(|v| !v.eq_ignore_ascii_case("no"));
        if !enabled || !field("Types").contains(&"deb") || !field("Components").contains(&"main") {
            continue;
        }
        for uri in field("URIs") {
            for candidate in field("Suites") {
                if wanted(suite, candidate) {
                    found.push(line_for(uri, candidate));
                }
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deb822_stanzas_give_release_updates_and_security() {
        let text = "\
Types: deb
# a comment inside a stanza
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main contrib
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb deb-src
URIs: http://mirror.example/debian-security/
Suites: bookworm-security
Components: main

Types: deb
URIs: http://other.example/debian
Suites: bookworm
Components: main
Enabled: no

Types: deb
URIs: https://vendor.example/apt
Suites: nodistro
Components: main
";
        assert_eq!(
            parse_deb822(text, "bookworm"),
            vec![
                "deb http://mirror.example/debian bookworm main",
                "deb http://mirror.example/debian bookworm-updates main",
                "deb http://mirror.example/debian-security bookworm-security main",
            ]
        );
    }

    #[test]
    fn one_line_sources_skip_options_other_suites_and_deb_src() {
        let text = "\
deb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian bookworm main non-free
deb-src http://mirror.example/debian bookworm main
deb http://mirror.example/debian trixie main
deb http://mirror.example/debian bookworm-backports main
# deb http://commented.example/debian bookworm main
deb http://mirror.example/debian bookworm-updates contrib
";
        assert_eq!(
            parse_one_line(text, "bookworm"),
            vec!["deb http://mirror.example/debian bookworm main"]
        );
    }
}
