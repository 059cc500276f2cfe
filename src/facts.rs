//! Facts: what a host is, gathered once per host per run in one round trip.

use serde::Serialize;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Facts {
    pub os_id: String,
    pub os_like: String,
    pub os_version: String,
    /// Package manager: apt-get, dnf or yum (`None` when none was found).
    pub pkg: Option<String>,
    /// `systemd` when systemd runs, else `sysv` (init scripts through `service`).
    pub init: String,
    pub hostname: String,
    pub kernel: String,
    /// IPVS in the kernel: `loaded`, `available` (module present) or `missing`.
    pub ipvs: String,
    /// `debian`, `redhat` or `other`, from os_id and os_like.
    pub family: String,
    /// Addresses as (device, address/prefix).
    pub addresses: Vec<(String, String)>,
    /// Network devices (`lo`, `eth0`, `tunl0`, ...).
    pub links: Vec<String>,
    /// Kernel settings whose original value lvslab keeps (it changed them).
    pub saved_sysctls: Vec<String>,
    /// Routes whose original lvslab keeps (`default`, ...).
    pub saved_routes: Vec<String>,
    /// The programs of the hosts' list (`crate::programs`) that this host does not have.
    pub absent: Vec<String>,
}

impl Facts {
    /// Reads what `transport::sh::facts` prints; lines it does not know are left out.
    pub fn parse(text: &str) -> Facts {
        let mut f = Facts::default();
        for line in text.lines() {
            let Some((k, v)) = line.split_once('=') else {
                continue;
            };
            let v = v.trim().to_string();
            match k {
                "os_id" => f.os_id = v,
                "os_like" => f.os_like = v,
                "os_version" => f.os_version = v,
                "pkg" => f.pkg = Some(v),
                "init" => f.init = v,
                "hostname" => f.hostname = v,
                "kernel" => f.kernel = v,
                "ipvs" => f.ipvs = v,
                "link" => f.links.push(v),
                "absent" => f.absent.push(v),
                "saved" => match v.split_once('/') {
                    Some(("sysctl-orig", key)) => f.saved_sysctls.push(key.to_string()),
                    Some(("route-orig", to)) => f.saved_routes.push(to.replace('_', "/")),
                    _ => {}
                },
                "addr" => {
                    if let Some((dev, cidr)) = v.split_once(' ') {
                        f.addresses
                            .push((dev.trim_end_matches(':').to_string(), cidr.to_string()));
                    }
                }
                _ => {}
            }
        }
        f.family = if f.debian_family() {
            "debian".into()
        } else if ["rhel", "centos", "fedora", "rocky", "almalinux"]
            .iter()
            .any(|x| f.os_id == *x || f.os_like.split_whitespace().any(|l| l == *x))
        {
            "redhat".into()
        } else {
            "other".into()
        };
        f
    }

    /// Debian, Ubuntu and their derivatives.
    pub fn debian_family(&self) -> bool {
        self.os_id == "debian"
            || self.os_id == "ubuntu"
            || self.os_like.split_whitespace().any(|l| l == "debian")
    }

    /// Names the programs of `needed` this host lacks, with their packages (`None`: it has
    /// them all); `who` names the host in the sentence.
    pub fn lacking(&self, who: &str, needed: &[&crate::programs::Program]) -> Option<String> {
        crate::programs::lacking(who, needed, &self.absent, &self.family)
    }

    pub fn has_ipvs(&self) -> bool {
        self.ipvs == "loaded" || self.ipvs == "available"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_facts_script_output() {
        let f = Facts::parse(
            "os_id=debian\nos_like=\npkg=apt-get\ninit=sysv\nipvs=missing\naddr=eth0 198.18.0.11/24\naddr=lo 127.0.0.1/8\nlink=lo\nlink=tunl0\nsaved=sysctl-orig/net.ipv4.conf.all.rp_filter\nsaved=route-orig/default\nabsent=ping\n",
        );
        assert_eq!(f.absent, ["ping"]);
        let said = f.lacking("the client client", &[crate::programs::PING]);
        assert!(
            said.as_deref().is_some_and(
                |s| s.starts_with("the client client has no `ping` (install iputils-ping)")
            ),
            "{said:?}"
        );
        assert!(f.debian_family());
        assert_eq!(f.pkg.as_deref(), Some("apt-get"));
        assert!(!f.has_ipvs());
        assert_eq!(
            f.addresses[0],
            ("eth0".to_string(), "198.18.0.11/24".to_string())
        );
        assert_eq!(f.links, ["lo", "tunl0"]);
        assert_eq!(f.saved_sysctls, ["net.ipv4.conf.all.rp_filter"]);
        assert_eq!(f.saved_routes, ["default"]);
        let r = Facts::parse("os_id=rocky\nos_like=rhel centos fedora\npkg=dnf\n");
        assert!(!r.debian_family());
    }
}
