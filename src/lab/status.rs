//! Health of a lab's nodes: namespace present, PID 1 alive, sshd answering with its banner.

use std::net::Ipv4Addr;
use std::time::Duration;

use serde::Serialize;
use tokio::task::JoinSet;

use super::error::LabError;
use super::netns;
use super::node::probe_sshd;
use super::plan::{self, LabPlan, NodeSpec, check_name};
use super::procs;
use super::state::{LabPaths, LabRecord};

/// How long sshd may take to send its banner before the node counts as not answering.
pub const SSHD_ANSWER_LIMIT: Duration = Duration::from_secs(1);
/// The same inside an emulated VM, whose sshd answers more slowly.
const VM_SSHD_ANSWER_LIMIT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Serialize)]
pub struct NodeHealth {
    pub node: String,
    pub address: Ipv4Addr,
    pub namespace: String,
    pub namespace_present: bool,
    /// The node's PID 1 as seen from the root pid namespace, if it runs.
    pub pid1: Option<u32>,
    /// sshd's banner when it answered.
    pub sshd_banner: Option<String>,
    /// Why the node is not healthy.
    pub problem: Option<String>,
}

impl NodeHealth {
    pub fn healthy(&self) -> bool {
        self.problem.is_none()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct LabStatus {
    pub name: String,
    /// Whether `lab up` finished and recorded the lab (false for leftovers of a crash).
    pub recorded: bool,
    /// Set for a lab inside a VM (`lab up --vm`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vm: Option<VmHealth>,
    pub nodes: Vec<NodeHealth>,
}

/// The VM of a lab built with `lab up --vm`.
#[derive(Debug, Clone, Serialize)]
pub struct VmHealth {
    /// qemu's pid while the VM runs.
    pub qemu_pid: Option<u32>,
    pub console_log: std::path::PathBuf,
}

impl LabStatus {
    /// Something of the lab exists (recorded, or namespaces left over).
    pub fn exists(&self) -> bool {
        self.recorded || !self.nodes.is_empty()
    }

    pub fn all_healthy(&self) -> bool {
        self.recorded && self.nodes.iter().all(NodeHealth::healthy)
    }
}

/// Checks every node of lab `name`. Needs no lock: it only looks.
pub async fn status(name: &str) -> Result<LabStatus, LabError> {
    check_name(name)?;
    procs::require_root(
        "lvslab lab status",
        "it reads the lab's state and looks into its nodes' namespaces",
    )?;
    let paths = LabPaths::new(name);
    let record = LabRecord::load(&paths)?;
    if let Some(record) = &record
        && record.vm.is_some()
    {
        return Ok(probe_vm_lab(&record.plan, &paths).await);
    }
    let recorded = record.is_some();
    let nodes = match record {
        Some(r) => r.plan.nodes,
        // No record (crash, or removed by hand): judge what the namespaces say.
        None => netns::find(name)
            .namespaces
            .iter()
            .filter_map(|ns| {
                let node = ns.strip_prefix(&plan::namespace_prefix(name))?;
                plan::leftover_node(name, node)
            })
            .collect(),
    };
    Ok(LabStatus {
        name: name.to_string(),
        recorded,
        vm: None,
        nodes: probe_nodes(&nodes).await,
    })
}

/// Probes the nodes of `plan` (used by `up` to find a lab that is already up).
pub async fn probe_plan(plan: &LabPlan) -> LabStatus {
    LabStatus {
        name: plan.name.clone(),
        recorded: true,
        vm: None,
        nodes: probe_nodes(&plan.nodes).await,
    }
}

/// A lab inside a VM: qemu running, and each node's sshd answering from this machine (through
/// the lab's bridge and the VM's network card). The nodes' namespaces live in the VM.
pub async fn probe_vm_lab(plan: &LabPlan, paths: &LabPaths) -> LabStatus {
    let qemu_pid = procs::vm_processes(&paths.dir).first().copied();
    let known = plan
        .hosts()
        .map(|node| Known {
            node: node.clone(),
            namespace_present: qemu_pid.is_some(),
            pid1: None,
            problem: qemu_pid
                .is_none()
                .then(|| "the lab's VM is not running".to_string()),
        })
        .collect();
    LabStatus {
        name: plan.name.clone(),
        recorded: true,
        vm: Some(VmHealth {
            qemu_pid,
            console_log: paths.console_log(),
        }),
        nodes: ask_sshd(known, VM_SSHD_ANSWER_LIMIT).await,
    }
}

async fn probe_nodes(nodes: &[NodeSpec]) -> Vec<NodeHealth> {
    let inodes: Vec<Option<u64>> = nodes
        .iter()
        .map(|n| procs::netns_inode(&n.namespace))
        .collect();
    let by_ns = procs::by_namespace(procs::in_namespaces(
        &inodes.iter().flatten().copied().collect::<Vec<_>>(),
    ));
    let known = nodes
        .iter()
        .zip(inodes)
        .map(|(node, ns_inode)| {
            let pid1 = ns_inode
                .and_then(|ino| by_ns.get(&ino))
                .and_then(|ps| procs::node_pid1(ps));
            let problem = if ns_inode.is_none() {
                Some("no network namespace".to_string())
            } else if !node.has_sshd() {
                // A router is a namespace and its routes: nothing runs in it.
                None
            } else if pid1.is_none() {
                Some("not running (PID 1 is gone)".to_string())
            } else {
                None
            };
            Known {
                node: node.clone(),
                namespace_present: ns_inode.is_some(),
                pid1,
                problem,
            }
        })
        .collect();
    ask_sshd(known, SSHD_ANSWER_LIMIT).await
}

/// What is known of a node before its sshd is asked.
struct Known {
    node: NodeSpec,
    namespace_present: bool,
    pid1: Option<u32>,
    /// Set when the node is down for a reason found already (sshd is not asked then).
    problem: Option<String>,
}

/// Asks every node's sshd for its banner at once; results in the nodes' order.
async fn ask_sshd(known: Vec<Known>, limit: Duration) -> Vec<NodeHealth> {
    let mut probes = JoinSet::new();
    for (i, k) in known.into_iter().enumerate() {
        probes.spawn(async move {
            let mut health = NodeHealth {
                node: k.node.name.clone(),
                address: k.node.address,
                namespace: k.node.namespace.clone(),
                namespace_present: k.namespace_present,
                pid1: k.pid1,
                sshd_banner: None,
                problem: k.problem,
            };
            if health.problem.is_none() && k.node.has_sshd() {
                match probe_sshd(k.node.address, limit).await {
                    Ok(banner) => health.sshd_banner = Some(banner),
                    Err(why) => health.problem = Some(format!("sshd: {why}")),
                }
            }
            (i, health)
        });
    }
    let mut results: Vec<(usize, NodeHealth)> = probes.join_all().await;
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, h)| h).collect()
}
