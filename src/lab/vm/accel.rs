//! KVM or TCG. KVM is used only where the guest kernel really boots under it: nested or odd
//! hypervisors expose /dev/kvm and then crash qemu or hang the guest (both seen on the machines
//! this was built on). So the first VM of an image boots its kernel alone under KVM (no root
//! filesystem: it must get as far as the kernel's "unable to mount root" panic), and the verdict
//! is kept beside the image, per host kernel release. TCG works everywhere.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::Command;

use super::VmEvent;
use super::image::Image;

/// How qemu runs the guest's CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    /// Hardware virtualisation: `-accel kvm -cpu host`.
    Kvm,
    /// Emulation: slower, works everywhere.
    Tcg,
}

impl Accel {
    pub fn name(self) -> &'static str {
        match self {
            Accel::Kvm => "KVM",
            Accel::Tcg => "TCG",
        }
    }
}

/// Chooses KVM or TCG: `tcg` or `kvm`, or `auto` (the default) for KVM when it was seen to work.
pub const ACCEL_ENV: &str = "LVSLAB_VM_ACCEL";
/// A kernel that boots reaches its panic in a second or two under KVM; a hang is given this long.
const PROBE_LIMIT: Duration = Duration::from_secs(15);
/// What a kernel prints when it booted as far as it can without a root filesystem.
const PANIC_LINE: &str = "Kernel panic";

/// The accelerator for VMs of `image` on this machine (probing KVM once, see the module doc).
pub async fn choose(image: &Image, progress: &dyn Fn(VmEvent<'_>)) -> Accel {
    match std::env::var(ACCEL_ENV).ok().as_deref().map(str::trim) {
        Some("tcg") => return Accel::Tcg,
        Some("kvm") => return Accel::Kvm,
        _ => {}
    }
    if !kvm_device_usable() {
        return Accel::Tcg;
    }
    let Some(dir) = image.kernel.parent() else {
        return Accel::Tcg;
    };
    let release = host_release();
    let verdict_file = dir.join("kvm-verdict");
    if let Some(works) = std::fs::read_to_string(&verdict_file)
        .ok()
        .and_then(|text| parse_verdict(&text, &release))
    {
        return if works { Accel::Kvm } else { Accel::Tcg };
    }
    progress(VmEvent::Step(
        "checking once whether the guest kernel boots under KVM here",
    ));
    let started = Instant::now();
    let (works, why) = probe(&image.kernel, dir).await;
    progress(VmEvent::Step(&format!(
        "KVM {} ({why}, {:.1} s): the VMs use {}",
        if works { "works" } else { "does not work here" },
        started.elapsed().as_secs_f64(),
        if works { "KVM" } else { "TCG (emulation)" }
    )));
    let line = format!(
        "{} {release} {why}\n",
        if works { "works" } else { "fails" }
    );
    let _ = std::fs::write(&verdict_file, line);
    if works { Accel::Kvm } else { Accel::Tcg }
}

/// `works|fails <host release> <why>`: the verdict, if it was made on this host kernel.
fn parse_verdict(text: &str, release: &str) -> Option<bool> {
    let mut words = text.split_whitespace();
    let result = words.next()?;
    if words.next()? != release {
        return None;
    }
    match result {
        "works" => Some(true),
        "fails" => Some(false),
        _ => None,
    }
}

fn kvm_device_usable() -> bool {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok()
}

fn host_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|r| r.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

/// Boots `kernel` alone under KVM; true when it reached its panic and qemu ended by itself.
async fn probe(kernel: &Path, dir: &Path) -> (bool, String) {
    let log = dir.join(format!("kvm-probe-{}.log", std::process::id()));
    let _ = std::fs::remove_file(&log);
    let status = Command::new("timeout")
        .arg("--kill-after=5")
        .arg(PROBE_LIMIT.as_secs().to_string())
        .arg("qemu-system-x86_64")
        .args(["-accel", "kvm", "-cpu", "host", "-m", "256"])
        .args(["-display", "none", "-monitor", "none", "-no-reboot"])
        .args(["-nic", "none", "-serial"])
        .arg(format!("file:{}", log.display()))
        .arg("-kernel")
        .arg(kernel)
        .args(["-append", "console=ttyS0 panic=-1"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .await;
    let console = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    let out = match status {
        Ok(out) => out,
        Err(e) => return (false, format!("cannot run qemu: {e}")),
    };
    let reached_panic = console.contains(PANIC_LINE);
    match out.status.code() {
        Some(0) if reached_panic => (true, "the kernel booted".into()),
        Some(124) | Some(137) => (
            false,
            format!("the guest hung for {} s", PROBE_LIMIT.as_secs()),
        ),
        _ => {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let first = stderr
                .lines()
                .find(|l| l.contains("error") || l.contains("Assertion"))
                .or_else(|| stderr.lines().next())
                .unwrap_or("no message");
            (
                false,
                format!("qemu ended with {}: {}", out.status, first.trim()),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_count_only_for_the_same_host_kernel() {
        assert_eq!(
            parse_verdict("works 6.1.0-9 the kernel booted\n", "6.1.0-9"),
            Some(true)
        );
        assert_eq!(
            parse_verdict("fails 6.1.0-9 qemu ended", "6.1.0-9"),
            Some(false)
        );
        assert_eq!(parse_verdict("works 6.1.0-9 x", "6.18.0"), None);
        assert_eq!(parse_verdict("", "6.18.0"), None);
        assert_eq!(parse_verdict("maybe 6.18.0", "6.18.0"), None);
    }
}
