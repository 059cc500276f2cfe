//! Building a lab on this machine: requirements, stale leftovers, files and keys, network, nodes, then waiting
//! until every sshd answers. Idempotent: a healthy lab of the same shape is reported, not rebuilt.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use super::down;
use super::error::{IoContext, LabError};
use super::files;
use super::netns;
use super::node;
use super::plan::{LabPlan, NodeSpec};
use super::requirements::{self, Host};
use super::state::{LabPaths, LabRecord, Lock, write_file};
use super::status;
use super::sys;
use super::up_shared::{
    Clock, Found, GuestLink, Lab, UpOptions, describe, make_keys, make_lab_dir,
    network_taken_sentence, other_shape, write_client_files,
};

/// Brings lab `opts.name` up (or finds it up) and returns where everything is.
pub async fn up(opts: &UpOptions) -> Result<Lab, LabError> {
    let mut clock = Clock::new();
    let plan = LabPlan::new(&opts.name, opts.real_servers, opts.forwarding)?.with_init(opts.init);
    let host = requirements::check(opts.install_deps, opts.say).await?;
    if plan.init == super::plan::NodeInit::Systemd {
        requirements::check_systemd_nodes()?;
    }
    clock.mark("requirements");
    let paths = LabPaths::new(&plan.name);
    let _lock = Lock::acquire(paths.lock.clone(), opts.say).await?;

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
    let _network = Lock::acquire(LabPaths::network_lock(), opts.say).await?;
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
    for node in plan.hosts() {
        node::prepare(plan, node, paths, host, &authorized_key)?;
    }
    clock.mark("node files");
    netns::create(plan, guest.is_some()).await?;
    if let Some(link) = guest {
        if link.uplinks.len() != plan.networks().len() {
            return Err(LabError::Usage(format!(
                "the VM has {} network card(s) for a lab with {} network(s)",
                link.uplinks.len(),
                plan.networks().len()
            )));
        }
        for (net, uplink) in plan.networks().into_iter().zip(&link.uplinks) {
            let bridge = net.bridge(&plan.name);
            sys::run(
                "ip",
                &["link", "set", uplink, "master", &bridge, "up"],
                None,
            )
            .await?;
        }
    }
    clock.mark("network");

    let mut starts = JoinSet::new();
    for spec in plan.hosts() {
        let (plan, spec, paths, host) = (plan.clone(), spec.clone(), paths.clone(), host.clone());
        starts.spawn(async move {
            let pid = node::start(&plan, &spec, &paths, &host).await?;
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

async fn make_state_dir(paths: &LabPaths) -> Result<(), LabError> {
    use std::os::unix::fs::DirBuilderExt;
    make_lab_dir(paths)?;
    write_file(&paths.init_script(), files::init_script().as_bytes(), 0o755)?;
    write_file(
        &paths.systemd_script(),
        files::systemd_node_script().as_bytes(),
        0o755,
    )?;
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
    for spec in plan.hosts() {
        let (from, to) = (source.node(&spec.name), paths.node(&spec.name));
        std::fs::create_dir_all(&to.dir).ctx("cannot create", &to.dir)?;
        copy(from.host_key(), to.host_key(), 0o600)?;
        copy(from.host_key_pub(), to.host_key_pub(), 0o644)?;
    }
    Ok(())
}

/// Waits until every node's sshd sends its banner. Fails early when a node's process dies,
/// and after a bound that grows with the number of nodes.
async fn wait_until_ready(
    plan: &LabPlan,
    paths: &LabPaths,
    started: &[(NodeSpec, u32)],
) -> Result<(), LabError> {
    // systemd boots the whole of multi-user.target before sshd is sure to answer.
    let (base, per_node) = match plan.init {
        super::plan::NodeInit::Sysv => (60, 250),
        super::plan::NodeInit::Systemd => (90, 2000),
    };
    let limit =
        Duration::from_secs(base) + Duration::from_millis(per_node) * plan.nodes.len() as u32;
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
