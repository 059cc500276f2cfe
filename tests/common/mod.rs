//! Test fixture: a real namespace lab (`lvslab lab up`) per test, removed when the test ends,
//! whether it passes or panics.
//!
//! Every lab uses 198.18.0.0/24, so two labs cannot be up at once on one machine: a test takes
//! the machine-wide test turn (an flock) before its lab goes up and keeps it until the lab is
//! down. Test binaries and tests inside a binary may run in parallel; their labs take turns. A
//! VM takes a turn of its own ([`vm_turn`]): a scenario that runs inside it holds no lab here.
//!
//! ```ignore
//! let lab = TestLab::up(2);
//! let out = lab.ssh("node2", "hostname");
//! ```

#![allow(dead_code)] // each test binary uses a different part of the fixture

pub mod vm;

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

/// The lvslab binary under test.
pub const LVSLAB: &str = env!("CARGO_BIN_EXE_lvslab");

/// Test labs are named `zt` + 6 hex digits, so leftovers of killed test runs can be recognised.
const TEST_PREFIX: &str = "zt";
pub const STATE_ROOT: &str = "/var/lib/lvslab/labs";

/// Runs `lvslab ARGS...` and returns its output.
pub fn lvslab(args: &[&str]) -> Output {
    Command::new(LVSLAB)
        .args(args)
        .env_remove("LVSLAB_INVENTORY")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {LVSLAB}: {e}"))
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Exit code, stdout and stderr, for assertion messages.
pub fn show(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        stdout(out),
        stderr(out)
    )
}

/// A lab name no other test (in this or another test binary) uses.
pub fn unique_name() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(
        "{TEST_PREFIX}{:04x}{:02x}",
        std::process::id() & 0xffff,
        n & 0xff
    )
}

/// The machine-wide turn to have a lab up. Taking it also removes labs that killed test runs
/// left behind (nobody else can hold a test lab while we hold the turn).
pub struct Turn {
    _lock: File,
}

pub fn turn() -> Turn {
    let lock = machine_lock("lvslab-lab-tests.lock");
    for name in leftover_test_labs() {
        let out = lvslab(&["lab", "down", "--name", &name]);
        assert!(
            out.status.success(),
            "removing leftover lab {name}: {}",
            show(&out)
        );
    }
    Turn { _lock: lock }
}

/// Names of test labs that exist in any form (namespaces, bridge, state directory).
/// The machine-wide turn to run a VM: one at a time (two emulated guests on a 2-core machine
/// each run at half speed, and the drills measure time). A VM that runs a scenario inside itself
/// holds no lab of this machine and needs only this turn; `lab demo` with its lab on this
/// machine takes [`turn`] first, then this one.
pub fn vm_turn() -> Turn {
    Turn {
        _lock: machine_lock("lvslab-vm-tests.lock"),
    }
}

/// An flock on a file of the temporary directory, held until the file is closed.
fn machine_lock(name: &str) -> File {
    let path = std::env::temp_dir().join(name);
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()));
    lock.lock()
        .unwrap_or_else(|e| panic!("cannot lock {}: {e}", path.display()));
    lock
}

fn leftover_test_labs() -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let mut add = |name: &str| {
        if name.starts_with(TEST_PREFIX) && !names.iter().any(|n| n == name) {
            names.push(name.to_string());
        }
    };
    for ns in list_dir("/run/netns") {
        if let Some((lab, _node)) = ns.strip_prefix("lvs-").and_then(|r| r.split_once('-')) {
            add(lab);
        }
    }
    for link in list_dir("/sys/class/net") {
        if let Some(lab) = link
            .strip_prefix("lvsb-")
            .or_else(|| link.strip_prefix("lvsi-"))
        {
            add(lab);
        }
    }
    for entry in list_dir(STATE_ROOT) {
        add(entry.trim_end_matches(".lock"));
    }
    names
}

pub fn list_dir(dir: &str) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Runs `lvslab lab down --name NAME` when dropped (also while a failed test unwinds).
pub struct DownOnDrop(pub String);

impl Drop for DownOnDrop {
    fn drop(&mut self) {
        let out = lvslab(&["lab", "down", "--name", &self.0]);
        if !out.status.success() {
            eprintln!("lab down --name {} failed: {}", self.0, show(&out));
        }
    }
}

/// A lab that is up, with what `lab up --json` said about it.
pub struct TestLab {
    pub name: String,
    pub dir: PathBuf,
    pub inventory: PathBuf,
    pub identity_file: PathBuf,
    pub known_hosts: PathBuf,
    /// `lab up --json` as parsed JSON.
    pub info: serde_json::Value,
    // Drop order is declaration order: the lab goes down before the turn is released.
    _down: DownOnDrop,
    _turn: Turn,
}

impl TestLab {
    /// A fresh lab with `real_servers` real servers and a unique name.
    pub fn up(real_servers: u16) -> TestLab {
        Self::up_named(&unique_name(), real_servers)
    }

    pub fn up_named(name: &str, real_servers: u16) -> TestLab {
        Self::up_with(name, real_servers, &[])
    }

    /// A fresh lab for a forwarding method (`dr`, `nat`, `tun`): `lab up --forwarding`.
    pub fn up_for(forwarding: &str, real_servers: u16) -> TestLab {
        Self::up_with(&unique_name(), real_servers, &["--forwarding", forwarding])
    }

    fn up_with(name: &str, real_servers: u16, extra: &[&str]) -> TestLab {
        let turn = turn();
        let down = DownOnDrop(name.to_string());
        let rs = real_servers.to_string();
        let mut args = vec!["--json", "lab", "up", "--name", name, "--real-servers", &rs];
        args.extend_from_slice(extra);
        let out = lvslab(&args);
        assert!(out.status.success(), "lab up failed: {}", show(&out));
        let info: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("lab up --json printed no JSON ({e}): {}", show(&out)));
        let path = |key: &str| {
            PathBuf::from(
                info[key]
                    .as_str()
                    .unwrap_or_else(|| panic!("`{key}` missing in {info}")),
            )
        };
        TestLab {
            name: name.to_string(),
            dir: path("dir"),
            inventory: path("inventory"),
            identity_file: path("identity_file"),
            known_hosts: path("known_hosts"),
            info: info.clone(),
            _down: down,
            _turn: turn,
        }
    }

    /// A node's address as the lab reported it.
    pub fn address(&self, node: &str) -> String {
        self.info["nodes"]
            .as_array()
            .and_then(|nodes| nodes.iter().find(|n| n["name"] == node))
            .and_then(|n| n["address"].as_str())
            .unwrap_or_else(|| panic!("no node {node} in {}", self.info))
            .to_string()
    }

    /// `lvslab lab SUBCOMMAND --name NAME` (status, down, up with defaults).
    pub fn lab(&self, subcommand: &str) -> Output {
        lvslab(&["lab", subcommand, "--name", &self.name])
    }

    /// Runs `argv` inside `node` with `lvslab lab exec`.
    pub fn exec(&self, node: &str, argv: &[&str]) -> Output {
        let mut args = vec!["lab", "exec", "--name", &self.name, node, "--"];
        args.extend_from_slice(argv);
        lvslab(&args)
    }

    /// Runs `command` on `node` with the real OpenSSH client, the lab's key and known_hosts,
    /// and no user configuration.
    pub fn ssh(&self, node: &str, command: &str) -> Output {
        let address = self.address(node);
        Command::new("ssh")
            .args(ssh_options(&self.identity_file, &self.known_hosts))
            .arg(format!("root@{address}"))
            .arg(command)
            .output()
            .unwrap_or_else(|e| panic!("cannot run ssh: {e}"))
    }
}

/// Options for a non-interactive OpenSSH client that trusts only the lab's known_hosts.
pub fn ssh_options(identity: &Path, known_hosts: &Path) -> Vec<String> {
    [
        "-F",
        "/dev/null",
        "-i",
        &identity.to_string_lossy(),
        "-o",
        &format!("UserKnownHostsFile={}", known_hosts.display()),
        "-o",
        "GlobalKnownHostsFile=/dev/null",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "BatchMode=yes",
        "-o",
        "ConnectTimeout=5",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Everything of lab `name` still on the machine: namespaces, links, mounts, processes, files.
/// Empty when the lab is fully gone.
pub fn traces_of(name: &str) -> Vec<String> {
    let ns_prefix = format!("lvs-{name}-");
    let veth_prefix = format!("lv-{name}-");
    let bridge = format!("lvsb-{name}");
    let inside = format!("lvsi-{name}");
    let dir = format!("{STATE_ROOT}/{name}");
    let mut traces = Vec::new();
    for ns in list_dir("/run/netns") {
        if ns.starts_with(&ns_prefix) {
            traces.push(format!("namespace {ns}"));
        }
    }
    for link in list_dir("/sys/class/net") {
        if link.starts_with(&veth_prefix) || link == bridge || link == inside {
            traces.push(format!("link {link}"));
        }
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    for line in mounts.lines() {
        if line.contains(&ns_prefix) || line.contains(&dir) {
            traces.push(format!("mount {line}"));
        }
    }
    for pid in list_dir("/proc") {
        if pid.parse::<u32>().is_err() {
            continue;
        }
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(&format!("{dir}/")) {
            traces.push(format!("process {pid}: {cmdline}"));
        }
    }
    if Path::new(&dir).exists() {
        traces.push(format!("directory {dir}"));
    }
    traces
}

/// Host pids of every process in network namespace `namespace` (`ip netns pids`, without a fork).
pub fn pids_in_namespace(namespace: &str) -> Vec<u32> {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::metadata(Path::new("/run/netns").join(namespace)) else {
        return Vec::new();
    };
    let wanted = format!("net:[{}]", meta.ino());
    list_dir("/proc")
        .into_iter()
        .filter_map(|pid| pid.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_link(format!("/proc/{pid}/ns/net"))
                .is_ok_and(|link| link.to_string_lossy() == wanted)
        })
        .collect()
}

/// The host pid of a node's PID 1 (its init): the process of the node's namespace whose pid in
/// its own pid namespace is 1.
pub fn node_pid1(lab: &str, node: &str) -> Option<u32> {
    pids_in_namespace(&format!("lvs-{lab}-{node}"))
        .into_iter()
        .find(|pid| {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            status
                .lines()
                .find_map(|l| l.strip_prefix("NSpid:"))
                .is_some_and(|v| {
                    let ids: Vec<&str> = v.split_whitespace().collect();
                    ids.len() > 1 && ids.last() == Some(&"1")
                })
        })
}

/// The host pid of a node's sshd: the child of its init whose name is `sshd`.
pub fn node_sshd(lab: &str, node: &str) -> Option<u32> {
    let init = node_pid1(lab, node)?;
    pids_in_namespace(&format!("lvs-{lab}-{node}"))
        .into_iter()
        .find(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // `pid (comm) state ppid ...`
            let Some((comm, rest)) = stat.split_once(") ") else {
                return false;
            };
            comm.ends_with("(sshd")
                && rest.split_whitespace().nth(1) == Some(init.to_string().as_str())
        })
}

/// Sends `signal` (e.g. "KILL", "TERM") to `pid` with kill(1).
pub fn kill(signal: &str, pid: u32) {
    let out = Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .output()
        .unwrap_or_else(|e| panic!("cannot run kill: {e}"));
    assert!(out.status.success(), "kill -{signal} {pid}: {}", show(&out));
}

/// Text edits of a test's inventory that fail loudly: a pattern that is not there (the written
/// inventory's format changed) stops the test instead of leaving the file as it was.
pub trait Edit {
    fn edit(&self, from: &str, to: &str) -> String;
}

impl Edit for str {
    fn edit(&self, from: &str, to: &str) -> String {
        assert!(
            self.contains(from),
            "the inventory has no `{from}` to change:\n{self}"
        );
        self.replace(from, to)
    }
}
