//! Every program lvslab, its lab and its tests run that a base system may lack, with the package
//! that brings it on each family: the one list. `lab up --install-deps`, `lab deps`, the VM's
//! image and `scripts/test.sh` install from it; the facts of every host say which of the hosts'
//! programs are missing, so a drill or a probe names the program and its package instead of
//! measuring its absence as an outage; a test reads lvslab's sources and fails on a program run
//! there that is neither here nor in [`BASE`].

use std::path::Path;

/// Where a program is run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// On every host lvslab manages (directors, real servers, the client): modules, probes and
    /// drills. The lab's nodes share this machine's programs, and the VM's image holds them.
    Host,
    /// On this machine, to build the namespace lab (in the VM too: the guest builds it there).
    Lab,
    /// On this machine, to build and boot the lab's VM.
    VmHost,
    /// Inside the VM only (its init, the systemd nodes).
    Guest,
    /// On this machine, by the test suite.
    Tests,
}

/// One program and the package that brings it.
#[derive(Debug, PartialEq, Eq)]
pub struct Program {
    /// The name it is run by.
    pub name: &'static str,
    /// Other programs that serve instead (a web server: nginx or apache2/httpd).
    pub also: &'static [&'static str],
    /// Debian and Ubuntu's package.
    pub apt: &'static str,
    /// Fedora, RHEL and their kin's package.
    pub dnf: &'static str,
    pub places: &'static [Place],
    /// What lvslab runs it for, in words.
    pub why: &'static str,
}

use Place::{Guest, Host, Lab, Tests, VmHost};

macro_rules! programs {
    ($($id:ident: $name:literal $(| $also:literal)*, $apt:literal, $dnf:literal, [$($place:ident),*], $why:literal;)*) => {
        $(pub const $id: &Program = &Program {
            name: $name,
            also: &[$($also),*],
            apt: $apt,
            dnf: $dnf,
            places: &[$($place),*],
            why: $why,
        };)*
        /// The whole list.
        pub const PROGRAMS: &[&Program] = &[$($id),*];
    };
}

programs! {
    IP: "ip", "iproute2", "iproute", [Host, Lab, VmHost], "addresses, routes, devices; the lab's namespaces and bridge";
    TC: "tc", "iproute2", "iproute-tc", [Host], "the partition drill's VRRP filter";
    IPVSADM: "ipvsadm", "ipvsadm", "ipvsadm", [Host], "the IPVS table";
    NFT: "nft", "nftables", "nftables", [Host], "the firewall marks of firewall-mark services";
    KEEPALIVED: "keepalived", "keepalived", "keepalived", [Host], "the director pair's VRRP and health checks";
    WEB_SERVER: "nginx" | "apache2" | "httpd", "nginx", "nginx", [Host], "the real servers' web server";
    CURL: "curl", "curl", "curl", [Host], "requests through the VIP (verify, drills, bench)";
    OPENSSL: "openssl", "openssl", "openssl", [Host], "the TLS certificate of a web server that serves a service with `tls: true`";
    ARPING: "arping", "iputils-arping", "iputils", [Host], "who answers ARP for the VIP; a gratuitous ARP for a new address";
    PING: "ping", "iputils-ping", "iputils", [Host], "a drill's load where the kernel has no IPVS (the VIP itself is pinged)";
    PGREP: "pgrep", "procps", "procps-ng", [Host], "whether a daemon runs";
    PKILL: "pkill", "procps", "procps-ng", [Host], "ending, freezing and thawing daemons (drills)";
    PS: "ps", "procps", "procps-ng", [Host], "whether a daemon is frozen";
    SYSCTL: "sysctl", "procps", "procps-ng", [Host], "kernel settings again at boot";
    MODPROBE: "modprobe", "kmod", "kmod", [Host, Lab, Guest], "loading IPVS, ipip and overlay";
    AWK: "awk", "mawk", "gawk", [Host], "reading ip's and ipvsadm's output";
    SUDO: "sudo", "sudo", "sudo", [Host, Tests], "become root as a login user";
    SSHD: "sshd", "openssh-server", "openssh-server", [Lab, Guest], "each lab node's sshd";
    SSH_KEYGEN: "ssh-keygen", "openssh-client", "openssh", [Lab, VmHost, Tests], "the lab's keys and known_hosts";
    SSH: "ssh", "openssh-client", "openssh-clients", [Lab, Tests], "`lab exec` into a VM lab's node; OpenSSH beside lvslab in tests";
    SSH_AGENT: "ssh-agent", "openssh-client", "openssh-clients", [Tests], "the agent tests";
    SSH_ADD: "ssh-add", "openssh-client", "openssh-clients", [Tests], "the agent tests";
    MOUNT: "mount", "mount", "util-linux", [Lab, Guest], "each node's own /etc, /var, /root";
    UMOUNT: "umount", "mount", "util-linux", [Lab], "a systemd node's disk at its end";
    KILL: "kill", "procps", "procps-ng", [VmHost, Tests], "ending the VM's qemu and a test's processes";
    NSPAWN: "systemd-nspawn", "systemd-container", "systemd-container", [Guest], "systemd lab nodes (`lab up --init systemd`)";
    SYSTEMCTL: "systemctl", "systemd", "systemd", [Guest], "systemd lab nodes";
    QEMU: "qemu-system-x86_64", "qemu-system-x86", "qemu-system-x86", [VmHost], "the lab's VM";
    MMDEBSTRAP: "mmdebstrap", "mmdebstrap", "mmdebstrap", [VmHost], "the VM's root filesystem";
    DEPMOD: "depmod", "kmod", "kmod", [VmHost], "the VM kernel's module index";
    STRIP: "strip", "binutils", "binutils", [VmHost], "a smaller lvslab binary in the VM";
    CPIO: "cpio", "cpio", "cpio", [Tests], "reading the VM image's archive back in its test";
}

/// Programs every Linux host of lvslab's has without a package of this list: the shell's
/// builtins aside, Debian's Essential packages (coreutils, util-linux, findutils, grep, sed,
/// bash, dpkg, hostname, init-system-helpers, ...) and apt, and the tools of the host's own init
/// system (`service` and `update-rc.d` under SysV init, `chkconfig` on RHEL's, `systemctl`
/// under systemd). The VM's image checks that a minimal Debian root has each of them.
pub const BASE: &[&str] = &[
    // coreutils
    "base64",
    "cat",
    "chmod",
    "chown",
    "cp",
    "cut",
    "date",
    "dirname",
    "head",
    "ln",
    "ls",
    "mkdir",
    "mknod",
    "mktemp",
    "mv",
    "readlink",
    "rm",
    "sha256sum",
    "sleep",
    "sort",
    "stat",
    "sync",
    "tail",
    "timeout",
    "touch",
    "tr",
    "uniq",
    "wc",
    "id",
    "uname",
    "basename",
    "tee",
    "env",
    "nproc",
    "chroot",
    // util-linux, findutils, grep, sed, shells, dpkg, apt, hostname
    "unshare",
    "nsenter",
    "setsid",
    "flock",
    "setpriv",
    "dmesg",
    "mountpoint",
    "find",
    "xargs",
    "grep",
    "sed",
    "sh",
    "bash",
    "dpkg",
    "dpkg-query",
    "apt-get",
    "apt-cache",
    "hostname",
    // the init system's own, and the family's package manager
    "service",
    "update-rc.d",
    "chkconfig",
    "reboot",
    "dnf",
    "yum",
    "rpm",
];

/// Programs of the base system that only some inits or families have: not checked in the
/// VM's image.
const INIT_TOOLS: &[&str] = &[
    "service",
    "update-rc.d",
    "chkconfig",
    "reboot",
    "dnf",
    "yum",
    "rpm",
];

impl Program {
    /// The package that brings it on a host of `family` (`debian`, `redhat` or `other`, as in
    /// the facts; `other` gets Debian's name).
    pub fn package(&self, family: &str) -> &'static str {
        if family == "redhat" {
            self.dnf
        } else {
            self.apt
        }
    }

    /// Every name that serves: the program and its alternatives.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        std::iter::once(self.name).chain(self.also.iter().copied())
    }

    pub fn runs_in(&self, place: Place) -> bool {
        self.places.contains(&place)
    }

    /// `ping` (or `nginx`, `apache2` or `httpd`), for messages.
    pub fn named(&self) -> String {
        let names: Vec<String> = self.names().map(|n| format!("`{n}`")).collect();
        match names.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
            _ => names.concat(),
        }
    }
}

/// The programs of `place`.
pub fn of(place: Place) -> impl Iterator<Item = &'static Program> {
    PROGRAMS.iter().copied().filter(move |p| p.runs_in(place))
}

/// The program of that name (or alternative name).
#[cfg(test)]
pub fn named(name: &str) -> Option<&'static Program> {
    PROGRAMS
        .iter()
        .copied()
        .find(|p| p.names().any(|n| n == name))
}

/// The packages that bring `programs`, each once, in the list's order.
pub fn packages<'a>(programs: impl IntoIterator<Item = &'a Program>, family: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for p in programs {
        let package = p.package(family);
        if !out.iter().any(|o| o == package) {
            out.push(package.to_string());
        }
    }
    out
}

/// Names the programs of `needed` that a host lacks (by the names in `absent`, as its facts
/// say), with their packages: `the client has no `ping` (install iputils-ping)`. `None` when it
/// has them all.
pub fn lacking(who: &str, needed: &[&Program], absent: &[String], family: &str) -> Option<String> {
    let missing: Vec<&&Program> = needed
        .iter()
        .filter(|p| p.names().all(|n| absent.iter().any(|a| a == n)))
        .collect();
    if missing.is_empty() {
        return None;
    }
    let names: Vec<String> = missing.iter().map(|p| p.named()).collect();
    let packages = packages(missing.iter().map(|p| **p), family);
    let whys: Vec<&str> = missing.iter().map(|p| p.why).collect();
    Some(format!(
        "{who} has no {} (install {}): needed for {}",
        names.join(", "),
        packages.join(" "),
        whys.join("; ")
    ))
}

/// The names of `programs` (alternatives too) that are not on this machine's PATH.
pub fn absent_here<'a>(programs: impl IntoIterator<Item = &'a Program>) -> Vec<String> {
    programs
        .into_iter()
        .flat_map(|p| p.names())
        .filter(|n| find_in_path(n).is_none())
        .map(str::to_string)
        .collect()
}

/// A program on this machine's PATH (and the sbin directories root's PATH has).
pub fn find_in_path(name: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(
            ["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"]
                .into_iter()
                .map(Into::into),
        )
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// A shell check, for a minimal root: prints `missing NAME` for each program of `places` (and
/// of [`BASE`] but the init tools) that `command -v` does not find.
pub fn shell_check(places: &[Place]) -> String {
    let mut names: Vec<&str> = PROGRAMS
        .iter()
        .filter(|p| places.iter().any(|place| p.runs_in(*place)))
        .map(|p| p.name)
        .collect();
    names.extend(BASE.iter().filter(|b| !INIT_TOOLS.contains(b)));
    format!(
        "for p in {}; do command -v \"$p\" >/dev/null 2>&1 || echo \"missing $p\"; done; true",
        names.join(" ")
    )
}

#[cfg(test)]
mod scan;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_program_is_named_with_its_package_and_purpose() {
        let absent = vec!["ping".to_string()];
        let said = lacking("the client client", &[CURL, PING], &absent, "debian").unwrap();
        assert_eq!(
            said,
            "the client client has no `ping` (install iputils-ping): needed for a drill's load \
             where the kernel has no IPVS (the VIP itself is pinged)"
        );
        let said = lacking("node2", &[PING], &absent, "redhat").unwrap();
        assert!(said.contains("(install iputils)"), "{said}");
        assert_eq!(lacking("node2", &[CURL], &absent, "debian"), None);
    }

    #[test]
    fn an_alternative_serves() {
        let absent = vec!["nginx".to_string()];
        assert_eq!(lacking("node2", &[WEB_SERVER], &absent, "debian"), None);
        let absent: Vec<String> = ["nginx", "apache2", "httpd"].map(String::from).to_vec();
        let said = lacking("node2", &[WEB_SERVER], &absent, "debian").unwrap();
        assert!(said.contains("`nginx`, `apache2` or `httpd`"), "{said}");
    }

    #[test]
    fn packages_are_listed_once() {
        assert_eq!(
            packages([PGREP, PS, IP, TC], "debian"),
            vec!["procps".to_string(), "iproute2".to_string()]
        );
        assert_eq!(
            packages([IP, TC], "redhat"),
            vec!["iproute".to_string(), "iproute-tc".to_string()]
        );
    }

    #[test]
    fn every_program_has_one_entry_and_a_place() {
        for (i, p) in PROGRAMS.iter().enumerate() {
            assert!(!p.places.is_empty(), "{} runs nowhere", p.name);
            for q in &PROGRAMS[i + 1..] {
                assert!(
                    !p.names().any(|n| q.names().any(|m| m == n)),
                    "{} is listed twice",
                    p.name
                );
            }
            assert!(
                !BASE.contains(&p.name),
                "{} is in BASE and the list",
                p.name
            );
        }
    }
}
