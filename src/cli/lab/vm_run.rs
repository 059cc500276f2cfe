//! `lvslab lab vm-run SCRIPT` (hidden): a scenario script run in the VM tier's guest, its
//! console on stdout, the host's steps on stderr (tests/vm_tier.rs reads both).

use std::fs;
use std::path::Path;

use miette::{IntoDiagnostic, WrapErr, miette};

use crate::cli::outcome::Outcome;
use crate::lab::vm;

/// `lvslab lab vm-run SCRIPT` (hidden): runs a scenario script in the VM, streams its console
/// and exits 0 when the scenario exited 0 and no verdict failed, 2 otherwise.
pub async fn vm_run(script: &Path) -> miette::Result<Outcome> {
    let scenario = fs::read_to_string(script)
        .into_diagnostic()
        .wrap_err_with(|| format!("cannot read the scenario script {}", script.display()))?;
    let mut spec = vm::VmSpec::new(scenario);
    if let Some(timeout) = vm::timeout_override().map_err(|e| miette!("{e}"))? {
        spec.timeout = timeout;
    }
    let outcome = vm::run_vm(&spec, |event| match event {
        vm::VmEvent::Step(step) => eprintln!("lvslab vm: {step}"),
        vm::VmEvent::Console(line) => println!("{line}"),
    })
    .await?;
    let failed = outcome.verdicts.iter().filter(|v| !v.passed).count();
    eprintln!(
        "lvslab vm: scenario exit status {}; {} verdicts, {} failed; prepare {:.1} s, VM {:.1} s",
        outcome.exit_code,
        outcome.verdicts.len(),
        failed,
        outcome.prepare_time.as_secs_f64(),
        outcome.vm_time.as_secs_f64()
    );
    Ok(if outcome.passed() {
        Outcome::Ok
    } else {
        Outcome::Failed
    })
}
