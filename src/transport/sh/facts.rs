//! Facts: what a host is, read in one round trip (read by [`Facts::parse`]).

use super::{Read, STATE_DIR};
use crate::facts::Facts;

/// Facts in one round trip. Prints `key=value` lines: os_id, os_like, os_version, pkg, init,
/// hostname, kernel, ipvs (loaded|available|missing), one `addr=<dev> <cidr>` per address, one
/// `link=<dev>` per network device, one `saved=sysctl-orig/<key>` or `saved=route-orig/<to>`
/// per original value lvslab keeps (what `state: restored` would put back), and one
/// `absent=<program>` per program of the hosts' list (`crate::programs`) it does not have: no
/// executable file of that name in PATH or an sbin directory (looked for by the shell itself:
/// a `command -v` per program cost a process each, 20 of them, seconds of every run on an
/// emulated host).
pub fn facts() -> Read<Facts> {
    let line = format!(
        r#"[ -r /etc/os-release ] && . /etc/os-release; echo "os_id=${{ID:-unknown}}"; echo "os_like=${{ID_LIKE:-}}"; echo "os_version=${{VERSION_ID:-}}"
for p in apt-get dnf yum; do if command -v $p >/dev/null 2>&1; then echo "pkg=$p"; break; fi; done
if [ -d /run/systemd/system ]; then echo init=systemd; else echo init=sysv; fi
read -r h </proc/sys/kernel/hostname; read -r k </proc/sys/kernel/osrelease; echo "hostname=$h"; echo "kernel=$k"
if [ -e /proc/net/ip_vs ]; then echo ipvs=loaded; elif modprobe -n -q ip_vs 2>/dev/null; then echo ipvs=available; else echo ipvs=missing; fi
ip -o addr show 2>/dev/null | while read -r _ dev fam cidr _; do echo "addr=$dev $cidr"; done
for l in /sys/class/net/*; do echo "link=${{l##*/}}"; done
for f in {STATE_DIR}/sysctl-orig/* {STATE_DIR}/route-orig/*; do [ -e "$f" ] && echo "saved=${{f#{STATE_DIR}/}}"; done
o=$IFS; IFS=:; set -- $PATH /usr/local/sbin /usr/sbin /sbin; IFS=$o
for p in {programs}; do f=; for d in "$@"; do if [ -f "$d/$p" ] && [ -x "$d/$p" ]; then f=1; break; fi; done; [ -n "$f" ] || echo "absent=$p"; done; true"#,
        programs = host_programs().join(" ")
    );
    Read::new(line, |text| Ok(Facts::parse(text)))
}

/// The names of the programs hosts run (alternatives too): the facts say which are absent.
fn host_programs() -> Vec<&'static str> {
    crate::programs::of(crate::programs::Place::Host)
        .flat_map(|p| p.names())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    /// Captured on this machine (Debian 12 without systemd or IPVS), in a network namespace
    /// with a private /var/lib/lvslab holding a saved sysctl and two saved routes.
    #[test]
    fn the_facts_of_a_host() {
        let output = "os_id=debian\nos_like=\nos_version=12\npkg=apt-get\ninit=sysv\nhostname=vm\n\
            kernel=6.18.44-fc-v1300\nipvs=missing\naddr=lo 127.0.0.1/8\naddr=lo ::1/128\n\
            addr=peer0 198.18.0.10/24\naddr=peer0 fe80::1025:c7ff:fea8:526c/64\nlink=lo\n\
            link=peer0\nsaved=sysctl-orig/net.ipv4.conf.all.arp_ignore\n\
            saved=route-orig/198.18.1.0_24\nsaved=route-orig/default\nabsent=apache2\n\
            absent=httpd\n";
        let pair = |d: &str, c: &str| (d.to_string(), c.to_string());
        assert_eq!(
            facts().parse(output),
            Ok(Facts {
                os_id: "debian".into(),
                os_like: String::new(),
                os_version: "12".into(),
                pkg: Some("apt-get".into()),
                init: "sysv".into(),
                hostname: "vm".into(),
                kernel: "6.18.44-fc-v1300".into(),
                ipvs: "missing".into(),
                family: "debian".into(),
                addresses: vec![
                    pair("lo", "127.0.0.1/8"),
                    pair("lo", "::1/128"),
                    pair("peer0", "198.18.0.10/24"),
                    pair("peer0", "fe80::1025:c7ff:fea8:526c/64"),
                ],
                links: strings(&["lo", "peer0"]),
                saved_sysctls: strings(&["net.ipv4.conf.all.arp_ignore"]),
                saved_routes: strings(&["198.18.1.0/24", "default"]),
                absent: strings(&["apache2", "httpd"]),
            })
        );
    }

    /// The script on this machine: the programs it says are absent are those with no executable
    /// file in PATH or an sbin directory (a file without the execute bit does not count).
    #[test]
    fn the_programs_absent_here() {
        let (_, out) = crate::transport::sh::tests::sh(facts().line());
        let absent: Vec<String> = out
            .lines()
            .filter_map(|l| l.strip_prefix("absent="))
            .map(str::to_string)
            .collect();
        let path = std::env::var("PATH").unwrap_or_default();
        let dirs: Vec<String> = path
            .split(':')
            .map(str::to_string)
            .chain(["/usr/local/sbin", "/usr/sbin", "/sbin"].map(String::from))
            .collect();
        let executable = |p: &str| {
            dirs.iter().any(|d| {
                std::fs::metadata(format!("{d}/{p}")).is_ok_and(|m| {
                    use std::os::unix::fs::PermissionsExt;
                    m.is_file() && m.permissions().mode() & 0o111 != 0
                })
            })
        };
        let want: Vec<String> = host_programs()
            .into_iter()
            .filter(|p| !executable(p))
            .map(str::to_string)
            .collect();
        assert_eq!(absent, want, "{out}");
        assert!(out.contains("\nhostname="), "{out}");
    }

    /// The same script's lines on other hosts: Rocky Linux with systemd and IPVS as a module
    /// (its /etc/os-release), a host without a package manager lvslab knows.
    #[test]
    fn other_hosts() {
        let rocky = facts()
            .parse(
                "os_id=rocky\nos_like=rhel centos fedora\nos_version=9.4\npkg=dnf\ninit=systemd\n\
                 hostname=node2\nkernel=5.14.0-427.el9.x86_64\nipvs=available\n\
                 addr=eth0 198.18.0.12/24\nlink=eth0\nlink=lo\n",
            )
            .unwrap();
        assert_eq!(
            (
                rocky.family.as_str(),
                rocky.pkg.as_deref(),
                rocky.has_ipvs()
            ),
            ("redhat", Some("dnf"), true)
        );
        let bare = facts()
            .parse("os_id=alpine\nos_like=\nos_version=3.20\ninit=sysv\nipvs=missing\n")
            .unwrap();
        assert_eq!((bare.family.as_str(), bare.pkg), ("other", None));
        // Nothing usable: empty facts (gathering says which host could not tell).
        assert_eq!(facts().parse(""), Ok(Facts::parse("")));
        assert!(facts().parse("").is_ok_and(|f| f.init.is_empty()));
    }
}
