//! Building a lab: requirements, stale leftovers, files and keys, network, nodes, then waiting
//! until every sshd answers. Idempotent: a healthy lab of the same shape is reported, not rebuilt.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::task::JoinSet;

use super::down::{self, DownReport};
use super::error::{IoContext, LabError};
use super::files;
use super::inventory_file;
use super::netns;
use super::node;
use super::plan::{BRIDGE_ADDRESS, GUEST_BRIDGE_ADDRESS, LabPlan, NodeSpec, VIP, bridge_name};
use super::requirements::{self, Host};
use super::state::{LabPaths, LabRecord, Lock, write_atomically, write_file};
use super::status;
use super::sys;

/// What `lab up` is asked for.
#[derive(Debug, Clone)]
pub struct UpOptions {
    pub name: String,
    pub real_servers: u16,
    /// Install missing packages (apt-get or dnf) instead of refusing.
    pub install_deps: bool,
    /// Set when this `up` runs inside the VM of `lab up --vm`.
    pub guest: Option<GuestLink>,
}

/// How a lab inside the VM of `lab up --vm` joins the host: the host made the keys (so its
/// known_hosts and inventory are right), and the VM's network card is a port of the lab's bridge,
/// so the host (198.18.0.1) reaches every node directly. The VM's own address on the bridge is
/// [`GUEST_BRIDGE_ADDRESS`].
#[derive(Debug, Clone)]
pub struct GuestLink {
    /// A copy of the host lab's directory: `id_ed25519.pub`, `nodes/NODE/ssh_host_ed25519_key*`.
    pub keys: PathBuf,
    /// The VM's network card (`eth0`).
    pub uplink: String,
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
    /// node1, node2, ... then the client.
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
    pub tap: String,
}

impl Lab {
    pub fn node(&self, name: &str) -> Option<&NodeSpec> {
        self.nodes.iter().find(|n| n.name == name)
    }
}

pub(super) struct Clock {
    start: Instant,
    last: Instant,
    phases: Vec<(String, u64)>,
}

impl Clock {
    pub(super) fn new() -> Self {
        let now = Instant::now();
        Clock {
            start: now,
            last: now,
            phases: Vec::new(),
        }
    }
    pub(super) fn mark(&mut self, phase: &str) {
        let now = Instant::now();
        self.phases
            .push((phase.to_string(), millis(now - self.last)));
        self.last = now;
    }
}

pub(super) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Brings lab `opts.name` up (or finds it up) and returns where everything is.
pub async fn up(opts: &UpOptions) -> Result<Lab, LabError> {
    let mut clock = Clock::new();
    let plan = LabPlan::new(&opts.name, opts.real_servers)?;
    let host = requirements::check(opts.install_deps).await?;
    clock.mark("requirements");
    let paths = LabPaths::new(&plan.name);
    let _lock = Lock::acquire(paths.lock.clone()).await?;

    if let Some(record) = LabRecord::load(&paths)? {
        if record.vm.is_some()
            && status::probe_vm_lab(&record.plan, &paths)
                .await
                .all_healthy()
        {
            let name = &plan.name;
            return Err(LabError::Usage(format!(
                "lab `{name}` is up in a VM; `lvslab lab up --vm --name {name}` reports it, \
                 `lvslab lab down --name {name}` takes it down before building it here"
            )));
        }
        let health = status::probe_plan(&record.plan).await;
        clock.mark("probe existing lab");
        if health.all_healthy() {
            if record.plan != plan {
                return Err(other_shape(&record.plan, &plan));
            }
            return Ok(describe(
                &plan,
                &paths,
                Found::host(&host),
                true,
                None,
                clock,
            ));
        }
    }

    let cleaned = down::remove_all(&plan.name, &paths).await?;
    clock.mark("clean leftovers");
    let _network = Lock::acquire(LabPaths::network_lock()).await?;
    if let Some((interface, cidr)) = netns::network_in_use().await? {
        return Err(LabError::Requirement(network_taken_sentence(
            &interface, &cidr,
        )));
    }
    if let Err(e) = build(&plan, &paths, &host, opts.guest.as_ref(), &mut clock).await {
        // Leave nothing half-built behind; the error carries the nodes' logs.
        let _ = down::remove_all(&plan.name, &paths).await;
        return Err(e);
    }
    let cleaned = (!cleaned.is_empty()).then_some(cleaned);
    Ok(describe(
        &plan,
        &paths,
        Found::host(&host),
        false,
        cleaned,
        clock,
    ))
}

/// What `describe` reports of the machine the lab runs on.
pub(super) struct Found {
    pub kernel_has_ipvs: bool,
    pub installed: Vec<String>,
    pub vm: Option<VmInfo>,
}

impl Found {
    fn host(host: &Host) -> Self {
        Found {
            kernel_has_ipvs: host.ipvs,
            installed: host.installed.clone(),
            vm: None,
        }
    }
}

/// The lab is up, but not with the shape asked for.
pub(super) fn other_shape(have: &LabPlan, want: &LabPlan) -> LabError {
    LabError::Usage(format!(
        "lab `{name}` is already up with {have} real servers; take it down first \
         (`lvslab lab down --name {name}`) to build it with {want}",
        name = want.name,
        have = have.real_server_count(),
        want = want.real_server_count(),
    ))
}

pub(super) fn network_taken_sentence(interface: &str, cidr: &str) -> String {
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

pub(super) fn describe(
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

async fn build(
    plan: &LabPlan,
    paths: &LabPaths,
    host: &Host,
    guest: Option<&GuestLink>,
    clock: &mut Clock,
) -> Result<(), LabError> {
    make_state_dir(paths).await?;
    match guest {
        Some(link) => copy_keys(plan, paths, &link.keys)?,
        None => make_keys(plan, paths).await?,
    }
    clock.mark("keys");
    let authorized_key =
        std::fs::read_to_string(paths.identity_pub()).ctx("cannot read", &paths.identity_pub())?;
    for node in &plan.nodes {
        node::prepare(plan, node, paths, host, &authorized_key)?;
    }
    clock.mark("node files");
    match guest {
        None => netns::create(plan, BRIDGE_ADDRESS).await?,
        Some(link) => {
            netns::create(plan, GUEST_BRIDGE_ADDRESS).await?;
            let bridge = plan.bridge();
            sys::run(
                "ip",
                &["link", "set", &link.uplink, "master", &bridge, "up"],
                None,
            )
            .await?;
        }
    }
    clock.mark("network");

    let mut starts = JoinSet::new();
    for spec in &plan.nodes {
        let (spec, paths, host) = (spec.clone(), paths.clone(), host.clone());
        starts.spawn(async move {
            let pid = node::start(&spec, &paths, &host).await?;
            Ok::<_, LabError>((spec, pid))
        });
    }
    let mut started = Vec::new();
    while let Some(joined) = starts.join_next().await {
        started.push(joined.map_err(|e| LabError::Command {
            command: "start nodes".into(),
            detail: e.to_string(),
        })??);
    }
    clock.mark("start nodes");

    write_client_files(plan, paths, &host.web_server)?;
    wait_until_ready(plan, paths, &started).await?;
    clock.mark("wait for sshd");
    LabRecord {
        plan: plan.clone(),
        web_server: host.web_server.clone(),
        vm: None,
    }
    .save(paths)
}

/// The lab's directory, 0700: it holds the lab's private key.
pub(super) fn make_lab_dir(paths: &LabPaths) -> Result<(), LabError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&paths.dir)
        .ctx("cannot create the lab's directory", &paths.dir)
}

async fn make_state_dir(paths: &LabPaths) -> Result<(), LabError> {
    use std::os::unix::fs::DirBuilderExt;
    make_lab_dir(paths)?;
    write_file(&paths.init_script(), files::init_script().as_bytes(), 0o755)?;
    // A stock root home for the nodes' /root (not this machine's /root and its dotfiles).
    let home = paths.clean_home();
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&home)
        .ctx("cannot create", &home)?;
    if std::path::Path::new("/etc/skel").is_dir() {
        let target = format!("{}/", home.display());
        sys::run("cp", &["-a", "/etc/skel/.", &target], None).await?;
    }
    Ok(())
}

/// The lab's login key and every node's host key, made in parallel.
pub(super) async fn make_keys(plan: &LabPlan, paths: &LabPaths) -> Result<(), LabError> {
    let mut jobs = JoinSet::new();
    let lab_key = paths.identity();
    let comment = format!("lvslab lab {}", plan.name);
    jobs.spawn(async move { node::keygen(&lab_key, &comment).await });
    for spec in &plan.nodes {
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

/// The keys `make_keys` would make, copied from the host's lab directory (`lab up --vm`).
fn copy_keys(plan: &LabPlan, paths: &LabPaths, from: &std::path::Path) -> Result<(), LabError> {
    let source = LabPaths {
        dir: from.to_path_buf(),
        lock: from.join("unused.lock"),
    };
    let copy = |from: PathBuf, to: PathBuf, mode: u32| -> Result<(), LabError> {
        let bytes = std::fs::read(&from).ctx("cannot read", &from)?;
        write_file(&to, &bytes, mode)
    };
    copy(source.identity_pub(), paths.identity_pub(), 0o644)?;
    for spec in &plan.nodes {
        let (from, to) = (source.node(&spec.name), paths.node(&spec.name));
        std::fs::create_dir_all(&to.dir).ctx("cannot create", &to.dir)?;
        copy(from.host_key(), to.host_key(), 0o600)?;
        copy(from.host_key_pub(), to.host_key_pub(), 0o644)?;
    }
    Ok(())
}

/// known_hosts and the inventory, both written atomically.
pub(super) fn write_client_files(
    plan: &LabPlan,
    paths: &LabPaths,
    web_server: &str,
) -> Result<(), LabError> {
    let mut keys = Vec::new();
    for spec in &plan.nodes {
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

/// Waits until every node's sshd sends its banner. Fails early when a node's process dies,
/// and after a bound that grows with the number of nodes.
async fn wait_until_ready(
    plan: &LabPlan,
    paths: &LabPaths,
    started: &[(NodeSpec, u32)],
) -> Result<(), LabError> {
    let limit = Duration::from_secs(30) + Duration::from_millis(250) * plan.nodes.len() as u32;
    let deadline = Instant::now() + limit;
    let mut pending: Vec<(NodeSpec, u32)> = started.to_vec();
    let mut attempt: u32 = 0;
    loop {
        // Patient after the first tries: under an emulated or loaded CPU sshd (which re-executes
        // itself per connection) can take seconds to send its banner.
        attempt += 1;
        let wait = Duration::from_millis(500 * u64::from(attempt.min(10)));
        let mut probes = JoinSet::new();
        for (spec, pid) in pending.drain(..) {
            probes.spawn(async move {
                let answer = node::probe_sshd(spec.address, wait).await;
                (spec, pid, answer)
            });
        }
        let mut dead = Vec::new();
        for (spec, pid, answer) in probes.join_all().await {
            if answer.is_ok() {
                continue;
            }
            if std::path::Path::new(&format!("/proc/{pid}")).exists() {
                pending.push((spec, pid));
            } else {
                dead.push(spec.name);
            }
        }
        let plan_order = |name: &String| plan.nodes.iter().position(|n| &n.name == name);
        dead.sort_by_key(plan_order);
        if !dead.is_empty() {
            return Err(not_ready(paths, &dead, "the node's processes ended"));
        }
        if pending.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            let mut names: Vec<String> = pending.iter().map(|(s, _)| s.name.clone()).collect();
            names.sort_by_key(plan_order);
            let why = format!("sshd did not answer within {} s", limit.as_secs());
            return Err(not_ready(paths, &names, &why));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn not_ready(paths: &LabPaths, nodes: &[String], why: &str) -> LabError {
    let first = &nodes[0];
    LabError::NotReady {
        nodes: format!("{} ({why})", nodes.join(", ")),
        detail: format!(
            "last lines of {first}'s log:\n{}",
            node::log_tail(paths, first, 15)
        ),
    }
}
