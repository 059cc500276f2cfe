//! `lab up --vm`: the same lab inside a qemu VM whose stock Debian kernel has IPVS, for machines
//! whose own kernel has none. The VM stays up after lvslab exits; `lab down` stops it.
//!
//! How the pieces fit: this machine makes the lab's keys, known_hosts and inventory exactly as
//! for a lab on this machine, and the lab's bridge with 198.18.0.1 plus a tap device on it. The
//! VM's network card is that tap; inside, the guest's `lvslab lab up` (given the keys, see
//! [`super::up::GuestLink`]) builds the nodes and joins its network card to its own lab bridge.
//! So both bridges are one network: `ssh root@198.18.0.12`, the inventory and every lvslab
//! command work from this machine as they would on a lab here.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::down;
use super::error::{IoContext, LabError};
use super::netns;
use super::plan::{LabPlan, Net, vm_inside_tap_name, vm_tap_name};
use super::procs;
use super::requirements;
use super::state::{LabPaths, LabRecord, Lock, VmRecord};
use super::status;
use super::up_shared::{self, Clock, Found, Lab, UpOptions, VmInfo};
use super::vm::{self, DetachedVm, GuestFile, VmEvent};
use super::{Progress, Say};

/// Where the guest finds the host's keys (the layout of a lab directory).
const GUEST_KEYS: &str = "/lvslab-vm/lab";
/// The guest's scenario prints this when its lab is up.
const READY_MARKER: &str = "LVSLAB-VM-LAB-READY";
/// The guest's /init prints this when the scenario ended (here: the guest's `lab up` failed).
const EXIT_MARKER: &str = "LVSLAB-VM-EXIT";
/// The VM's web server (the guest image has nginx-light).
const GUEST_WEB_SERVER: &str = "nginx";
/// How long the VM may take from qemu's start to every node's sshd answering; an emulated CPU on
/// a busy machine is slow, so this is generous. `LVSLAB_VM_TIMEOUT` overrides it.
const READY_LIMIT: Duration = Duration::from_secs(300);

/// Guest memory: the root filesystem lives in RAM (~200 MB), plus room per node.
fn memory_mib(plan: &LabPlan) -> u32 {
    1536 + 32 * u32::try_from(plan.nodes.len()).unwrap_or(u32::MAX / 64)
}

/// Brings lab `opts.name` up inside a VM (or finds it up) and returns where everything is.
pub async fn up_vm(opts: &UpOptions) -> Result<Lab, LabError> {
    let mut clock = Clock::new();
    let plan = LabPlan::new(&opts.name, opts.real_servers, opts.forwarding)?.with_init(opts.init);
    let installed = machine_requirements(opts.install_deps, opts.say).await?;
    clock.mark("requirements");
    let paths = LabPaths::new(&plan.name);
    let _lock = Lock::acquire(paths.lock.clone(), opts.say).await?;

    if let Some(record) = LabRecord::load(&paths)? {
        let name = &plan.name;
        let Some(vm) = &record.vm else {
            if status::probe_plan(&record.plan).await.all_healthy() {
                return Err(LabError::Usage(format!(
                    "lab `{name}` is already up on this machine (not in a VM); take it down first \
                     (`lvslab lab down --name {name}`) or give the VM lab another --name"
                )));
            }
            return fresh(plan, paths, installed, clock, opts.say).await;
        };
        let health = status::probe_vm_lab(&record.plan, &paths).await;
        clock.mark("probe existing lab");
        if health.all_healthy() {
            if record.plan != plan {
                return Err(up_shared::other_shape(&record.plan, &plan));
            }
            let info = VmInfo {
                qemu_pid: health.vm.and_then(|v| v.qemu_pid).unwrap_or_default(),
                console_log: paths.console_log(),
                taps: vm.taps.clone(),
            };
            return Ok(describe(&plan, &paths, info, true, Vec::new(), None, clock));
        }
    }
    fresh(plan, paths, installed, clock, opts.say).await
}

/// Removes whatever is there under this name, then builds the lab and its VM.
async fn fresh(
    plan: LabPlan,
    paths: LabPaths,
    installed: Vec<String>,
    mut clock: Clock,
    say: Say,
) -> Result<Lab, LabError> {
    let cleaned = down::remove_all(&plan.name, &paths).await?;
    clock.mark("clean leftovers");
    let _network = Lock::acquire(LabPaths::network_lock(), say).await?;
    if let Some((interface, cidr)) = netns::network_in_use().await? {
        return Err(LabError::Requirement(up_shared::network_taken_sentence(
            &interface, &cidr,
        )));
    }
    // Ctrl-C while the VM boots: take everything down again rather than leave half a lab.
    let built = tokio::select! {
        built = build(&plan, &paths, &mut clock, say) => built,
        _ = tokio::signal::ctrl_c() => Err(LabError::Interrupted(
            "the half-built lab and its VM were removed".into(),
        )),
    };
    let info = match built {
        Ok(info) => info,
        Err(e) => {
            let _ = down::remove_all(&plan.name, &paths).await;
            return Err(e);
        }
    };
    let cleaned = (!cleaned.is_empty()).then_some(cleaned);
    Ok(describe(
        &plan, &paths, info, false, installed, cleaned, clock,
    ))
}

fn describe(
    plan: &LabPlan,
    paths: &LabPaths,
    info: VmInfo,
    already_up: bool,
    installed: Vec<String>,
    cleaned: Option<down::DownReport>,
    clock: Clock,
) -> Lab {
    up_shared::describe(
        plan,
        paths,
        Found {
            kernel_has_ipvs: true,
            installed,
            vm: Some(info),
        },
        already_up,
        cleaned,
        clock,
    )
}

/// What this machine needs for a lab in a VM: root, the VM tier's packages, a tap device, `ip`
/// and `ssh-keygen`. Returns the packages `--install-deps` installed.
async fn machine_requirements(install_deps: bool, say: Say) -> Result<Vec<String>, LabError> {
    procs::require_root(
        "lvslab lab up --vm",
        "it creates a bridge and a tap device and builds the VM's image",
    )?;
    let installed = requirements::ensure(requirements::VM, install_deps, say)
        .await
        .map_err(|e| match e {
            LabError::Requirement(why) if !install_deps => LabError::Requirement(format!(
                "the VM cannot start here: {why} (or rerun with --install-deps)"
            )),
            e => e,
        })?;
    vm::check_vm_requirements()
        .map_err(|why| LabError::Requirement(format!("the VM cannot start here: {why}")))?;
    let tun = std::path::Path::new("/dev/net/tun");
    if !tun.exists() {
        return Err(LabError::Requirement(
            "this machine has no /dev/net/tun (try `modprobe tun`), which the VM's network card \
             needs to join the lab's bridge"
                .into(),
        ));
    }
    Ok(installed)
}

/// Installs what the VM needs on this machine (`--install-deps`), from the one list.
pub async fn install_vm_deps(say: Say) -> Result<(), LabError> {
    requirements::ensure(requirements::VM, true, say)
        .await
        .map(|_| ())
}

async fn build(
    plan: &LabPlan,
    paths: &LabPaths,
    clock: &mut Clock,
    say: Say,
) -> Result<VmInfo, LabError> {
    up_shared::make_lab_dir(paths)?;
    up_shared::make_keys(plan, paths).await?;
    up_shared::write_client_files(plan, paths, GUEST_WEB_SERVER)?;
    clock.mark("keys");
    let taps: Vec<String> = plan
        .networks()
        .into_iter()
        .map(|net| match net {
            Net::Outside => vm_tap_name(&plan.name),
            Net::Inside => vm_inside_tap_name(&plan.name),
        })
        .collect();
    netns::create_for_vm(plan, &taps).await?;
    clock.mark("network");

    let vm_dir = paths.vm_dir();
    let serial_log = paths.console_log();
    let qemu_name = format!("lvslab-lab-{}", plan.name);
    let memory = memory_mib(plan);
    let cpus = 2;
    let detached = DetachedVm {
        dir: &vm_dir,
        serial_log: &serial_log,
        name: &qemu_name,
        scenario: guest_script(plan),
        files: guest_files(plan, paths)?,
        taps: &taps,
        memory_mib: memory,
        cpus,
    };
    let progress = |event: VmEvent<'_>| {
        if let VmEvent::Step(step) = event {
            say(Progress::Vm(step));
        }
    };
    let pid = vm::start_detached(&detached, &progress)
        .await
        .map_err(|e| {
            let causes: Vec<String> = e.chain().map(ToString::to_string).collect();
            LabError::Vm(causes.join(": "))
        })?;
    clock.mark("start the VM");
    say(Progress::Vm(&format!(
        "waiting for the lab inside the VM (qemu pid {pid})"
    )));
    wait_until_ready(plan, paths, pid).await?;
    clock.mark("wait for the nodes");
    LabRecord {
        plan: plan.clone(),
        web_server: GUEST_WEB_SERVER.into(),
        vm: Some(VmRecord {
            taps: taps.clone(),
            memory_mib: memory,
            cpus,
        }),
    }
    .save(paths)?;
    Ok(VmInfo {
        qemu_pid: pid,
        console_log: paths.console_log(),
        taps,
    })
}

/// The guest's scenario: its own `lab up` with the host's keys, then it stays (the lab lives as
/// long as the scenario runs; when it ends, the guest powers off).
fn guest_script(plan: &LabPlan) -> String {
    let uplinks: String = (0..plan.networks().len())
        .map(|i| format!(" --uplink eth{i}"))
        .collect();
    format!(
        "#!/bin/sh\n\
         lvslab --no-progress lab up --name {name} --real-servers {count} --forwarding {fwd} \
         --init {init} --guest-keys {GUEST_KEYS}{uplinks} || exit $?\n\
         echo {READY_MARKER}\n\
         while :; do sleep 3600; done\n",
        name = plan.name,
        count = plan.real_server_count(),
        fwd = plan.forwarding,
        init = plan.init,
    )
}

/// The login key's public half and every node's host key, under [`GUEST_KEYS`].
fn guest_files(plan: &LabPlan, paths: &LabPaths) -> Result<Vec<GuestFile>, LabError> {
    let base = GUEST_KEYS.trim_start_matches('/');
    let mut files = Vec::new();
    let mut add = |from: PathBuf, to: String, mode: u32| -> Result<(), LabError> {
        let bytes = std::fs::read(&from).ctx("cannot read", &from)?;
        files.push(GuestFile {
            path: to,
            mode,
            bytes,
        });
        Ok(())
    };
    add(
        paths.identity_pub(),
        format!("{base}/id_ed25519.pub"),
        0o644,
    )?;
    for node in plan.hosts() {
        let np = paths.node(&node.name);
        let dir = format!("{base}/nodes/{}", node.name);
        add(np.host_key(), format!("{dir}/ssh_host_ed25519_key"), 0o600)?;
        add(
            np.host_key_pub(),
            format!("{dir}/ssh_host_ed25519_key.pub"),
            0o644,
        )?;
    }
    Ok(files)
}

/// Waits until the guest says its lab is up and every node's sshd answers from this machine.
/// Fails early when qemu ends or the guest's `lab up` failed, with the end of the console.
async fn wait_until_ready(plan: &LabPlan, paths: &LabPaths, pid: u32) -> Result<(), LabError> {
    let limit = vm::timeout_override().ok().flatten().unwrap_or(READY_LIMIT);
    let deadline = Instant::now() + limit;
    let log = paths.console_log();
    loop {
        let console = std::fs::read_to_string(&log).unwrap_or_default();
        let running = procs::vm_processes(&paths.dir).contains(&pid);
        if console.contains(EXIT_MARKER) || !running {
            let why = if running {
                "the lab inside the VM could not be built"
            } else {
                "the VM stopped"
            };
            return Err(LabError::Vm(format!(
                "{why}; the end of its console:\n{}",
                tail(&console, 25)
            )));
        }
        if console.contains(READY_MARKER) {
            // All nodes at once, as `lab status` asks them.
            let pending: Vec<String> = status::probe_vm_lab(plan, paths)
                .await
                .nodes
                .into_iter()
                .filter(|n| !n.healthy())
                .map(|n| n.node)
                .collect();
            if pending.is_empty() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(LabError::Vm(format!(
                    "the VM's lab is up, but from this machine sshd does not answer on {} \
                     (a firewall on the bridge {}?)",
                    pending.join(", "),
                    plan.bridge()
                )));
            }
        } else if Instant::now() > deadline {
            return Err(LabError::Vm(format!(
                "the lab inside the VM was not up within {} s (set {} to wait longer); the end \
                 of its console:\n{}",
                limit.as_secs(),
                vm::TIMEOUT_ENV,
                tail(&console, 25)
            )));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The last `lines` lines of `text`, without the terminal's carriage returns.
fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().map(|l| l.trim_end_matches('\r')).collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lvs::Forwarding;

    #[test]
    fn the_guest_script_builds_the_lab_with_the_hosts_keys_and_stays() {
        let plan = LabPlan::new("demo", 3, Forwarding::Dr).unwrap();
        let script = guest_script(&plan);
        assert!(script.contains(
            "lab up --name demo --real-servers 3 --forwarding dr --init sysv --guest-keys /lvslab-vm/lab --uplink eth0 ||"
        ));
        let nat = guest_script(
            &LabPlan::new("demo", 2, Forwarding::Nat)
                .unwrap()
                .with_init(crate::lab::NodeInit::Systemd),
        );
        assert!(nat.contains(
            "--forwarding nat --init systemd --guest-keys /lvslab-vm/lab --uplink eth0 --uplink eth1 ||"
        ));
        assert!(script.contains(READY_MARKER));
        assert!(script.contains("while :; do sleep 3600; done"));
    }

    #[test]
    fn memory_grows_with_the_nodes() {
        let small = memory_mib(&LabPlan::new("a", 2, Forwarding::Dr).unwrap());
        let big = memory_mib(&LabPlan::new("a", 50, Forwarding::Dr).unwrap());
        assert!((1536..=2048).contains(&small), "{small}");
        assert!(big > small && big < 4096, "{big}");
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        assert_eq!(tail("a\r\nb\r\nc\r\n", 2), "b\nc");
        assert_eq!(tail("a", 5), "a");
    }
}
