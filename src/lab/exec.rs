//! Running a command inside a lab node: its network, mount, UTS and pid namespaces, entered with
//! `nsenter` from the node's PID 1 (no SSH involved). In a lab inside a VM (`lab up --vm`) the
//! namespaces are in the guest: there the command goes over SSH with the lab's key.

use super::error::LabError;
use super::netns;
use super::plan::{self, check_name};
use super::procs;
use super::state::{LabPaths, LabRecord};
use super::sys::which;

/// A command that runs `argv` inside node `node` of lab `lab`; the caller chooses its stdio.
pub fn node_command(
    lab: &str,
    node: &str,
    argv: &[String],
) -> Result<tokio::process::Command, LabError> {
    check_name(lab)?;
    if !plan::is_node_name(node) || node == "router" {
        return Err(LabError::Usage(format!(
            "`{node}` is not a lab node name (node1, node2, ..., client)"
        )));
    }
    let paths = LabPaths::new(lab);
    if let Some(record) = LabRecord::load(&paths)?
        && record.vm.is_some()
    {
        return ssh_command(lab, &paths, &record, node, argv);
    }
    let namespace = format!("{}{node}", plan::namespace_prefix(lab));
    let Some(inode) = procs::netns_inode(&namespace) else {
        let existing = netns::find(lab);
        let prefix = plan::namespace_prefix(lab);
        let nodes: Vec<&str> = existing
            .namespaces
            .iter()
            .filter_map(|n| n.strip_prefix(&prefix))
            .collect();
        return Err(LabError::Usage(if nodes.is_empty() {
            format!("lab `{lab}` is not up (`lvslab lab up --name {lab}` builds it)")
        } else {
            format!(
                "lab `{lab}` has no node `{node}`; its nodes: {}",
                nodes.join(", ")
            )
        }));
    };
    let processes = procs::in_namespaces(&[inode]);
    let Some(pid1) = procs::node_pid1(&processes) else {
        return Err(LabError::Usage(format!(
            "node `{node}` of lab `{lab}` is not running (its PID 1 is gone): \
             `lvslab lab up --name {lab}` rebuilds the lab"
        )));
    };
    let target = pid1.to_string();
    let mut command = tokio::process::Command::new("nsenter");
    command
        .args([
            "--target", &target, "--mount", "--uts", "--net", "--pid", "--",
        ])
        .args(argv)
        .env("HOME", "/root");
    Ok(command)
}

/// `ssh` to a node of a lab inside a VM, with the lab's key and known_hosts; a terminal is asked
/// for when ours is one, so `lab exec node1 -- bash` works interactively.
fn ssh_command(
    lab: &str,
    paths: &LabPaths,
    record: &LabRecord,
    node: &str,
    argv: &[String],
) -> Result<tokio::process::Command, LabError> {
    let Some(spec) = record.plan.nodes.iter().find(|n| n.name == node) else {
        let names: Vec<&str> = record.plan.nodes.iter().map(|n| n.name.as_str()).collect();
        return Err(LabError::Usage(format!(
            "lab `{lab}` has no node `{node}`; its nodes: {}",
            names.join(", ")
        )));
    };
    if procs::vm_processes(&paths.dir).is_empty() {
        return Err(LabError::Usage(format!(
            "the VM of lab `{lab}` is not running: `lvslab lab up --vm --name {lab}` starts it again"
        )));
    }
    let Some(ssh) = which("ssh") else {
        return Err(LabError::Requirement(
            "`lvslab lab exec` reaches a lab inside a VM with `ssh`, which is not installed \
             (apt-get install openssh-client, or dnf install openssh-clients)"
                .into(),
        ));
    };
    use std::io::IsTerminal;
    let mut command = tokio::process::Command::new(ssh);
    command
        .arg("-i")
        .arg(paths.identity())
        .arg("-o")
        .arg(format!(
            "UserKnownHostsFile={}",
            paths.known_hosts().display()
        ))
        .args([
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "BatchMode=yes",
            "-o",
            "LogLevel=ERROR",
            // A command that cuts the node's own network (`ip link set eth0 down`) must not
            // leave this waiting for ever: a node that stops answering ends it in ~15 s.
            "-o",
            "ConnectTimeout=10",
            "-o",
            "ServerAliveInterval=5",
            "-o",
            "ServerAliveCountMax=3",
        ])
        .arg(if std::io::stdin().is_terminal() {
            "-t"
        } else {
            "-T"
        })
        .arg(format!("root@{}", spec.address))
        .arg("--")
        // sshd hands the line to the login shell: quote each word so argv arrives as given.
        .arg(crate::transport::sh::argv(argv));
    Ok(command)
}
