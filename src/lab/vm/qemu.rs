//! Boots the guest under qemu (KVM or TCG, see `accel`) and streams its serial console while it
//! runs.

use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use miette::{Context, IntoDiagnostic};

use super::accel::Accel;
use tokio::process::Command;

/// The kernel command line: serial console; a kernel panic ends the VM at once (with -no-reboot).
/// Under TCG the guest's speculation mitigations (retpolines) guard against nothing and cost
/// every syscall, and the TSC is steady (it is the host's) while the kernel's watchdog would
/// drop it for the HPET, whose reads are emulated device accesses. Measured in the VM: ten
/// `/bin/true` 650 -> 535 ms, a converging `up` 32.6 -> 30.4 s; the guest's clock kept the
/// host's time to 2 ms over a minute.
const KERNEL_APPEND: &str = "console=ttyS0 panic=-1 quiet mitigations=off tsc=reliable";
/// The emulated CPU: the baseline model plus RDRAND (entropy for sshd's keys at once) and the
/// instructions crypto code uses (ssh key exchanges). Measured under TCG: boots 3-6 s faster
/// than `-cpu max`, with the same speed for ssh-keygen and lvslab afterwards.
const CPU_MODEL: &str = "qemu64,+rdrand,+aes,+pclmulqdq,+ssse3,+sse4.1,+sse4.2,+popcnt";
/// How often the console log is read while the VM runs.
const POLL: Duration = Duration::from_millis(100);

/// The machine qemu emulates and what it boots, for both kinds of boot.
pub struct Machine<'a> {
    pub accel: Accel,
    pub kernel: &'a Path,
    pub initrd: &'a Path,
    pub serial_log: &'a Path,
    pub pid_file: &'a Path,
    pub memory_mib: u32,
    pub cpus: u32,
}

impl Machine<'_> {
    /// qemu's arguments for this machine (network devices and how qemu runs are the caller's).
    fn args(&self) -> Vec<std::ffi::OsString> {
        let mut args: Vec<std::ffi::OsString> = Vec::new();
        let mut add = |words: &[&str]| args.extend(words.iter().map(Into::into));
        // KVM only where it was seen to boot the guest kernel (see `accel`).
        match self.accel {
            Accel::Kvm => add(&["-accel", "kvm", "-cpu", "host"]),
            Accel::Tcg => add(&["-accel", "tcg", "-cpu", CPU_MODEL]),
        }
        add(&["-m", &self.memory_mib.to_string()]);
        add(&["-smp", &self.cpus.to_string()]);
        add(&["-display", "none", "-monitor", "none", "-no-reboot"]);
        let console = format!("file,id=console,path={}", qemu_escape(self.serial_log));
        add(&["-chardev", &console, "-serial", "chardev:console"]);
        add(&["-append", KERNEL_APPEND]);
        args.extend(["-pidfile".into(), self.pid_file.into()]);
        args.extend(["-kernel".into(), self.kernel.into()]);
        args.extend(["-initrd".into(), self.initrd.into()]);
        args
    }
}

/// What qemu needs for one boot that runs a scenario to its end.
pub struct Boot<'a> {
    pub machine: Machine<'a>,
    pub timeout: Duration,
}

/// How qemu ended.
pub enum Ended {
    /// qemu ended normally (the guest powered off or its kernel panicked).
    Exited,
    /// `timeout` ended it: the guest did not finish in time.
    TimedOut,
}

/// Boots, calls `line` for each console line as it appears, and returns when qemu has exited.
pub async fn boot(spec: &Boot<'_>, line: &mut dyn FnMut(&str)) -> miette::Result<Ended> {
    let mut cmd = Command::new("timeout");
    // --foreground keeps qemu in lvslab's process group, so a Ctrl-C reaches it too;
    // timeout itself bounds the VM even if lvslab dies.
    cmd.arg("--foreground")
        .arg("--kill-after=10")
        .arg(format!("{}", spec.timeout.as_secs().max(1)))
        .arg("qemu-system-x86_64")
        .args(spec.machine.args())
        .args(["-nic", "none"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .into_diagnostic()
        .wrap_err("cannot start qemu-system-x86_64 (under timeout)")?;
    let mut guard = QemuGuard {
        pid_file: spec.machine.pid_file.to_path_buf(),
        armed: true,
    };
    let mut stderr = child.stderr.take();
    let stderr_reader = tokio::spawn(async move {
        let mut text = String::new();
        if let Some(stderr) = stderr.as_mut() {
            let _ = tokio::io::AsyncReadExt::read_to_string(stderr, &mut text).await;
        }
        text
    });

    let mut console = ConsoleTail::new(spec.machine.serial_log);
    let status = loop {
        tokio::select! {
            status = child.wait() => break status.into_diagnostic().wrap_err("waiting for qemu")?,
            () = tokio::time::sleep(POLL) => console.read_lines(line),
        }
    };
    console.read_lines(line);
    console.finish(line);
    guard.armed = false;
    let stderr = stderr_reader.await.unwrap_or_default();
    match status.code() {
        Some(0) => Ok(Ended::Exited),
        // GNU timeout: 124 timed out (TERM sent), 137 after the KILL that followed.
        Some(124) | Some(137) => Ok(Ended::TimedOut),
        _ => Err(miette::miette!(
            "qemu failed ({status}): {}",
            if stderr.trim().is_empty() {
                "no message"
            } else {
                stderr.trim()
            }
        )),
    }
}

/// What qemu needs for a VM that runs on after lvslab exits (`lab up --vm`).
pub struct DetachedBoot<'a> {
    pub machine: Machine<'a>,
    pub name: &'a str,
    /// Existing tap devices; a virtio network card of the VM is connected to each, in order
    /// (the guest sees them as eth0, eth1, ...).
    pub taps: &'a [String],
}

/// Starts qemu with `-daemonize` (it returns once the VM runs, or with qemu's error) and returns
/// the VM's pid from the pid file.
pub async fn start_detached(spec: &DetachedBoot<'_>) -> miette::Result<u32> {
    let mut cmd = Command::new("qemu-system-x86_64");
    cmd.args(spec.machine.args()).args(["-name", spec.name]);
    for (i, tap) in spec.taps.iter().enumerate() {
        cmd.arg("-netdev")
            .arg(format!(
                "tap,id=lab{i},ifname={tap},script=no,downscript=no"
            ))
            .arg("-device")
            .arg(format!("virtio-net-pci,netdev=lab{i}"));
    }
    cmd.arg("-daemonize")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let out = cmd
        .output()
        .await
        .into_diagnostic()
        .wrap_err("cannot start qemu-system-x86_64")?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(miette::miette!(
            "qemu failed to start the VM ({}): {}",
            out.status,
            if stderr.trim().is_empty() {
                "no message"
            } else {
                stderr.trim()
            }
        ));
    }
    let pid_file = spec.machine.pid_file;
    let text = fs::read_to_string(pid_file)
        .into_diagnostic()
        .wrap_err_with(|| format!("qemu started but wrote no {}", pid_file.display()))?;
    text.trim()
        .parse::<u32>()
        .into_diagnostic()
        .wrap_err_with(|| format!("{} does not hold a pid", pid_file.display()))
}

/// qemu option values double a comma to mean a literal one.
fn qemu_escape(path: &Path) -> String {
    path.to_string_lossy().replace(',', ",,")
}

/// Reads the serial log as qemu appends to it and hands out complete lines.
struct ConsoleTail {
    path: PathBuf,
    file: Option<fs::File>,
    offset: u64,
    partial: Vec<u8>,
}

impl ConsoleTail {
    fn new(path: &Path) -> Self {
        Self {
            path: path.to_path_buf(),
            file: None,
            offset: 0,
            partial: Vec::new(),
        }
    }

    fn read_lines(&mut self, line: &mut dyn FnMut(&str)) {
        if self.file.is_none() {
            // qemu creates the file shortly after it starts.
            self.file = fs::File::open(&self.path).ok();
        }
        let Some(file) = self.file.as_mut() else {
            return;
        };
        if file.seek(SeekFrom::Start(self.offset)).is_err() {
            return;
        }
        let mut fresh = Vec::new();
        let Ok(n) = file.read_to_end(&mut fresh) else {
            return;
        };
        self.offset += n as u64;
        self.partial.extend_from_slice(&fresh);
        while let Some(end) = self.partial.iter().position(|&b| b == b'\n') {
            let raw: Vec<u8> = self.partial.drain(..=end).collect();
            line(clean(&raw).as_str());
        }
    }

    /// The last line, when the guest ended without a newline.
    fn finish(&mut self, line: &mut dyn FnMut(&str)) {
        if !self.partial.is_empty() {
            let raw = std::mem::take(&mut self.partial);
            line(clean(&raw).as_str());
        }
    }
}

/// A console line without its line ending (the tty sends CR LF), terminal colour sequences
/// (`ESC [ ... letter`) and other control characters.
fn clean(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                // Parameters and intermediates, up to the final byte (a letter, `@`, `~`...).
                for next in chars.by_ref() {
                    if ('@'..='~').contains(&next) {
                        break;
                    }
                }
            }
        } else if !c.is_control() || c == '\t' {
            out.push(c);
        }
    }
    out
}

/// Ends qemu when the boot is abandoned before qemu exited (the future was dropped).
struct QemuGuard {
    pid_file: PathBuf,
    armed: bool,
}

impl Drop for QemuGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let Ok(text) = fs::read_to_string(&self.pid_file) else {
            return;
        };
        let Ok(pid) = text.trim().parse::<u32>() else {
            return;
        };
        // Never signal anything but our own qemu: check the pid is still a qemu process.
        let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.starts_with("qemu-system") {
            let _ = std::process::Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_lines_lose_cr_and_escapes() {
        assert_eq!(clean(b"VERDICT x PASS ok\r\n"), "VERDICT x PASS ok");
        assert_eq!(clean(b"\x1b[32mPASS\x1b[0m http\r\n"), "PASS http");
        assert_eq!(clean(b"a\x1bb\x07c"), "abc");
    }

    #[test]
    fn commas_are_doubled_for_qemu() {
        assert_eq!(
            qemu_escape(Path::new("/tmp/a,b/serial.log")),
            "/tmp/a,,b/serial.log"
        );
    }
}
