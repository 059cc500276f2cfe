//! Removing a lab: its processes, namespaces, links and files. Works from names alone, so it
//! also removes what a crashed or killed run left behind.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::error::{IoContext, LabError};
use super::netns;
use super::plan::{self, check_name};
use super::procs;
use super::state::{LabPaths, Lock};
use super::sys;

/// What a removal found and removed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DownReport {
    pub name: String,
    /// Processes killed (nodes' `unshare`, sshd and everything started inside the nodes).
    pub processes: usize,
    /// The VM of `lab up --vm` that was stopped (qemu's pid), if there was one.
    pub vm: Option<u32>,
    pub namespaces: Vec<String>,
    /// The bridge and the host-side veths.
    pub links: Vec<String>,
    /// The state directory, if there was one.
    pub state_dir: Option<PathBuf>,
}

impl DownReport {
    pub fn is_empty(&self) -> bool {
        self.processes == 0
            && self.vm.is_none()
            && self.namespaces.is_empty()
            && self.links.is_empty()
            && self.state_dir.is_none()
    }
}

/// Removes lab `name` entirely. Nothing there is not an error (the report is empty).
pub async fn down(name: &str, say: super::Say) -> Result<DownReport, LabError> {
    check_name(name)?;
    procs::require_root("lvslab lab down", "it removes network namespaces and links")?;
    let paths = LabPaths::new(name);
    let lock = Lock::acquire(paths.lock.clone(), say).await?;
    let report = remove_all(name, &paths).await?;
    lock.remove();
    Ok(report)
}

/// Removes everything named like lab `name` (caller holds the lab's lock).
pub(crate) async fn remove_all(name: &str, paths: &LabPaths) -> Result<DownReport, LabError> {
    // The VM first: its network card holds the tap that is removed with the links.
    let vm = stop_vm(paths).await?;
    let existing = netns::find(name);
    let processes = kill_processes(&existing.namespaces, paths).await?;
    sys::remove_cgroups(&format!("lvslab.{}", plan::namespace_prefix(name))).await?;
    netns::remove(&existing).await?;
    let state_dir = if paths.dir.exists() {
        std::fs::remove_dir_all(&paths.dir).ctx("cannot remove the lab's directory", &paths.dir)?;
        Some(paths.dir.clone())
    } else {
        None
    };
    Ok(DownReport {
        name: name.to_string(),
        processes,
        vm,
        namespaces: existing.namespaces,
        links: existing.links,
        state_dir,
    })
}

/// Ends the lab's VM, if one runs (its state lives in guest memory only: nothing to save), and
/// waits until qemu is gone. Returns the pid it ended.
async fn stop_vm(paths: &LabPaths) -> Result<Option<u32>, LabError> {
    let first = procs::vm_processes(&paths.dir);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let pids = procs::vm_processes(&paths.dir);
        if pids.is_empty() {
            return Ok(first.first().copied());
        }
        if Instant::now() > deadline {
            return Err(LabError::Command {
                command: "kill -KILL".into(),
                detail: format!("the lab's VM (qemu) is still running after 10 s: {pids:?}"),
            });
        }
        procs::kill_all(pids);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// SIGKILLs every process in the lab's namespaces (SIGTERM is ignored by `unshare --fork`;
/// killing an `unshare` takes its node's whole pid namespace) and waits until none is left.
async fn kill_processes(namespaces: &[String], paths: &LabPaths) -> Result<usize, LabError> {
    let inodes: Vec<u64> = namespaces
        .iter()
        .filter_map(|n| procs::netns_inode(n))
        .collect();
    let script = paths.init_script();
    let keeper = paths.systemd_script();
    let mut killed = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut pids: Vec<u32> = procs::in_namespaces(&inodes)
            .into_iter()
            .map(|p| p.pid)
            .collect();
        // An `unshare` whose namespace name was removed by hand still runs the lab's script.
        pids.extend(procs::running_script(&script));
        pids.extend(procs::running_script(&keeper));
        if pids.is_empty() {
            return Ok(killed.len());
        }
        if Instant::now() > deadline {
            return Err(LabError::Command {
                command: "kill -KILL".into(),
                detail: format!("processes still alive after 10 s: {pids:?}"),
            });
        }
        killed.extend(pids.iter().copied());
        procs::kill_all(pids);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
