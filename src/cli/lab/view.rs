//! What `lvslab lab ...` prints for people. (`--json` prints the same structs as JSON instead.)

use std::fmt::Write;

use crate::lab::{DownReport, Lab, LabStatus, Role};

/// Seconds with one decimal.
fn secs(ms: u64) -> String {
    format!("{:.1} s", ms as f64 / 1000.0)
}

fn headline(lab: &Lab) -> String {
    let nodes = lab
        .nodes
        .iter()
        .filter(|n| matches!(n.role, Role::Director | Role::RealServer))
        .count();
    let state = if lab.already_up {
        "is already up".to_string()
    } else {
        format!("is up ({})", secs(lab.elapsed_ms))
    };
    let place = match (lab.vm.is_some(), lab.init) {
        (false, crate::lab::NodeInit::Sysv) => "",
        (true, crate::lab::NodeInit::Sysv) => " in a VM",
        (false, crate::lab::NodeInit::Systemd) => " with systemd nodes",
        (true, crate::lab::NodeInit::Systemd) => " in a VM with systemd nodes",
    };
    let networks = if lab.forwarding == crate::lvs::Forwarding::Nat {
        format!(
            "the client and the directors on bridge {} ({}/24, outside), the directors and the real servers on bridge {} (198.18.1.1/24, inside), a router between them",
            lab.bridge,
            lab.bridge_address,
            lab.bridge.replacen("lvsb-", "lvsi-", 1)
        )
    } else {
        format!(
            "{nodes} nodes and a client on bridge {} ({}/24)",
            lab.bridge, lab.bridge_address
        )
    };
    format!(
        "lab `{}` {state}{place}, for {}: {networks}\n",
        lab.name,
        lab.forwarding.keepalived_kind()
    )
}

/// The headline of `up`: the lab, its bridge, and its VM if it runs in one.
pub fn up_summary(lab: &Lab) -> String {
    let mut out = headline(lab);
    if let Some(vm) = &lab.vm {
        let _ = writeln!(
            out,
            "  the VM: qemu pid {}, a stock Debian kernel with IPVS; its network cards are {} on \
             the lab's bridges; its console: {}",
            vm.qemu_pid,
            vm.taps.join(", "),
            vm.console_log.display()
        );
    }
    let _ = writeln!(out, "  inventory: {}", lab.inventory.display());
    out
}

/// The lab's progress while it works, on stderr (stdout keeps the report, or the JSON).
pub fn say(progress: crate::lab::Progress<'_>) {
    use crate::lab::Progress;
    match progress {
        Progress::Waiting(lock) => eprintln!(
            "lvslab: waiting for another lvslab to finish with {}",
            lock.display()
        ),
        Progress::Installing(packages) => eprintln!("lvslab: installing {}", packages.join(" ")),
        Progress::Vm(step) => eprintln!("lvslab vm: {step}"),
    }
}

pub fn up(lab: &Lab, verbose: bool) -> String {
    let mut out = headline(lab);
    for node in &lab.nodes {
        let addresses: Vec<String> = node.links.iter().map(|l| l.address.to_string()).collect();
        let _ = writeln!(
            out,
            "  {:<8} {:<27} {}",
            node.name,
            addresses.join(", "),
            node.role.describe()
        );
    }
    let _ = writeln!(
        out,
        "  {:<8} {:<27} in the inventory; the playbooks assign it",
        "VIP",
        lab.vip.to_string()
    );
    if let Some(cleaned) = &lab.cleaned {
        let _ = writeln!(
            out,
            "removed leftovers of an earlier run: {}",
            summary(cleaned)
        );
    }
    if !lab.installed.is_empty() {
        let _ = writeln!(out, "installed: {}", lab.installed.join(" "));
    }
    if let Some(vm) = &lab.vm {
        let _ = writeln!(
            out,
            "the nodes run in a VM (qemu pid {}) whose stock Debian kernel has IPVS: the whole \
             LVS lab works, reached from here through {} on the lab's bridges\nthe VM's console: {}",
            vm.qemu_pid,
            vm.taps.join(", "),
            vm.console_log.display()
        );
    } else if lab.kernel_has_ipvs {
        let _ = writeln!(out, "this kernel has IPVS: the whole LVS lab works here");
    } else {
        let _ = writeln!(
            out,
            "note: this kernel has no IPVS: VRRP and web servers work here, IPVS needs `lvslab lab up --vm`"
        );
    }
    if verbose {
        let steps: Vec<String> = lab
            .phases
            .iter()
            .map(|(name, ms)| format!("{name} {ms} ms"))
            .collect();
        let _ = writeln!(out, "steps: {}", steps.join(", "));
    }
    let example = lab
        .node("node2")
        .or_else(|| lab.nodes.first())
        .map(|n| (n.name.clone(), n.address.to_string()))
        .unwrap_or_default();
    let _ = write!(
        out,
        "\ninventory: {inventory}\n\
         converge:  lvslab -i {inventory} up\n\
         log in:    ssh -i {key} -o UserKnownHostsFile={known} -o IdentitiesOnly=yes root@{address}\n\
         \u{20}          lvslab lab exec --name {name} {node} -- hostname\n\
         tear down: lvslab lab down --name {name}\n",
        inventory = lab.inventory.display(),
        key = lab.identity_file.display(),
        known = lab.known_hosts.display(),
        address = example.1,
        node = example.0,
        name = lab.name,
    );
    out
}

pub fn down(report: &DownReport) -> String {
    if report.is_empty() {
        format!("lab `{}` is not up: nothing to remove\n", report.name)
    } else {
        format!("lab `{}` removed: {}\n", report.name, summary(report))
    }
}

fn summary(report: &DownReport) -> String {
    let mut parts = Vec::new();
    if let Some(pid) = report.vm {
        parts.push(format!("the VM (qemu pid {pid})"));
    }
    if report.processes > 0 {
        parts.push(format!("{} processes", report.processes));
    }
    if !report.namespaces.is_empty() {
        parts.push(format!(
            "{} namespaces ({})",
            report.namespaces.len(),
            report.namespaces.join(" ")
        ));
    }
    if !report.links.is_empty() {
        parts.push(format!(
            "{} links ({})",
            report.links.len(),
            report.links.join(" ")
        ));
    }
    if let Some(dir) = &report.state_dir {
        parts.push(format!("directory {}", dir.display()));
    }
    parts.join(", ")
}

pub fn status(status: &LabStatus) -> String {
    let mut out = String::new();
    if !status.exists() {
        let _ = writeln!(
            out,
            "lab `{0}` is not up (`lvslab lab up --name {0}` builds it)",
            status.name
        );
        return out;
    }
    let healthy = status.nodes.iter().filter(|n| n.healthy()).count();
    let total = status.nodes.len();
    let headline = if status.all_healthy() {
        format!("all {total} nodes healthy")
    } else if !status.recorded {
        format!(
            "not up: leftovers of an unfinished or crashed run ({healthy} of {total} nodes answer); \
             `lvslab lab up --name {0}` rebuilds it, `lvslab lab down --name {0}` removes it",
            status.name
        )
    } else {
        format!("{healthy} of {total} nodes healthy")
    };
    let _ = writeln!(out, "lab `{}`: {headline}", status.name);
    if let Some(vm) = &status.vm {
        let _ = match vm.qemu_pid {
            Some(pid) => writeln!(
                out,
                "  runs in a VM: qemu pid {pid}; its console: {}",
                vm.console_log.display()
            ),
            None => writeln!(
                out,
                "  its VM is not running (`lvslab lab up --vm --name {0}` starts it again, \
                 `lvslab lab down --name {0}` removes the rest); the last console: {1}",
                status.name,
                vm.console_log.display()
            ),
        };
    }
    for node in &status.nodes {
        let pid = match (node.pid1, &status.vm) {
            (Some(p), _) => format!("pid {p}"),
            (None, Some(_)) => "in the VM".into(),
            (None, None) => "no pid".into(),
        };
        let state = match (&node.problem, &node.sshd_banner) {
            (Some(problem), _) => format!("DOWN: {problem}"),
            (None, Some(banner)) => format!("ok, sshd answers ({banner})"),
            (None, None) => "ok".into(),
        };
        let _ = writeln!(
            out,
            "  {:<8} {:<13} {:<10} {state}",
            node.node,
            node.address.to_string(),
            pid
        );
    }
    out
}

/// `lab deps`: one line per program, what is missing first named with its package.
pub fn deps(deps: &[crate::lab::requirements::Dep]) -> String {
    let mut out = String::new();
    let width = deps.iter().map(|d| d.program.len()).max().unwrap_or(0);
    let pwidth = deps.iter().map(|d| d.package.len()).max().unwrap_or(0);
    for d in deps {
        let _ = writeln!(
            out,
            "{:<7} {:<width$}  {:<pwidth$}  {}",
            if d.found { "ok" } else { "MISSING" },
            d.program,
            d.package,
            d.why,
        );
    }
    let missing = deps.iter().filter(|d| !d.found).count();
    let _ = writeln!(
        out,
        "{} programs, {}",
        deps.len(),
        if missing == 0 {
            "all here".to_string()
        } else {
            format!("{missing} missing (`--install` installs them)")
        }
    );
    out
}
