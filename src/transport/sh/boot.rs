//! What lvslab keeps on a host: the boot entries `lvslab-boot` re-applies, and what is left
//! until `down`.

use super::links::{link_set, load_module};
use super::{
    BOOT_DIR, BOOT_SCRIPT, BOOT_SERVICE, ParseError, Read, STATE_DIR, SYSCTL_FILE, argv,
    non_empty_lines, quote, quote_owned,
};
use crate::lvs::names;

/// The boot entry `name`'s content, as it is (empty when there is none).
pub fn boot_entry_read(name: &str) -> Read<String> {
    let line = format!(
        "cat {} 2>/dev/null || true",
        quote_owned(&format!("{BOOT_DIR}/{name}"))
    );
    Read::new(line, |text| Ok(text.to_string()))
}

/// The boot entries whose names start with `prefix`, one per line.
pub fn boot_entries_list(prefix: &str) -> Read<Vec<String>> {
    let line = format!(
        "cd {BOOT_DIR} 2>/dev/null && for f in {}*; do [ -e \"$f\" ] && echo \"$f\"; done; true",
        quote(prefix)
    );
    Read::new(line, non_empty_lines)
}

/// Writes the boot entry `name` from stdin (replaced whole, never half written).
pub fn boot_entry_write(name: &str) -> String {
    let path = quote_owned(&format!("{BOOT_DIR}/{name}"));
    let tmp = quote_owned(&format!("{BOOT_DIR}/.{name}.tmp"));
    format!(
        "set -e; mkdir -p {BOOT_DIR}; t={tmp}; trap 'rm -f \"$t\"' EXIT; trap 'exit 143' TERM INT HUP PIPE; \
         cat > \"$t\"; chmod 0644 \"$t\"; mv -f \"$t\" {path}"
    )
}

/// Removes the boot entries named (none: nothing to do).
pub fn boot_entries_remove(names: &[String]) -> String {
    let paths: Vec<String> = names
        .iter()
        .map(|n| quote_owned(&format!("{BOOT_DIR}/{n}")))
        .collect();
    format!("rm -f -- {}", paths.join(" "))
}

/// A word fit for a boot entry's file name: what is not `[A-Za-z0-9.-]` becomes `_`.
pub fn boot_entry_word(word: &str) -> String {
    word.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// An address set again at boot (`replace`: no error when it is there already).
pub fn boot_address(dev: &str, cidr: &str, label: Option<&str>) -> String {
    let mut words = vec!["ip", "addr", "replace", cidr, "dev", dev];
    if let Some(l) = label {
        words.extend(["label", l]);
    }
    argv(&words)
}

/// A route set again at boot.
pub fn boot_route(to: &str, via: &str, dev: Option<&str>) -> String {
    let mut words = vec!["ip", "route", "replace", to, "via", via];
    if let Some(d) = dev {
        words.extend(["dev", d]);
    }
    argv(&words)
}

/// A device brought up again at boot, its module loaded first.
pub fn boot_link(dev: &str, module: Option<&str>) -> String {
    match module {
        Some(m) => format!("{}; {}", load_module(m), link_set(dev, true)),
        None => link_set(dev, true),
    }
}

/// What lvslab leaves on a host until `down`: prints the number of saved original sysctl
/// values and routes, then `file` or `nofile` for lvslab's sysctl file, then the number of
/// boot entries and `boot` or `noboot` for the boot script and its unit or init script, then
/// `notify` or `nonotify` for a director's VRRP transition script or its log.
pub fn lvslab_leftovers() -> Read<Leftovers> {
    let (script, log) = (names::NOTIFY_SCRIPT, names::NOTIFY_LOG);
    let line = format!(
        "ls {STATE_DIR}/sysctl-orig {STATE_DIR}/route-orig 2>/dev/null | grep -vc -e '^$' -e ':$'; [ -e {SYSCTL_FILE} ] && echo file || echo nofile; \
         ls {BOOT_DIR} 2>/dev/null | grep -vc '^$'; \
         if [ -e {BOOT_SCRIPT} ] || [ -e /etc/systemd/system/{BOOT_SERVICE}.service ] || [ -e /etc/init.d/{BOOT_SERVICE} ]; then echo boot; else echo noboot; fi; \
         if [ -e {script} ] || [ -e {log} ]; then echo notify; else echo nonotify; fi; \
         [ -e {tls} ] && echo tls || echo notls",
        tls = crate::lvs::web::TLS_DIR
    );
    Read::new(line, parse_leftovers)
}

/// What [`lvslab_leftovers`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Leftovers {
    /// Original values lvslab keeps (of the sysctls and routes it changed).
    pub saved: u32,
    /// lvslab's sysctl file is there.
    pub sysctl_file: bool,
    pub boot_entries: u32,
    /// lvslab-boot is there (its script, its unit or its init script).
    pub boot: bool,
    /// The VRRP transition script or its log is there (`lvs.vrrp.notify`).
    pub notify: bool,
    /// The TLS certificate's directory is there (services with `tls`).
    pub tls: bool,
}

impl Leftovers {
    /// Nothing left.
    pub fn none(&self) -> bool {
        self.saved == 0
            && !self.sysctl_file
            && self.boot_entries == 0
            && !self.boot
            && !self.notify
            && !self.tls
    }
}

fn parse_leftovers(text: &str) -> Result<Leftovers, ParseError> {
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    leftovers(&lines).ok_or_else(|| ParseError::new("not the 6 lines of what lvslab leaves", text))
}

fn leftovers(lines: &[&str]) -> Option<Leftovers> {
    let [saved, file, entries, boot, notify, tls] = lines else {
        return None;
    };
    let flag = |l: &str, yes: &str, no: &str| (l == yes || l == no).then_some(l == yes);
    Some(Leftovers {
        saved: saved.parse().ok()?,
        sysctl_file: flag(file, "file", "nofile")?,
        boot_entries: entries.parse().ok()?,
        boot: flag(boot, "boot", "noboot")?,
        notify: flag(notify, "notify", "nonotify")?,
        tls: flag(tls, "tls", "notls")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_boot_entries() {
        let entry = "ip addr replace 198.18.0.100/32 dev lo label lo:3\n";
        assert_eq!(
            boot_entry_read("30-address-lo-198.18.0.100").parse(entry),
            Ok(entry.to_string())
        );
        assert_eq!(boot_entry_read("x").parse(""), Ok(String::new()));
        assert_eq!(
            boot_entries_list("50-ipvs-")
                .parse("50-ipvs-tcp_198.18.0.100_80\n50-ipvs-udp_198.18.0.100_53\n"),
            Ok(vec![
                "50-ipvs-tcp_198.18.0.100_80".to_string(),
                "50-ipvs-udp_198.18.0.100_53".to_string()
            ])
        );
        // No boot directory, or no entry of that prefix.
        assert_eq!(boot_entries_list("50-ipvs-").parse(""), Ok(vec![]));
    }

    /// Captured with a private /var/lib/lvslab, /etc/sysctl.d and boot directory.
    #[test]
    fn what_lvslab_leaves() {
        let left = |saved, sysctl_file, boot_entries, boot, notify| Leftovers {
            saved,
            sysctl_file,
            boot_entries,
            boot,
            notify,
            tls: false,
        };
        let table = [
            (
                "0\nnofile\n0\nnoboot\nnonotify\nnotls\n",
                left(0, false, 0, false, false),
            ),
            // A DR real server that is up: two sysctls changed, their file, three entries.
            (
                "2\nfile\n3\nboot\nnonotify\nnotls\n",
                left(2, true, 3, true, false),
            ),
            // After `down` that kept lvslab-boot.
            (
                "0\nnofile\n0\nboot\nnonotify\nnotls\n",
                left(0, false, 0, true, false),
            ),
            // A director with lvs.vrrp.notify, after a `down` that left its log.
            (
                "0\nnofile\n0\nnoboot\nnotify\nnotls\n",
                left(0, false, 0, false, true),
            ),
            // A real server of a TLS service, after a `down` that could not remove its
            // certificate.
            (
                "0\nnofile\n0\nnoboot\nnonotify\ntls\n",
                Leftovers {
                    tls: true,
                    ..left(0, false, 0, false, false)
                },
            ),
        ];
        for (output, want) in table {
            assert_eq!(lvslab_leftovers().parse(output), Ok(want), "{output:?}");
        }
        assert!(
            lvslab_leftovers()
                .parse("0\nnofile\n0\nnoboot\nnonotify\nnotls\n")
                .unwrap()
                .none()
        );
        assert!(!left(0, false, 0, true, false).none());
        assert!(!left(0, false, 0, false, true).none());
        for bad in [
            "",
            "0\nnofile\n0\nnoboot\nnonotify\n",
            "x\nnofile\n0\nnoboot\nnonotify\n",
        ] {
            assert!(lvslab_leftovers().parse(bad).is_err(), "{bad:?}");
        }
    }
}
