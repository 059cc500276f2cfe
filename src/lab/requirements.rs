//! What the machine needs before a lab can be built: root, network namespaces, overlayfs, the
//! tools the lab runs, and the packages the lab's hosts use (shared with the nodes through /usr).

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::error::LabError;
use super::procs;
use super::sys::{self, which};
use crate::programs::{self, Place};

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
pub async fn check(install_deps: bool, say: super::Say) -> Result<Host, LabError> {
    procs::require_root(
        "lvslab lab up",
        "it creates network namespaces, a bridge and mounts",
    )?;
    let installed = ensure(LAB, install_deps, say).await?;
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

/// What `lab up` needs on this machine: the lab's own programs and, as the nodes share this
/// machine's programs, every host's.
pub const LAB: &[Place] = &[Place::Lab, Place::Host];
/// What `lab up --vm` needs on this machine besides.
pub const VM: &[Place] = &[Place::VmHost];
/// What the test suite needs: all of it.
pub const TESTS: &[Place] = &[Place::Lab, Place::Host, Place::VmHost, Place::Tests];

/// One program of the list, and whether this machine has it.
#[derive(Debug, Clone, Serialize)]
pub struct Dep {
    pub program: &'static str,
    pub package: &'static str,
    pub found: bool,
    pub why: &'static str,
}

/// The programs of `places`, each with whether this machine has it (the right arping too).
pub fn deps(places: &[Place]) -> Vec<Dep> {
    let family = family();
    programs::PROGRAMS
        .iter()
        .copied()
        .filter(|p| places.iter().any(|place| p.runs_in(*place)))
        .map(|p| Dep {
            program: p.name,
            package: p.package(family),
            found: p.names().any(|n| which(n).is_some())
                && (p != programs::ARPING || is_iputils_arping()),
            why: p.why,
        })
        .collect()
}

fn family() -> &'static str {
    match package_manager() {
        Some(PackageManager::Dnf) => "redhat",
        _ => "debian",
    }
}

fn missing_packages(places: &[Place]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for dep in deps(places).into_iter().filter(|d| !d.found) {
        if !out.iter().any(|o| o == dep.package) {
            out.push(dep.package.to_string());
        }
    }
    out
}

/// Checks that this machine has the programs of `places`; installs their packages first when
/// `install` is set. Returns the packages it installed; an error naming what is missing.
pub async fn ensure(
    places: &[Place],
    install: bool,
    say: super::Say,
) -> Result<Vec<String>, LabError> {
    let missing = missing_packages(places);
    if missing.is_empty() {
        return Ok(Vec::new());
    }
    let manager = package_manager();
    if !install {
        return Err(LabError::Requirement(missing_sentence(manager, &missing)));
    }
    install_packages(manager, &missing, say).await?;
    let still: Vec<String> = deps(places)
        .into_iter()
        .filter(|d| !d.found)
        .map(|d| format!("`{}` ({})", d.program, d.package))
        .collect();
    if !still.is_empty() {
        return Err(LabError::Requirement(format!(
            "still missing after installing {}: {}",
            missing.join(" "),
            still.join(", ")
        )));
    }
    Ok(missing)
}

/// Debian also packages Thomas Habets' arping, which has other options; the lab's checks use
/// iputils' (`arping -b -I eth0 -c 2 VIP`).
fn is_iputils_arping() -> bool {
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
            "the lab needs packages that are not installed: run `{}` (or `lvslab lab deps --install`, which installs what `lab up` needs; `--vm` and `--tests` add the rest)",
            install_command(m, packages)
        ),
        None => format!(
            "the lab needs packages that are not installed (names as on Debian): {}",
            packages.join(" ")
        ),
    }
}

/// apt's installs go through one script (a fresh machine's lists refreshed, no questions, and
/// a qemu-utils from backports that would remove qemu-system pinned to its version).
const APT_INSTALL: &str = include_str!("install-packages.sh");

async fn install_packages(
    manager: Option<PackageManager>,
    packages: &[String],
    say: super::Say,
) -> Result<(), LabError> {
    let Some(manager) = manager else {
        return Err(LabError::Requirement(missing_sentence(None, packages)));
    };
    say(super::Progress::Installing(packages));
    let packages: Vec<&str> = packages.iter().map(String::as_str).collect();
    match manager {
        PackageManager::Apt => {
            let mut args = vec!["-c", APT_INSTALL, "install-packages"];
            args.extend(&packages);
            let status = tokio::process::Command::new("sh")
                .args(&args)
                .status()
                .await
                .map_err(|e| LabError::Command {
                    command: "sh install-packages.sh".into(),
                    detail: e.to_string(),
                })?;
            if !status.success() {
                return Err(LabError::Requirement(format!(
                    "installing {} with apt-get failed ({status})",
                    packages.join(" ")
                )));
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
