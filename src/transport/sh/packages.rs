//! Packages through the host's manager (apt-get, dnf, yum).

use super::{Read, argv, non_empty_lines, quote};

/// Prints the names of the packages that are NOT installed, one per line.
pub fn packages_missing(manager: &str, names: &[String]) -> Read<Vec<String>> {
    let list = names
        .iter()
        .map(|n| quote(n).into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    let line = match manager {
        // One query for all names; `ii ` is dpkg's "installed".
        "apt-get" => format!(
            "i=\" $(dpkg-query -W -f='${{Package}} ${{db:Status-Abbrev}}\\n' {list} 2>/dev/null | tr '\\n' ' ')\"; for p in {list}; do case \"$i\" in *\" $p ii \"*) ;; *) echo \"$p\";; esac; done"
        ),
        _ => format!("rpm -q {list} | sed -n 's/^package \\(.*\\) is not installed$/\\1/p'"),
    };
    Read::new(line, non_empty_lines)
}

pub fn packages_install(manager: &str, names: &[String]) -> String {
    let mut w: Vec<String> = match manager {
        "apt-get" => vec![
            "env".into(),
            "DEBIAN_FRONTEND=noninteractive".into(),
            "apt-get".into(),
            "install".into(),
            "-y".into(),
            "-q".into(),
        ],
        m => vec![m.into(), "install".into(), "-y".into(), "-q".into()],
    };
    w.extend(names.iter().cloned());
    argv(&w)
}

pub fn packages_remove(manager: &str, names: &[String]) -> String {
    let mut w: Vec<String> = match manager {
        "apt-get" => vec![
            "env".into(),
            "DEBIAN_FRONTEND=noninteractive".into(),
            "apt-get".into(),
            "remove".into(),
            "-y".into(),
            "-q".into(),
        ],
        m => vec![m.into(), "remove".into(), "-y".into(), "-q".into()],
    };
    w.extend(names.iter().cloned());
    argv(&w)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::sh::tests::sh;

    /// What dpkg-query (Debian 12) and rpm leave after the query's own filter: the names of
    /// the packages that are not installed.
    #[test]
    fn the_missing_packages() {
        let names = ["ipvsadm".to_string(), "keepalived".to_string()];
        for manager in ["apt-get", "dnf"] {
            let q = packages_missing(manager, &names);
            assert_eq!(q.parse("keepalived\n"), Ok(vec!["keepalived".to_string()]));
            assert_eq!(
                q.parse("ipvsadm\nkeepalived\n"),
                Ok(vec!["ipvsadm".to_string(), "keepalived".to_string()])
            );
            assert_eq!(q.parse(""), Ok(vec![]));
        }
    }

    #[test]
    fn the_query_runs_on_this_machine() {
        if std::path::Path::new("/usr/bin/dpkg-query").exists() {
            let q = packages_missing(
                "apt-get",
                &[
                    "dpkg".into(),
                    "lvslab-no-such-package".into(),
                    "lvslab-none-either".into(),
                ],
            );
            let (_, out) = sh(q.line());
            assert_eq!(
                q.parse(&out),
                Ok(vec![
                    "lvslab-no-such-package".to_string(),
                    "lvslab-none-either".to_string()
                ])
            );
        }
    }
}
