//! `lvslab lab demo`: one command for a newcomer. A lab (here, or in a VM when this kernel has no
//! IPVS), the seed's keepalived + LVS-DR setup converged on it, and the probes' verdict. The lab
//! stays up for exploring.

use super::view;
use crate::cli::args::{Global, LabUpArgs, UpArgs, VerifyArgs};
use crate::cli::outcome::Outcome;
use crate::lab::vm::{self, VmEvent, VmSpec};
use crate::lvs::Management;

/// Without a tap device (no /dev/net/tun) the VM cannot join the lab's bridge: then the demo runs
/// the same steps inside the VM and reports what happened there.
const VM_SCRIPT: &str = r#"#!/bin/sh
set -u
export LVSLAB_INVENTORY=/var/lib/lvslab/labs/demo/inventory.yml
lvslab --no-progress lab up --name demo --real-servers "$REAL_SERVERS" || exit 1
lvslab --no-progress up || exit $?
echo
lvslab --no-progress status
"#;

pub async fn demo(mut args: LabUpArgs, global: &Global) -> miette::Result<Outcome> {
    if !args.vm && !crate::lab::kernel_has_ipvs().await {
        println!(
            "This kernel has no IPVS: the demo runs the lab inside a small VM with a stock Debian \
             kernel\n(qemu; the first run builds the VM image, about a minute; later runs start \
             in seconds).\n"
        );
        args.vm = true;
        if !std::path::Path::new("/dev/net/tun").exists() {
            return demo_inside_the_vm(&args).await;
        }
    }
    let name = args.lab.name.clone();
    let lab = match super::build(&args).await {
        Ok(lab) => lab,
        Err(e) => return super::outcome_of(e),
    };
    print!("{}", view::up_summary(&lab));
    println!("\nconverging the seed's keepalived + LVS-DR setup, then verifying it:\n");
    let mut on_lab = global.clone();
    on_lab.inventory = lab.inventory.clone();
    let outcome = crate::cli::converge::up(
        &UpArgs {
            mode: Management::Keepalived,
            no_verify: false,
            verify: VerifyArgs { requests: 20 },
        },
        &on_lab,
    )
    .await?;
    let name_arg = if name == "lvslab" {
        String::new()
    } else {
        format!(" --name {name}")
    };
    // The commands as the user can paste them: `./target/release/lvslab` if that is how lvslab
    // was started.
    let me = std::env::args()
        .next()
        .filter(|arg| arg.contains('/'))
        .unwrap_or_else(|| "lvslab".into());
    println!(
        "\nThe lab stays up for you to explore{where_}:\n  export LVSLAB_INVENTORY={inventory}\n  \
         {me} status\n  {me} drill failover\n  {me} lab exec{name_arg} node1 -- ipvsadm -Lnc\n\
         Tear it down with: {me} down && {me} lab down{name_arg}",
        where_ = if lab.vm.is_some() { " (in the VM)" } else { "" },
        inventory = lab.inventory.display(),
    );
    Ok(outcome)
}

async fn demo_inside_the_vm(args: &LabUpArgs) -> miette::Result<Outcome> {
    if vm::check_vm_requirements().is_err() && args.install_deps {
        crate::lab::install_vm_deps(super::view::say)
            .await
            .map_err(|e| miette::miette!("{e}"))?;
    }
    if let Err(why) = vm::check_vm_requirements() {
        return Err(miette::miette!(
            help =
                "install them, or run the demo on a machine whose kernel has IPVS (modprobe ip_vs)",
            "this kernel has no IPVS, and the VM that would bring one cannot start here: {why}"
        ));
    }
    println!(
        "This machine has no /dev/net/tun, so the VM cannot join a lab network here: the demo runs \
         inside the VM and the lab ends with it.\n"
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
        "\nThe VM has powered off and its lab with it. With /dev/net/tun (modprobe tun), \
         `lvslab lab up --vm` keeps a VM lab up for exploring."
    );
    Ok(if outcome.exit_code == 0 {
        Outcome::Ok
    } else {
        Outcome::Failed
    })
}
