//! lvslab's nftables table (the firewall marks of firewall-mark services): read as JSON (the
//! LVS model's [`MarkTable`]), written as one nft transaction, deleted.

use super::{ParseError, Read, quote};
use crate::lvs::marks::{MarkRule, MarkTable, TABLE, ruleset};

/// lvslab's table as `nft -j` lists it; an absent table (nft's "No such file or directory", or
/// no nft at all: lvslab never wrote one there) reads as an empty list, any other error of nft
/// fails the query with its words.
pub fn mark_table() -> Read<MarkTable> {
    Read::new(
        format!(
            "if ! command -v nft >/dev/null; then echo '{{\"nftables\": []}}'; \
             elif out=$(nft -j list table ip {TABLE} 2>&1); then printf '%s\\n' \"$out\"; \
             else case $out in *'No such file or directory'*) echo '{{\"nftables\": []}}' ;; \
             *) printf '%s\\n' \"$out\" >&2; exit 1 ;; esac; fi"
        ),
        |text| MarkTable::parse(text).map_err(|e| ParseError::new(e, text)),
    )
}

/// Makes lvslab's table exactly `rules` (one transaction), from a command line alone (a boot
/// entry holds it too).
pub fn mark_table_write(rules: &[MarkRule]) -> String {
    format!("printf '%s' {} | nft -f -", quote(&ruleset(rules)))
}

/// Deletes lvslab's table when it exists.
pub fn mark_table_delete() -> String {
    format!("! nft list table ip {TABLE} >/dev/null 2>&1 || nft delete table ip {TABLE}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lvs::Protocol;

    /// The lines run in a real shell with a stand-in `nft` that records its input and answers
    /// as nft does when the table is missing.
    #[test]
    fn the_lines_work_in_a_real_shell() {
        let dir = std::env::temp_dir().join(format!("lvslab-nft-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let nft = dir.join("nft");
        std::fs::write(
            &nft,
            "#!/bin/sh\ncase \"$*\" in\n  '-f -') cat > \"$(dirname \"$0\")/input\" ;;\n  *list*) echo 'Error: No such file or directory' >&2; exit 1 ;;\nesac\n",
        )
        .unwrap();
        std::process::Command::new("chmod")
            .args(["+x", nft.to_str().unwrap()])
            .status()
            .unwrap();
        let path = format!(
            "{}:{}",
            dir.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let run = |line: &str| {
            std::process::Command::new("sh")
                .args(["-c", line])
                .env("PATH", &path)
                .output()
                .unwrap()
        };
        let q = mark_table();
        let out = run(q.line());
        assert!(out.status.success());
        let t = q.parse(&String::from_utf8_lossy(&out.stdout)).unwrap();
        assert!(!t.exists);
        let rule = MarkRule::new(
            1,
            "198.18.0.100".parse().unwrap(),
            Protocol::Tcp,
            &[80, 443],
        );
        assert!(
            run(&mark_table_write(std::slice::from_ref(&rule)))
                .status
                .success()
        );
        assert_eq!(
            std::fs::read_to_string(dir.join("input")).unwrap(),
            ruleset(&[rule])
        );
        assert!(
            run(&mark_table_delete()).status.success(),
            "nothing to delete"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
