//! Running a command inside a lab node: its network, mount, UTS and pid namespaces, entered with
//! `nsenter` from the node's PID 1 (no SSH involved).

use super::error::LabError;
use super::netns;
use super::plan::{self, check_name};
use super::procs;

/// A command that runs `argv` inside node `node` of lab `lab`; the caller chooses its stdio.
pub fn node_command(
    lab: &str,
    node: &str,
    argv: &[String],
) -> Result<tokio::process::Command, LabError> {
    check_name(lab)?;
    if plan::node_from_name(lab, node).is_none() {
        return Err(LabError::Usage(format!(
            "`{node}` is not a lab node name (node1, node2, ..., client)"
        )));
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
