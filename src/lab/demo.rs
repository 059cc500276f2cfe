//! `lvslab lab demo`: one command for a newcomer. A lab (here, or in a VM when this kernel has no
//! IPVS), the seed's keepalived + LVS-DR setup converged on it, and the probes' verdict. The lab
//! stays up for exploring.

use crate::cli::{Global, LabUpArgs, Mode, UpArgs, VerifyArgs};

use super::{LabError, requirements, up_for, view};

pub async fn demo(mut args: LabUpArgs, global: &Global) -> miette::Result<i32> {
    if !args.vm && !requirements::kernel_has_ipvs().await {
        println!(
            "This kernel has no IPVS: the demo runs the lab inside a small VM with a stock Debian \
             kernel\n(qemu; the first run builds the VM image, about a minute; later runs start \
             in seconds).\n"
        );
        args.vm = true;
    }
    let name = args.lab.name.clone();
    let lab = up_for(&args)
        .await
        .map_err(|e: LabError| miette::miette!("{e}"))?;
    print!("{}", view::up_summary(&lab));
    println!("\nconverging the seed's keepalived + LVS-DR setup, then verifying it:\n");
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
    let name_arg = if name == "lvslab" {
        String::new()
    } else {
        format!(" --name {name}")
    };
    println!(
        "\nThe lab stays up for you to explore{where_}:\n  export LVSLAB_INVENTORY={inventory}\n  \
         lvslab status\n  lvslab drill failover\n  lvslab lab exec{name_arg} node1 -- ipvsadm -Lnc\n\
         Tear it down with: lvslab down && lvslab lab down{name_arg}",
        where_ = if lab.vm.is_some() { " (in the VM)" } else { "" },
        inventory = lab.inventory.display(),
    );
    Ok(code)
}
