//! The local lab: hosts as network namespaces with real sshd (`lvslab lab ...`).

use crate::cli::{Global, LabCommand};

pub async fn run(_cmd: LabCommand, _global: &Global) -> miette::Result<i32> {
    Err(miette::miette!("`lvslab lab` is not built yet"))
}
