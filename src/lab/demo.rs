//! `lvslab lab demo`: one command for a newcomer. A lab (here, or in a VM when this kernel has no
//! IPVS), the seed's keepalived + LVS-DR setup converged on it, and the probes' verdict.

use crate::cli::{Global, LabUpArgs, Mode, UpArgs, VerifyArgs};
use crate::exit;

use super::vm::{self, VmEvent, VmSpec};
use super::{LabError, UpOptions, requirements, up};

/// What the demo runs inside the VM: the same steps as on a host with IPVS.
const VM_SCRIPT: &str = r#"#!/bin/sh
set -u
export LVSLAB_INVENTORY=/var/lib/lvslab/labs/demo/inventory.yml
lvslab --no-progress lab up --name demo --real-servers "$REAL_SERVERS" || exit 1
lvslab --no-progress up || exit $?
echo
lvslab --no-progress status
"#;

pub async fn demo(args: LabUpArgs, global: &Global) -> miette::Result<i32> {
    let use_vm = args.vm || !requirements::kernel_has_ipvs().await;
    if use_vm {
        return demo_in_vm(&args).await;
    }
    let name = args.lab.name.clone();
    let lab = up(&UpOptions {
        name: name.clone(),
        real_servers: args.real_servers,
        install_deps: args.install_deps,
    })
    .await
    .map_err(|e: LabError| miette::miette!("{e}"))?;
    println!(
        "lab `{name}` is up: {} nodes; inventory {}",
        lab.nodes.len(),
        lab.inventory.display()
    );
    println!("converging the seed's keepalived + LVS-DR setup, then verifying it:\n");
    let mut on_lab = global.clone();
    on_lab.inventory = lab.inventory.clone();
    let code = crate::commands::lvs::up(
        &UpArgs {
            mode: Mode::Keepalived,
            no_verify: false,
            verify: VerifyArgs { requests: 20 },
        },
        &on_lab,
    )
    .await?;
    println!(
        "\nThe lab stays up for you to explore:\n  export LVSLAB_INVENTORY={}\n  lvslab status\n  lvslab drill failover\n  lvslab lab exec --name {name} node1 -- ipvsadm -Lnc\nTear it down with: lvslab down && lvslab lab down --name {name}",
        lab.inventory.display()
    );
    Ok(code)
}

/// The VM tier's host packages (qemu, mmdebstrap, kmod, cpio), installed with apt when missing;
/// the same script the test suite uses.
const INSTALL_VM_DEPS: &str = include_str!("../../tests/vm/install-deps.sh");

async fn demo_in_vm(args: &LabUpArgs) -> miette::Result<i32> {
    if vm::check_vm_requirements().is_err() && args.install_deps {
        println!("installing the VM's host packages (--install-deps):");
        let status = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(INSTALL_VM_DEPS)
            .status()
            .await
            .map_err(|e| miette::miette!("cannot run the package installation: {e}"))?;
        if !status.success() {
            return Err(miette::miette!(
                "installing the VM's host packages failed ({status})"
            ));
        }
    }
    if let Err(why) = vm::check_vm_requirements() {
        return Err(miette::miette!(
            help = "rerun with --install-deps to install them (apt), or run the demo on a machine whose kernel has IPVS (modprobe ip_vs)",
            "this kernel has no IPVS, and the VM that would bring one cannot start here: {why}"
        ));
    }
    println!(
        "This kernel has no IPVS: the demo runs the lab inside a small VM with a stock Debian kernel"
    );
    println!(
        "(qemu; the first run builds the VM image, about a minute; later runs start in seconds).\n"
    );
    let script = VM_SCRIPT.replace("\"$REAL_SERVERS\"", &args.real_servers.to_string());
    let mut spec = VmSpec::new(script);
    spec.timeout = std::time::Duration::from_secs(600);
    let outcome = vm::run_vm(&spec, |event| match event {
        VmEvent::Step(s) => eprintln!("lvslab vm: {s}"),
        VmEvent::Console(line) => {
            // Our own markers and the kernel's last words (`[   30.08] reboot: ...`) are noise here.
            let kernel = line.starts_with('[')
                && line[1..]
                    .trim_start()
                    .starts_with(|c: char| c.is_ascii_digit());
            if !line.starts_with("LVSLAB-VM-") && !kernel {
                println!("{line}");
            }
        }
    })
    .await?;
    println!(
        "\nThe VM has powered off and its lab with it. On a machine whose kernel has IPVS, \
         `lvslab lab demo` leaves the lab up for exploring; here, `lvslab lab up` gives the same lab \
         without IPVS (VRRP, ARP and web servers work)."
    );
    Ok(if outcome.exit_code == 0 {
        exit::OK
    } else {
        exit::FAILED
    })
}
