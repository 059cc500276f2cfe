//! The VM tier: real IPVS in a qemu guest with a stock Debian kernel, for machines (like CI's)
//! whose own kernel has none. Runs `lvslab lab vm-run tests/vm/scenario-ipvs.sh` and asserts the
//! verdict lines the guest printed on its serial console.
//!
//! Needs root and the host packages of `tests/vm/install-deps.sh`. The first run builds the VM
//! image (about 35 s, cached in /var/cache/lvslab/vm or $LVSLAB_VM_CACHE); later runs boot in
//! about 10 s. A machine without those packages fails this test: it never passes silently.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

/// Every verdict the scenario must report, all PASS.
const EXPECTED_VERDICTS: &[&str] = &[
    "ipvs-kernel",
    "realserver-pages",
    "realserver-dr-settings",
    "ipvs-table",
    "vip-single-arp-holder",
    "rr-distribution",
    "ipvs-connections",
];

#[test]
fn ipvs_dr_round_robin_works_in_the_vm() {
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vm/scenario-ipvs.sh");
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_lvslab"))
        .args(["lab", "vm-run"])
        .arg(&scenario)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start the lvslab binary");

    // stderr (the host's steps) on its own thread so neither pipe fills up.
    let stderr = child.stderr.take().expect("piped stderr");
    let steps = std::thread::spawn(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("{line}");
            lines.push(line);
        }
        lines
    });
    let mut verdicts = Vec::new();
    let stdout = child.stdout.take().expect("piped stdout");
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        println!("vm | {line}");
        if let Some(rest) = line.trim().strip_prefix("VERDICT ") {
            verdicts.push(rest.to_string());
        }
    }
    let status = child.wait().expect("waiting for lvslab");
    let steps = steps.join().unwrap_or_default();

    let steps_text = steps.join("\n");
    if steps_text.contains("cannot run here") || steps_text.contains("missing packages") {
        panic!(
            "the VM tier cannot run on this machine:\n{steps_text}\n\
             Install its host packages with tests/vm/install-deps.sh (as root); CI runs it first."
        );
    }

    println!(
        "\nverdicts read from the guest's serial console ({:.1} s in all):",
        started.elapsed().as_secs_f64()
    );
    for verdict in &verdicts {
        println!("  {verdict}");
    }
    let mut problems = Vec::new();
    for name in EXPECTED_VERDICTS {
        match verdicts.iter().find(|v| v.split(' ').next() == Some(name)) {
            None => problems.push(format!("no verdict {name}")),
            Some(v) if v.split(' ').nth(1) != Some("PASS") => problems.push(format!("failed: {v}")),
            Some(_) => {}
        }
    }
    for verdict in &verdicts {
        if verdict.split(' ').nth(1) != Some("PASS") {
            let line = format!("failed: {verdict}");
            if !problems.contains(&line) {
                problems.push(line);
            }
        }
    }
    assert!(
        problems.is_empty() && status.success(),
        "VM tier failed (lvslab exit {status}):\n  {}\nhost steps:\n{steps_text}",
        problems.join("\n  ")
    );
}
