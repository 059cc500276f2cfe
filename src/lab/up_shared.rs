//! What both ways of building a lab share (`lab up` here, `lab up --vm` in a VM): what is
//! asked for, the report of the lab that is up, and the steps that make its keys and client
//! files.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::task::JoinSet;

use super::down::DownReport;
use super::error::{IoContext, LabError};
use super::files;
use super::inventory_file;
use super::node;
use super::plan::{BRIDGE_ADDRESS, LabPlan, NodeSpec, VIP, bridge_name};
use super::requirements::Host;
use super::state::{LabPaths, write_atomically};

/// What `lab up` is asked for.
#[derive(Debug, Clone)]
pub struct UpOptions {
    pub name: String,
    pub real_servers: u16,
    /// The forwarding method the lab is for: its networks and its inventory follow it.
    pub forwarding: crate::lvs::Forwarding,
    /// Install missing packages (apt-get or dnf) instead of refusing.
    pub install_deps: bool,
    /// What the nodes run as PID 1.
    pub init: super::plan::NodeInit,
    /// Set when this `up` runs inside the VM of `lab up --vm`.
    pub guest: Option<GuestLink>,
    /// Where the lab's progress goes.
    pub say: super::Say,
}

/// How a lab inside the VM of `lab up --vm` joins the host: the host made the keys (so its
/// known_hosts and inventory are right), and the VM's network cards are ports of the lab's
/// bridges, so the host reaches every node directly. The VM's own addresses on the bridges are
/// [`super::plan::Net::bridge_address`] of the guest.
#[derive(Debug, Clone)]
pub struct GuestLink {
    /// A copy of the host lab's directory: `id_ed25519.pub`, `nodes/NODE/ssh_host_ed25519_key*`.
    pub keys: PathBuf,
    /// The VM's network cards, one per network of the lab (`eth0`, then `eth1` for NAT).
    pub uplinks: Vec<String>,
}

/// A lab that is up: where its inventory and keys are, and its nodes.
#[derive(Debug, Clone, Serialize)]
pub struct Lab {
    pub name: String,
    pub dir: PathBuf,
    pub inventory: PathBuf,
    pub identity_file: PathBuf,
    pub known_hosts: PathBuf,
    pub bridge: String,
    pub bridge_address: Ipv4Addr,
    /// Named in the inventory; the lab does not assign it.
    pub vip: Ipv4Addr,
    /// The forwarding method the lab is for.
    pub forwarding: crate::lvs::Forwarding,
    /// What its nodes run as PID 1.
    pub init: super::plan::NodeInit,
    /// node1, node2, ... then the client (and a NAT lab's router).
    pub nodes: Vec<NodeSpec>,
    pub kernel_has_ipvs: bool,
    /// Set when the lab runs inside a VM (`lab up --vm`).
    pub vm: Option<VmInfo>,
    /// True when the lab was up already and nothing was built.
    pub already_up: bool,
    /// Leftovers of an earlier run removed before building, if there were any.
    pub cleaned: Option<DownReport>,
    /// Packages installed by `install_deps`.
    pub installed: Vec<String>,
    pub elapsed_ms: u64,
    /// Time per step (for `-v`).
    pub phases: Vec<(String, u64)>,
}

/// The VM a lab runs in (`lab up --vm`).
#[derive(Debug, Clone, Serialize)]
pub struct VmInfo {
    pub qemu_pid: u32,
    /// The guest's serial console (boot messages, the guest's `lab up`).
    pub console_log: PathBuf,
    /// The tap device that joins the VM's network card to the lab's bridge.
    pub taps: Vec<String>,
}

impl Lab {
    pub fn node(&self, name: &str) -> Option<&NodeSpec> {
        self.nodes.iter().find(|n| n.name == name)
    }
}

pub struct Clock {
    start: Instant,
    last: Instant,
    phases: Vec<(String, u64)>,
}

impl Clock {
    pub fn new() -> Self {
        let now = Instant::now();
        Clock {
            start: now,
            last: now,
            phases: Vec::new(),
        }
    }
    pub fn mark(&mut self, phase: &str) {
        let now = Instant::now();
        self.phases
            .push((phase.to_string(), millis(now - self.last)));
        self.last = now;
    }
}

pub fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// What `describe` reports of the machine the lab runs on.
pub struct Found {
    pub kernel_has_ipvs: bool,
    pub installed: Vec<String>,
    pub vm: Option<VmInfo>,
}

impl Found {
    pub fn host(host: &Host) -> Self {
        Found {
            kernel_has_ipvs: host.ipvs,
            installed: host.installed.clone(),
            vm: None,
        }
    }
}

/// The lab is up, but not with the shape asked for.
pub fn other_shape(have: &LabPlan, want: &LabPlan) -> LabError {
    LabError::Usage(format!(
        "lab `{name}` is already up with {have} real servers; take it down first \
         (`lvslab lab down --name {name}`) to build it with {want}",
        name = want.name,
        have = have.real_server_count(),
        want = want.real_server_count(),
    ))
}

pub fn network_taken_sentence(interface: &str, cidr: &str) -> String {
    let owner = match interface.strip_prefix("lvsb-") {
        Some(other) if bridge_name(other) == interface => {
            format!(" by lab `{other}` (`lvslab lab down --name {other}` removes it)")
        }
        _ => String::new(),
    };
    format!(
        "the lab's network 198.18.0.0/24 is already in use on this machine \
         ({interface} has {cidr}){owner}, and two labs there would mix up their addresses"
    )
}

pub fn describe(
    plan: &LabPlan,
    paths: &LabPaths,
    found: Found,
    already_up: bool,
    cleaned: Option<DownReport>,
    clock: Clock,
) -> Lab {
    Lab {
        name: plan.name.clone(),
        dir: paths.dir.clone(),
        inventory: paths.inventory(),
        identity_file: paths.identity(),
        known_hosts: paths.known_hosts(),
        bridge: plan.bridge(),
        bridge_address: BRIDGE_ADDRESS,
        vip: VIP,
        forwarding: plan.forwarding,
        init: plan.init,
        nodes: plan.nodes.clone(),
        kernel_has_ipvs: found.kernel_has_ipvs,
        vm: found.vm,
        already_up,
        cleaned,
        installed: found.installed,
        elapsed_ms: millis(clock.start.elapsed()),
        phases: clock.phases,
    }
}

/// The lab's directory, 0700: it holds the lab's private key.
pub fn make_lab_dir(paths: &LabPaths) -> Result<(), LabError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&paths.dir)
        .ctx("cannot create the lab's directory", &paths.dir)
}

/// The lab's login key and every node's host key, made in parallel.
pub async fn make_keys(plan: &LabPlan, paths: &LabPaths) -> Result<(), LabError> {
    let mut jobs = JoinSet::new();
    let lab_key = paths.identity();
    let comment = format!("lvslab lab {}", plan.name);
    jobs.spawn(async move { node::keygen(&lab_key, &comment).await });
    for spec in plan.hosts() {
        let node_dir = paths.node(&spec.name);
        std::fs::create_dir_all(&node_dir.dir).ctx("cannot create", &node_dir.dir)?;
        let (key, comment) = (node_dir.host_key(), spec.name.clone());
        jobs.spawn(async move { node::keygen(&key, &comment).await });
    }
    while let Some(joined) = jobs.join_next().await {
        joined.map_err(|e| LabError::Command {
            command: "ssh-keygen".into(),
            detail: e.to_string(),
        })??;
    }
    Ok(())
}

/// known_hosts and the inventory, both written atomically.
pub fn write_client_files(
    plan: &LabPlan,
    paths: &LabPaths,
    web_server: &str,
) -> Result<(), LabError> {
    let mut keys = Vec::new();
    for spec in plan.hosts() {
        let path = paths.node(&spec.name).host_key_pub();
        keys.push((
            spec,
            std::fs::read_to_string(&path).ctx("cannot read", &path)?,
        ));
    }
    let known = files::known_hosts(keys.iter().map(|(n, k)| (*n, k.as_str())));
    write_atomically(&paths.known_hosts(), known.as_bytes(), 0o644)?;
    let inventory = inventory_file::render(plan, web_server, &random_password()?);
    write_atomically(&paths.inventory(), inventory.as_bytes(), 0o600)
}

/// 8 hex characters for VRRP's auth_pass (keepalived uses at most 8).
fn random_password() -> Result<String, LabError> {
    use std::io::Read;
    let path = std::path::Path::new("/dev/urandom");
    let mut bytes = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut bytes))
        .ctx("cannot read", path)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
