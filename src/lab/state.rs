//! The lab's state directory (`/var/lib/lvslab/labs/NAME/`), its lock, and the record of what
//! `lab up` built.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::{IoContext, LabError};
use super::plan::{LabPlan, STATE_ROOT};

/// Paths of one lab's files.
#[derive(Debug, Clone)]
pub struct LabPaths {
    pub dir: PathBuf,
    pub lock: PathBuf,
}

impl LabPaths {
    pub fn new(lab: &str) -> Self {
        let root = Path::new(STATE_ROOT);
        LabPaths {
            dir: root.join(lab),
            lock: root.join(format!("{lab}.lock")),
        }
    }

    /// The lock that makes `up` of two different labs at once safe: they would share 198.18.0.0/24.
    pub fn network_lock() -> PathBuf {
        Path::new(STATE_ROOT).join(".network.lock")
    }

    pub fn identity(&self) -> PathBuf {
        self.dir.join("id_ed25519")
    }
    pub fn identity_pub(&self) -> PathBuf {
        self.dir.join("id_ed25519.pub")
    }
    pub fn known_hosts(&self) -> PathBuf {
        self.dir.join("known_hosts")
    }
    pub fn inventory(&self) -> PathBuf {
        self.dir.join("inventory.yml")
    }
    /// The PID 1 of every node (a shell script that mounts, then execs sshd).
    pub fn init_script(&self) -> PathBuf {
        self.dir.join("node-init.sh")
    }
    /// The keeper of every systemd node (`lab up --init systemd`).
    pub fn systemd_script(&self) -> PathBuf {
        self.dir.join("node-systemd.sh")
    }
    /// The lower layer of every node's /root: a stock home from /etc/skel, not the machine's /root.
    pub fn clean_home(&self) -> PathBuf {
        self.dir.join("root-home")
    }
    pub fn record(&self) -> PathBuf {
        self.dir.join("lab.json")
    }
    /// The VM of `lab up --vm`: console log, qemu's pid file.
    /// The console log of the lab's VM (`lab up --vm`).
    pub fn console_log(&self) -> PathBuf {
        self.vm_dir().join("console.log")
    }

    pub fn vm_dir(&self) -> PathBuf {
        self.dir.join("vm")
    }
    pub fn node(&self, node: &str) -> NodePaths {
        NodePaths {
            dir: self.dir.join("nodes").join(node),
        }
    }
}

/// Paths of one node's files.
#[derive(Debug, Clone)]
pub struct NodePaths {
    pub dir: PathBuf,
}

impl NodePaths {
    pub fn sshd_config(&self) -> PathBuf {
        self.dir.join("sshd_config")
    }
    pub fn host_key(&self) -> PathBuf {
        self.dir.join("ssh_host_ed25519_key")
    }
    pub fn host_key_pub(&self) -> PathBuf {
        self.dir.join("ssh_host_ed25519_key.pub")
    }
    pub fn pid_file(&self) -> PathBuf {
        self.dir.join("unshare.pid")
    }
    /// sshd's log (`-e`) and anything the init script prints.
    pub fn log(&self) -> PathBuf {
        self.dir.join("node.log")
    }
    /// Overlay upper dir for `/etc`, `/var` or `/root` (given without the slash).
    /// A systemd node's files, laid out as its root tree (copied onto its disk at its start).
    pub fn seed(&self) -> PathBuf {
        self.dir.join("seed")
    }
    pub fn upper(&self, layer: &str) -> PathBuf {
        self.dir.join("upper").join(layer)
    }
    pub fn work(&self, layer: &str) -> PathBuf {
        self.dir.join("work").join(layer)
    }
}

/// What `lab up` built, written to `lab.json` so status, exec and down know the nodes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LabRecord {
    pub plan: LabPlan,
    /// `nginx` or `httpd`, as written into the inventory.
    pub web_server: String,
    /// Set when the lab runs inside a VM (`lab up --vm`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vm: Option<VmRecord>,
}

/// The VM of a lab built with `lab up --vm`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmRecord {
    /// The tap devices on the host's side of the lab's bridges.
    pub taps: Vec<String>,
    pub memory_mib: u32,
    pub cpus: u32,
}

impl LabRecord {
    pub fn load(paths: &LabPaths) -> Result<Option<Self>, LabError> {
        let path = paths.record();
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(serde_json::from_str(&text).ok()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(LabError::io("cannot read the lab record", &path, e)),
        }
    }

    pub fn save(&self, paths: &LabPaths) -> Result<(), LabError> {
        let text = serde_json::to_string_pretty(self).map_err(|e| LabError::Command {
            command: "serialize lab.json".into(),
            detail: e.to_string(),
        })?;
        write_atomically(&paths.record(), text.as_bytes(), 0o644)
    }
}

/// Writes `path` through a temporary file and a rename, so readers never see half a file.
pub fn write_atomically(path: &Path, contents: &[u8], mode: u32) -> Result<(), LabError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .ctx("cannot create", &tmp)?;
    file.write_all(contents).ctx("cannot write", &tmp)?;
    file.sync_all().ctx("cannot write", &tmp)?;
    std::fs::rename(&tmp, path).ctx("cannot rename into place", path)
}

/// Writes a small file with the given mode (not atomically: for files of a lab being built).
pub fn write_file(path: &Path, contents: &[u8], mode: u32) -> Result<(), LabError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .ctx("cannot create", path)?;
    file.write_all(contents).ctx("cannot write", path)
}

/// An exclusive `flock` on a lock file, held until dropped.
#[derive(Debug)]
pub struct Lock {
    file: File,
    path: PathBuf,
}

impl Lock {
    /// Waits for the lock. Safe against a holder that removes the file before releasing it:
    /// the lock counts only if the path still names the locked file.
    pub async fn acquire(path: PathBuf, say: super::Say) -> Result<Lock, LabError> {
        tokio::task::spawn_blocking(move || Self::acquire_blocking(path, say))
            .await
            .map_err(|e| LabError::Command {
                command: "wait for the lab lock".into(),
                detail: e.to_string(),
            })?
    }

    fn acquire_blocking(path: PathBuf, say: super::Say) -> Result<Lock, LabError> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).ctx("cannot create", parent)?;
        }
        let mut told = false;
        loop {
            let file = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(&path)
                .ctx("cannot open the lock file", &path)?;
            match file.try_lock() {
                Ok(()) => {}
                Err(std::fs::TryLockError::WouldBlock) => {
                    if !told {
                        say(super::Progress::Waiting(&path));
                        told = true;
                    }
                    file.lock().ctx("cannot lock", &path)?;
                }
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(LabError::io("cannot lock", &path, e));
                }
            }
            let held = file.metadata().ctx("cannot stat", &path)?;
            match std::fs::metadata(&path) {
                Ok(now) if now.ino() == held.ino() && now.dev() == held.dev() => {
                    return Ok(Lock { file, path });
                }
                // Removed or replaced by the previous holder: take the lock on the new file.
                _ => continue,
            }
        }
    }

    /// After a failed `up` that left nothing: removes the lab's lock file unless someone holds
    /// it, so lock files of labs that never came up do not pile up.
    pub fn remove_if_unused(paths: &LabPaths) {
        if paths.dir.exists() {
            return;
        }
        let Ok(file) = OpenOptions::new().write(true).open(&paths.lock) else {
            return;
        };
        if file.try_lock().is_ok() {
            let _ = std::fs::remove_file(&paths.lock);
        }
    }

    /// Removes the lock file, then releases the lock (for `down`: no lock files pile up).
    pub fn remove(self) {
        let _ = std::fs::remove_file(&self.path);
        drop(self.file);
    }
}
