//! The local lab (`lvslab lab ...`): hosts as network namespaces on one bridge, each with a real
//! sshd in its own mount, UTS and pid namespaces. Tier 1 of the lab; the qemu tier builds on it.
//!
//! For other parts of lvslab (the command line, tests): [`build`] builds a lab and returns a
//! [`Lab`] with its inventory and nodes, [`down`] removes one, [`status`] probes one, and
//! [`node_command`] runs a command inside a node.

mod down;
mod error;
mod exec;
mod files;
mod inventory_file;
mod netns;
mod node;
mod plan;
pub(crate) mod procs;
pub mod requirements;
mod state;
mod status;
mod sys;
mod up;
mod up_shared;
mod up_vm;
pub mod vm;

pub use down::{DownReport, down};
pub use error::LabError;
pub use exec::node_command;
pub use plan::{NodeInit, Role};
pub use requirements::kernel_has_ipvs;
pub use state::write_atomically;
pub use status::{LabStatus, status};
pub use up::up;
pub use up_shared::{GuestLink, Lab, UpOptions};
pub use up_vm::{install_vm_deps, up_vm};

/// What the lab tells while it works, for the CLI to show (the lab itself prints nothing).
#[derive(Debug, Clone, Copy)]
pub enum Progress<'a> {
    /// Another lvslab holds this lock: waiting for it.
    Waiting(&'a std::path::Path),
    /// Installing these packages.
    Installing(&'a [String]),
    /// A step of the VM's start.
    Vm(&'a str),
}

/// Where [`Progress`] goes.
pub type Say = fn(Progress<'_>);

/// Builds lab `options.name` here, or in a VM (`vm`), and forgets its lock file when nothing
/// of it was built.
pub async fn build(options: &UpOptions, vm: bool) -> Result<Lab, LabError> {
    let built = if vm {
        up_vm(options).await
    } else {
        up(options).await
    };
    if built.is_err() {
        state::Lock::remove_if_unused(&state::LabPaths::new(&options.name));
    }
    built
}
