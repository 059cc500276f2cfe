//! The VM tier: a scenario script run inside a small qemu VM (KVM where it works, else TCG)
//! whose stock Debian kernel has IPVS, for machines whose own kernel has none.
//!
//! The guest is a root filesystem in an initramfs (no disk, no network device): the cached base
//! archive (see [`image`]) plus a small archive appended per run with the guest `/init`, the
//! scenario and this lvslab binary. The guest runs the scenario, prints its lines on the serial
//! console and powers off; the host streams that console and reads the verdict lines.
//!
//! What a scenario can rely on in the guest: it runs as root with `/root` as working directory
//! and no stdin; `LVSLAB_VM=1`; `/usr/local/bin/lvslab` (the binary that started the VM); the
//! packages of [`image::guest_packages`] (ip, ipvsadm, keepalived, nginx, sshd, curl, arping,
//! unshare/nsenter, ...); the modules ip_vs and its schedulers, veth, bridge and overlay loaded;
//! `lo` up; /proc, /sys, /dev, tmpfs on /run and /tmp. No systemd, no network outside the guest.
//! It reports with lines `VERDICT <name> PASS|FAIL <evidence>` and its exit status.

mod accel;
mod cpio;
mod image;
mod qemu;
mod sources;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use miette::{Context, IntoDiagnostic, miette};

pub use image::{CACHE_ENV, cache_dir};

/// The guest's /init: mounts, modules, the scenario, its exit status, power off.
const GUEST_INIT: &str = include_str!("vm/init.sh");
/// Where the scenario and the binary land in the guest.
pub const GUEST_SCENARIO: &str = "/lvslab-vm/scenario";
pub const GUEST_LVSLAB: &str = "/usr/local/bin/lvslab";
/// The console line the guest's /init prints when the scenario has ended.
const EXIT_MARKER: &str = "LVSLAB-VM-EXIT ";
const VERDICT_MARKER: &str = "VERDICT ";

/// What the caller sees while a VM run goes on.
#[derive(Debug, Clone, Copy)]
pub enum VmEvent<'a> {
    /// A step on the host (building the image, booting).
    Step(&'a str),
    /// A line of the guest's serial console.
    Console(&'a str),
}

/// One VM run: the scenario and the VM's size.
#[derive(Debug, Clone)]
pub struct VmSpec {
    /// A script; run by its `#!` interpreter, else by `sh`.
    pub scenario: String,
    pub memory_mib: u32,
    pub cpus: u32,
    /// The whole boot, scenario and power-off; qemu is ended after it.
    pub timeout: Duration,
}

impl VmSpec {
    pub fn new(scenario: impl Into<String>) -> Self {
        Self {
            scenario: scenario.into(),
            memory_mib: 2048,
            cpus: 2,
            timeout: Duration::from_secs(300),
        }
    }
}

/// A `VERDICT <name> PASS|FAIL <evidence>` line printed by the scenario.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub name: String,
    pub passed: bool,
    pub evidence: String,
}

/// How a scenario ended in the VM.
#[derive(Debug, Clone)]
pub struct VmOutcome {
    /// The scenario's exit status, from the guest's `LVSLAB-VM-EXIT` line.
    pub exit_code: i32,
    pub verdicts: Vec<Verdict>,
    /// Every console line, boot messages included.
    #[allow(
        dead_code,
        reason = "for callers that report after the run; vm-run streams instead"
    )]
    pub console: Vec<String>,
    /// Time spent preparing (image, initramfs) and in qemu (boot, scenario, power-off).
    pub prepare_time: Duration,
    pub vm_time: Duration,
}

impl VmOutcome {
    /// Exit status 0 and no verdict failed.
    pub fn passed(&self) -> bool {
        self.exit_code == 0 && self.verdicts.iter().all(|v| v.passed)
    }
}

/// Checks that this machine can run the VM tier (the programs of `Place::VmHost` in the one
/// list); the error names the missing packages with the command that installs them.
pub fn check_vm_requirements() -> Result<(), String> {
    use crate::programs::{self, Place};
    let mut problems = Vec::new();
    if !is_root() {
        problems.push("the VM tier builds its image with mmdebstrap and needs root".to_string());
    }
    let missing: Vec<&programs::Program> = programs::of(Place::VmHost)
        .filter(|p| !p.names().any(|n| programs::find_in_path(n).is_some()))
        .collect();
    if !missing.is_empty() {
        let packages = programs::packages(missing, "debian");
        problems.push(format!(
            "missing packages: {}. Install them with `lvslab lab deps --vm --install` (apt-get \
             install --no-install-recommends {}; a qemu-utils from backports conflicts with \
             qemu-system-x86, which `lab deps` handles)",
            packages.join(", "),
            packages.join(" ")
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// Builds the image if needed (once, ~35 s), boots the VM with the scenario, streams its console
/// to `progress`, and returns the scenario's exit status and verdicts. An error when the VM could
/// not run or the scenario did not report its end (a crash or a timeout): never a silent pass.
pub async fn run_vm(spec: &VmSpec, progress: impl Fn(VmEvent<'_>)) -> miette::Result<VmOutcome> {
    let progress: &dyn Fn(VmEvent<'_>) = &progress;
    check_vm_requirements().map_err(|e| miette!("the VM tier cannot run here: {e}"))?;
    let started = Instant::now();
    let run = RunDir::create()?;
    let (_, accel) = prepare_boot_files(
        &run.dir,
        &run.kernel(),
        &run.initrd(),
        &spec.scenario,
        &[],
        progress,
    )
    .await?;
    let prepare_time = started.elapsed();

    progress(VmEvent::Step(&format!(
        "booting the VM (qemu {}, {} MiB, {} CPUs, timeout {} s)",
        accel.name(),
        spec.memory_mib,
        spec.cpus,
        spec.timeout.as_secs()
    )));
    let boot_started = Instant::now();
    let mut console = Vec::new();
    let ended = qemu::boot(
        &qemu::Boot {
            machine: qemu::Machine {
                accel,
                kernel: &run.kernel(),
                initrd: &run.initrd(),
                serial_log: &run.serial_log(),
                pid_file: &run.dir.join("qemu.pid"),
                memory_mib: spec.memory_mib,
                cpus: spec.cpus,
            },
            timeout: spec.timeout,
        },
        &mut |line| {
            progress(VmEvent::Console(line));
            console.push(line.to_string());
        },
    )
    .await;
    let vm_time = boot_started.elapsed();
    let _ = fs::remove_file(run.initrd());

    let exit_code = console.iter().rev().find_map(|l| parse_exit(l));
    let failure = match (ended, exit_code) {
        (Err(error), _) => Some(error),
        (Ok(qemu::Ended::TimedOut), _) => Some(miette!(
            "the VM did not finish within {} s",
            spec.timeout.as_secs()
        )),
        (Ok(qemu::Ended::Exited), None) => Some(miette!(
            "the VM ended without the scenario's `{}` line (the guest crashed or /init failed)",
            EXIT_MARKER.trim()
        )),
        (Ok(qemu::Ended::Exited), Some(_)) => None,
    };
    if let Some(error) = failure {
        return Err(match run.keep_serial_log() {
            Some(log) => error.wrap_err(format!(
                "the VM run failed; the guest's console is in {}",
                log.display()
            )),
            None => error,
        });
    }
    let verdicts = console.iter().filter_map(|l| parse_verdict(l)).collect();
    Ok(VmOutcome {
        exit_code: exit_code.unwrap_or(-1),
        verdicts,
        console,
        prepare_time,
        vm_time,
    })
}

/// A file put into the guest besides the scenario (path relative to the guest's `/`).
#[derive(Debug, Clone)]
pub struct GuestFile {
    pub path: String,
    pub mode: u32,
    pub bytes: Vec<u8>,
}

/// Copies the cached image's kernel to `kernel` and its root filesystem to `initrd`, with the
/// guest /init, the scenario, this lvslab binary and `files` appended (building the image first
/// if there is none).
async fn prepare_boot_files(
    work_dir: &Path,
    kernel: &Path,
    initrd: &Path,
    scenario: &str,
    files: &[GuestFile],
    progress: &dyn Fn(VmEvent<'_>),
) -> miette::Result<(String, accel::Accel)> {
    let lvslab_bytes = guest_binary(work_dir).await?;
    let (key, accel) = {
        let cache = image::Cache::lock(progress).await?;
        let image = cache.image(progress).await?;
        progress(VmEvent::Step(&format!(
            "preparing the initramfs from image {}",
            image.key
        )));
        fs::copy(&image.kernel, kernel)
            .into_diagnostic()
            .wrap_err_with(|| format!("cannot copy {}", image.kernel.display()))?;
        tokio::fs::copy(&image.base_cpio, initrd)
            .await
            .into_diagnostic()
            .wrap_err_with(|| format!("cannot copy {}", image.base_cpio.display()))?;
        // Under the cache's lock: two VMs starting at once probe KVM once.
        let accel = accel::choose(&image, progress).await;
        (image.key.clone(), accel)
    };
    append_run_files(initrd, scenario, &lvslab_bytes, files)?;
    Ok((key, accel))
}

/// A VM that stays up after lvslab exits (`lab up --vm`): what it runs and where its files go.
pub struct DetachedVm<'a> {
    /// The VM's directory: pid file (and the boot files while it starts).
    pub dir: &'a Path,
    /// Where the guest's serial console is written.
    pub serial_log: &'a Path,
    /// qemu's `-name`, so a process list tells what the VM is.
    pub name: &'a str,
    /// Runs as the scenario; it must not end while the VM is wanted (when it does, the guest
    /// powers off after printing its exit line).
    pub scenario: String,
    pub files: Vec<GuestFile>,
    /// The tap devices the VM's network cards are connected to (one per lab network).
    pub taps: &'a [String],
    pub memory_mib: u32,
    pub cpus: u32,
}

impl DetachedVm<'_> {
    pub fn pid_file(&self) -> PathBuf {
        self.dir.join("qemu.pid")
    }
}

/// Builds the boot files and starts qemu in the background; returns qemu's pid once it runs.
/// The kernel and initramfs copies are removed once qemu has loaded them.
pub async fn start_detached(
    vm: &DetachedVm<'_>,
    progress: &dyn Fn(VmEvent<'_>),
) -> miette::Result<u32> {
    check_vm_requirements().map_err(|e| miette!("the VM cannot run here: {e}"))?;
    fs::create_dir_all(vm.dir)
        .into_diagnostic()
        .wrap_err_with(|| format!("cannot create {}", vm.dir.display()))?;
    let (kernel, initrd) = (vm.dir.join("vmlinuz"), vm.dir.join("initrd.cpio"));
    let (key, accel) =
        prepare_boot_files(vm.dir, &kernel, &initrd, &vm.scenario, &vm.files, progress).await?;
    progress(VmEvent::Step(&format!(
        "starting the VM (qemu {}, {} MiB, {} CPUs, kernel of {key})",
        accel.name(),
        vm.memory_mib,
        vm.cpus
    )));
    let started = qemu::start_detached(&qemu::DetachedBoot {
        machine: qemu::Machine {
            accel,
            kernel: &kernel,
            initrd: &initrd,
            serial_log: vm.serial_log,
            pid_file: &vm.pid_file(),
            memory_mib: vm.memory_mib,
            cpus: vm.cpus,
        },
        name: vm.name,
        taps: vm.taps,
    })
    .await;
    let _ = fs::remove_file(&initrd);
    let _ = fs::remove_file(&kernel);
    started
}

/// Overrides the VM's timeout (seconds) for `lab vm-run`: long scenarios under a slow TCG.
pub const TIMEOUT_ENV: &str = "LVSLAB_VM_TIMEOUT";

/// The VM timeout from [`TIMEOUT_ENV`]: `None` when unset, an error naming a bad value.
pub fn timeout_override() -> Result<Option<Duration>, String> {
    let Some(value) = std::env::var_os(TIMEOUT_ENV) else {
        return Ok(None);
    };
    value
        .to_str()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|s| *s > 0)
        .map(|s| Some(Duration::from_secs(s)))
        .ok_or_else(|| format!("{TIMEOUT_ENV} must be a number of seconds, not {value:?}"))
}

/// This lvslab binary for the guest, without its debug information when binutils' `strip` is
/// there (a debug build is ~90 MB, ~30 MB stripped: every MB is unpacked by an emulated CPU).
async fn guest_binary(run_dir: &Path) -> miette::Result<Vec<u8>> {
    let lvslab = std::env::current_exe()
        .into_diagnostic()
        .wrap_err("cannot find the lvslab binary")?;
    let stripped = run_dir.join("lvslab");
    let strip = tokio::process::Command::new("strip")
        .arg("-o")
        .arg(&stripped)
        .arg(&lvslab)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .await;
    let source = if strip.is_ok_and(|s| s.success()) {
        stripped.clone()
    } else {
        lvslab
    };
    let bytes = tokio::fs::read(&source)
        .await
        .into_diagnostic()
        .wrap_err_with(|| format!("cannot read {}", source.display()))?;
    let _ = fs::remove_file(&stripped);
    Ok(bytes)
}

/// Appends the per-run archive (guest /init, scenario, lvslab binary, other files) to the
/// initramfs copy. Directories of `files` are made as needed.
fn append_run_files(
    initrd: &Path,
    scenario: &str,
    lvslab: &[u8],
    files: &[GuestFile],
) -> miette::Result<()> {
    let write = || -> std::io::Result<()> {
        let file = fs::OpenOptions::new().append(true).open(initrd)?;
        let mut archive = cpio::Writer::new(std::io::BufWriter::with_capacity(1 << 20, file));
        archive.file("init", 0o755, GUEST_INIT.as_bytes())?;
        archive.dir("lvslab-vm", 0o755)?;
        archive.file(
            GUEST_SCENARIO.trim_start_matches('/'),
            0o755,
            scenario.as_bytes(),
        )?;
        archive.file(GUEST_LVSLAB.trim_start_matches('/'), 0o755, lvslab)?;
        let mut made: Vec<&str> = vec!["lvslab-vm"];
        for file in files {
            let path = file.path.trim_start_matches('/');
            // Parents first: `a`, `a/b`, ... for `a/b/c`.
            for (at, _) in path.match_indices('/') {
                let parent = &path[..at];
                if !made.contains(&parent) {
                    archive.dir(parent, 0o755)?;
                    made.push(parent);
                }
            }
            archive.file(path, file.mode, &file.bytes)?;
        }
        archive.finish()?.into_inner().map_err(|e| e.into_error())?;
        Ok(())
    };
    write()
        .into_diagnostic()
        .wrap_err_with(|| format!("cannot append the run's files to {}", initrd.display()))
}

/// `LVSLAB-VM-EXIT <status> ...`
fn parse_exit(line: &str) -> Option<i32> {
    let rest = line.trim().strip_prefix(EXIT_MARKER)?;
    rest.split_whitespace().next()?.parse().ok()
}

/// `VERDICT <name> PASS|FAIL <evidence>`; a malformed verdict counts as a failed one.
fn parse_verdict(line: &str) -> Option<Verdict> {
    let rest = line.trim().strip_prefix(VERDICT_MARKER)?;
    let mut words = rest.splitn(3, ' ');
    let name = words.next().unwrap_or_default().to_string();
    let result = words.next().unwrap_or_default();
    let evidence = words.next().unwrap_or_default().trim().to_string();
    match result {
        "PASS" => Some(Verdict {
            name,
            passed: true,
            evidence,
        }),
        "FAIL" => Some(Verdict {
            name,
            passed: false,
            evidence,
        }),
        _ => Some(Verdict {
            name,
            passed: false,
            evidence: format!("malformed verdict line: {line}"),
        }),
    }
}

/// A run's working directory under the cache: kernel, initramfs, console log. Removed when the
/// run is over (a failed run's console log is kept in `logs/`).
struct RunDir {
    dir: PathBuf,
}

/// Failed runs' console logs kept in the cache's `logs/`.
const KEPT_LOGS: usize = 10;

impl RunDir {
    fn create() -> miette::Result<RunDir> {
        static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = cache_dir()
            .join("runs")
            .join(format!("{}-{n}", std::process::id()));
        let _ = image::remove_tree(&dir);
        fs::create_dir_all(&dir)
            .into_diagnostic()
            .wrap_err_with(|| {
                format!(
                    "cannot create {} (run as root, or set {CACHE_ENV})",
                    dir.display()
                )
            })?;
        Ok(RunDir { dir })
    }

    fn kernel(&self) -> PathBuf {
        self.dir.join("vmlinuz")
    }

    fn initrd(&self) -> PathBuf {
        self.dir.join("initrd.cpio")
    }

    fn serial_log(&self) -> PathBuf {
        self.dir.join("serial.log")
    }

    /// Moves the console log to the cache's `logs/` (the newest few are kept) and returns its
    /// new path: the run directory itself goes when the run ends.
    fn keep_serial_log(&self) -> Option<PathBuf> {
        let logs = cache_dir().join("logs");
        fs::create_dir_all(&logs).ok()?;
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let run_name = self.dir.file_name()?.to_string_lossy().to_string();
        let kept = logs.join(format!("{stamp}-{run_name}-serial.log"));
        fs::rename(self.serial_log(), &kept).ok()?;
        let mut old: Vec<PathBuf> = fs::read_dir(&logs)
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        // Names start with the time: the oldest sort first.
        old.sort();
        let excess = old.len().saturating_sub(KEPT_LOGS);
        for path in old.into_iter().take(excess) {
            let _ = fs::remove_file(path);
        }
        Some(kept)
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        let _ = image::remove_tree(&self.dir);
    }
}

/// The effective user id is 0 (from /proc: no unsafe call needed).
fn is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let uids = status
                .lines()
                .find_map(|l| l.strip_prefix("Uid:"))?
                .to_string();
            uids.split_whitespace().nth(1).map(|euid| euid == "0")
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdict_lines() {
        assert_eq!(
            parse_verdict("VERDICT rr-distribution PASS node2=5 node3=5"),
            Some(Verdict {
                name: "rr-distribution".into(),
                passed: true,
                evidence: "node2=5 node3=5".into()
            })
        );
        assert_eq!(
            parse_verdict("VERDICT ipvs FAIL").map(|v| v.passed),
            Some(false)
        );
        assert_eq!(
            parse_verdict("VERDICT ipvs MAYBE x").map(|v| v.passed),
            Some(false)
        );
        assert_eq!(parse_verdict("[    5.1] sysrq: Power Off"), None);
    }

    #[test]
    fn exit_lines() {
        assert_eq!(parse_exit("LVSLAB-VM-EXIT 0 uptime 9.12s"), Some(0));
        assert_eq!(parse_exit("LVSLAB-VM-EXIT 3"), Some(3));
        assert_eq!(parse_exit("echo LVSLAB-VM-EXIT 0"), None);
    }

    #[test]
    fn the_guest_init_runs_the_scenario_and_reports_its_end() {
        assert!(GUEST_INIT.contains(GUEST_SCENARIO));
        assert!(GUEST_INIT.contains(EXIT_MARKER.trim()));
        assert!(GUEST_INIT.contains("/proc/sysrq-trigger"));
    }
}
