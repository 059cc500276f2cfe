//! What the machine needs before a lab can be built: root, network namespaces, overlayfs, the
//! tools the lab runs, and the packages the lab's hosts use (shared with the nodes through /usr).

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::error::LabError;
use super::procs;
use super::sys::{self, which};

/// One thing to install: found if any of `binaries` is present.
struct Need {
    binaries: &'static [&'static str],
    apt: &'static str,
    dnf: &'static str,
}

const NEEDS: &[Need] = &[
    Need {
        binaries: &["ip"],
        apt: "iproute2",
        dnf: "iproute",
    },
    Need {
        binaries: &["unshare"],
        apt: "util-linux",
        dnf: "util-linux",
    },
    Need {
        binaries: &["nsenter"],
        apt: "util-linux",
        dnf: "util-linux",
    },
    Need {
        binaries: &["setsid"],
        apt: "util-linux",
        dnf: "util-linux",
    },
    Need {
        binaries: &["mount"],
        apt: "mount",
        dnf: "util-linux",
    },
    Need {
        binaries: &["ssh-keygen"],
        apt: "openssh-client",
        dnf: "openssh",
    },
    Need {
        binaries: &["sshd"],
        apt: "openssh-server",
        dnf: "openssh-server",
    },
    Need {
        binaries: &["nginx", "apache2", "httpd"],
        apt: "nginx",
        dnf: "nginx",
    },
    Need {
        binaries: &["keepalived"],
        apt: "keepalived",
        dnf: "keepalived",
    },
    Need {
        binaries: &["ipvsadm"],
        apt: "ipvsadm",
        dnf: "ipvsadm",
    },
    Need {
        binaries: &["arping"],
        apt: "iputils-arping",
        dnf: "iputils",
    },
    Need {
        binaries: &["curl"],
        apt: "curl",
        dnf: "curl",
    },
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PackageManager {
    Apt,
    Dnf,
}

/// What the checks found, for building and for the report.
#[derive(Debug, Clone, Serialize)]
pub struct Host {
    pub sshd: PathBuf,
    pub sftp_server: PathBuf,
    /// `nginx` or `httpd` (apache2), the value of the inventory's `web_server`.
    pub web_server: String,
    pub ipvs: bool,
    /// Packages installed by `--install-deps`.
    pub installed: Vec<String>,
}

/// Checks everything `lab up` needs; installs missing packages when `install_deps` is set.
pub async fn check(install_deps: bool) -> Result<Host, LabError> {
    if !procs::is_root() {
        return Err(LabError::Requirement(
            "`lvslab lab` needs root (it creates network namespaces, a bridge and mounts): run it with sudo".into(),
        ));
    }
    let mut installed = Vec::new();
    let missing = missing_packages();
    if !missing.is_empty() {
        let manager = package_manager();
        if install_deps {
            install(manager, &missing).await?;
            installed = missing;
            let still = missing_packages();
            if !still.is_empty() {
                return Err(LabError::Requirement(format!(
                    "packages still missing after installing them: {}",
                    still.join(" ")
                )));
            }
        } else {
            return Err(LabError::Requirement(missing_sentence(manager, &missing)));
        }
    }
    if let Err(e) = sys::run("ip", &["netns", "list"], None).await {
        return Err(LabError::Requirement(format!(
            "this system cannot use network namespaces ({e})"
        )));
    }
    if !has_filesystem("overlay") && !modprobe("overlay").await {
        return Err(LabError::Requirement(
            "this kernel has no overlay filesystem, which the lab's nodes need for their own /etc, /var and /root".into(),
        ));
    }
    let found = |name: &str| {
        which(name).ok_or_else(|| LabError::Requirement(format!("`{name}` is not installed")))
    };
    let sshd = found("sshd")?;
    let sftp_server = [
        "/usr/lib/openssh/sftp-server",
        "/usr/libexec/openssh/sftp-server",
    ]
    .into_iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
    .unwrap_or_else(|| PathBuf::from("/usr/lib/openssh/sftp-server"));
    let web_server = if which("nginx").is_some() {
        "nginx"
    } else {
        "httpd"
    };
    Ok(Host {
        sshd,
        sftp_server,
        web_server: web_server.into(),
        ipvs: kernel_has_ipvs().await,
        installed,
    })
}

/// What systemd nodes need besides: systemd and systemd-nspawn, and the unified cgroup hierarchy
/// (the nodes' keepers make their cgroups there, with no systemd outside to ask).
pub fn check_systemd_nodes() -> Result<(), LabError> {
    let mut missing = Vec::new();
    if which("systemd-nspawn").is_none() {
        missing.push("systemd-container");
    }
    if !Path::new("/lib/systemd/systemd").exists()
        && !Path::new("/usr/lib/systemd/systemd").exists()
    {
        missing.push("systemd");
    }
    if !missing.is_empty() {
        return Err(LabError::Requirement(format!(
            "systemd nodes (`--init systemd`) boot this machine's tree with systemd-nspawn: \
             install {} (or use `lvslab lab up --vm --init systemd`, whose VM has them)",
            missing.join(" ")
        )));
    }
    if !Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        return Err(LabError::Requirement(
            "systemd nodes (`--init systemd`) need the unified cgroup hierarchy (cgroup v2) at \
             /sys/fs/cgroup, which this machine does not use: `lvslab lab up --vm --init systemd` \
             runs them in a VM that does"
                .into(),
        ));
    }
    Ok(())
}

/// IPVS is there if /proc/net/ip_vs exists or `modprobe ip_vs` makes it appear.
pub async fn kernel_has_ipvs() -> bool {
    let present = || Path::new("/proc/net/ip_vs").exists();
    present() || (modprobe("ip_vs").await && present())
}

fn missing_packages() -> Vec<String> {
    let manager = package_manager();
    let mut missing: Vec<String> = Vec::new();
    for need in NEEDS {
        let have = need.binaries.iter().any(|b| which(b).is_some()) && is_right_flavour(need);
        let package = match manager {
            Some(PackageManager::Dnf) => need.dnf,
            _ => need.apt,
        };
        if !have && !missing.iter().any(|m| m == package) {
            missing.push(package.to_string());
        }
    }
    missing
}

/// Debian also packages Thomas Habets' arping, which has other options; the lab's checks use
/// iputils' (`arping -b -I eth0 -c 2 VIP`).
fn is_right_flavour(need: &Need) -> bool {
    if need.binaries != ["arping"] {
        return true;
    }
    std::process::Command::new("arping")
        .arg("-V")
        .output()
        .map(|o| {
            let text = String::from_utf8_lossy(&o.stdout) + String::from_utf8_lossy(&o.stderr);
            text.contains("iputils")
        })
        .unwrap_or(false)
}

fn package_manager() -> Option<PackageManager> {
    if which("apt-get").is_some() {
        Some(PackageManager::Apt)
    } else if which("dnf").is_some() {
        Some(PackageManager::Dnf)
    } else {
        None
    }
}

fn install_command(manager: PackageManager, packages: &[String]) -> String {
    let tool = match manager {
        PackageManager::Apt => "apt-get install -y",
        PackageManager::Dnf => "dnf install -y",
    };
    format!("{tool} {}", packages.join(" "))
}

fn missing_sentence(manager: Option<PackageManager>, packages: &[String]) -> String {
    match manager {
        Some(m) => format!(
            "the lab needs packages that are not installed: run `{}` (or `lvslab lab up --install-deps`)",
            install_command(m, packages)
        ),
        None => format!(
            "the lab needs packages that are not installed (names as on Debian): {}",
            packages.join(" ")
        ),
    }
}

async fn install(manager: Option<PackageManager>, packages: &[String]) -> Result<(), LabError> {
    let Some(manager) = manager else {
        return Err(LabError::Requirement(missing_sentence(None, packages)));
    };
    let packages: Vec<&str> = packages.iter().map(String::as_str).collect();
    match manager {
        PackageManager::Apt => {
            // No debconf questions: the install must not wait for a terminal.
            let mut args = vec![
                "DEBIAN_FRONTEND=noninteractive",
                "apt-get",
                "install",
                "-y",
                "-q",
            ];
            args.extend(&packages);
            if sys::run("env", &args, None).await.is_err() {
                // apt's package lists may be missing or stale on a fresh machine: refresh once.
                sys::run("apt-get", &["update", "-q"], None).await?;
                sys::run("env", &args, None).await?;
            }
        }
        PackageManager::Dnf => {
            let mut args = vec!["install", "-y"];
            args.extend(&packages);
            sys::run("dnf", &args, None).await?;
        }
    }
    Ok(())
}

fn has_filesystem(name: &str) -> bool {
    std::fs::read_to_string("/proc/filesystems")
        .map(|t| t.lines().any(|l| l.split_whitespace().last() == Some(name)))
        .unwrap_or(false)
}

async fn modprobe(module: &str) -> bool {
    which("modprobe").is_some() && sys::run("modprobe", &["-q", module], None).await.is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_packages_are_named_with_the_install_command() {
        let pkgs = vec!["keepalived".to_string(), "ipvsadm".to_string()];
        let s = missing_sentence(Some(PackageManager::Apt), &pkgs);
        assert!(s.contains("`apt-get install -y keepalived ipvsadm`"), "{s}");
        let s = missing_sentence(Some(PackageManager::Dnf), &pkgs);
        assert!(s.contains("`dnf install -y keepalived ipvsadm`"), "{s}");
    }
}
