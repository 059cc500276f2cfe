//! The VM tier's scenarios: `lvslab lab vm-run tests/vm/<scenario>.sh` and the verdicts the guest
//! printed on its serial console, asserted (tests/vm_tier.rs and tests/vm_timed.rs).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use super::vm_turn;

/// Runs one scenario in the VM and fails unless every expected verdict (and every other verdict
/// printed) is PASS and lvslab exited 0.
pub fn run_scenario(scenario: &str, expected: &[&str]) {
    run_scenario_with(scenario, &[], expected)
}

/// The scenario with shell variables set before it starts (`settings`: name, value).
pub fn run_scenario_with(scenario: &str, settings: &[(&str, &str)], expected: &[&str]) {
    // The scenario's lab is inside the VM: only the VM's turn.
    let _turn = vm_turn();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vm");
    let text = std::fs::read_to_string(dir.join(scenario)).expect("the scenario");
    // lvslab's scenarios share tests/vm/lib.sh: put it right after their `#!` line.
    let script = if text.contains("Uses tests/vm/lib.sh") || !settings.is_empty() {
        let lib = std::fs::read_to_string(dir.join("lib.sh")).expect("tests/vm/lib.sh");
        let (shebang, body) = text.split_once('\n').unwrap_or(("#!/bin/sh", &text));
        // Quoted: a value of several words is one value (unquoted, `A=b c` runs `c`).
        let vars: String = settings
            .iter()
            .map(|(name, value)| format!("{name}='{value}'\n"))
            .collect();
        let tag = settings_tag(settings);
        let combined =
            std::env::temp_dir().join(format!("lvslab-{}{tag}-{}", std::process::id(), scenario));
        std::fs::write(&combined, format!("{shebang}\n{vars}{lib}\n{body}")).expect("write");
        combined
    } else {
        dir.join(scenario)
    };
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_lvslab"))
        .args(["lab", "vm-run"])
        .arg(&script)
        // Under TCG on 2 shared cores the long scenario needs more than the 300 s default.
        .env(
            "LVSLAB_VM_TIMEOUT",
            std::env::var("LVSLAB_VM_TIMEOUT").unwrap_or_else(|_| "900".into()),
        )
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
    let mut console = Vec::new();
    let stdout = child.stdout.take().expect("piped stdout");
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        println!("vm | {line}");
        console.push(line.clone());
        if let Some(rest) = line.trim().strip_prefix("VERDICT ") {
            verdicts.push(rest.to_string());
        }
    }
    let status = child.wait().expect("waiting for lvslab");
    let steps = steps.join().unwrap_or_default().join("\n");

    if steps.contains("cannot run here") {
        panic!(
            "the VM tier cannot run on this machine:\n{steps}\n\
             Install its programs with `lvslab lab deps --vm --install` (as root); scripts/test.sh does."
        );
    }

    let took = started.elapsed().as_secs_f64();
    println!("\n{scenario}: verdicts read from the guest's serial console ({took:.1} s in all):");
    record_time(scenario, settings, took);
    keep_log(scenario, settings, &console, &steps);
    for verdict in &verdicts {
        println!("  {verdict}");
    }
    let result_of = |verdict: &String| verdict.split(' ').nth(1).map(str::to_string);
    let mut problems = Vec::new();
    for name in expected {
        match verdicts.iter().find(|v| v.split(' ').next() == Some(name)) {
            None => problems.push(format!("no verdict {name}")),
            Some(v) if result_of(v).as_deref() != Some("PASS") => {
                problems.push(format!("failed: {v}"))
            }
            Some(_) => {}
        }
    }
    for verdict in &verdicts {
        let line = format!("failed: {verdict}");
        if result_of(verdict).as_deref() != Some("PASS") && !problems.contains(&line) {
            problems.push(line);
        }
    }
    assert!(
        problems.is_empty() && status.success(),
        "VM tier, {scenario}: lvslab exited {status}\n  {}\nhost steps:\n{steps}",
        problems.join("\n  ")
    );
}

/// The settings in a file name: `-value` each, spaces as dashes.
fn settings_tag(settings: &[(&str, &str)]) -> String {
    settings
        .iter()
        .map(|(_, v)| format!("-{}", v.replace(' ', "-")))
        .collect()
}

/// Keeps the guest's console and the host's steps of the last run of each scenario in
/// target/tmp/vm-logs/ (cargo shows a passing test's output to no one; a slow step shows there).
fn keep_log(scenario: &str, settings: &[(&str, &str)], console: &[String], steps: &str) {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("vm-logs");
    let path = dir.join(format!("{scenario}{}.log", settings_tag(settings)));
    let text = format!("{}\n--- host steps\n{steps}\n", console.join("\n"));
    if let Err(e) = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, text)) {
        eprintln!("cannot keep the scenario's log in {}: {e}", path.display());
    }
}

/// Appends the scenario's time to $LVSLAB_TEST_TIMINGS when it is set (scripts/test.sh prints
/// the file at the end).
fn record_time(scenario: &str, settings: &[(&str, &str)], secs: f64) {
    let Some(path) = std::env::var_os("LVSLAB_TEST_TIMINGS") else {
        return;
    };
    let with: Vec<String> = settings.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let line = format!("{secs:8.1}  {scenario} {}\n", with.join(" "));
    let appended = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| std::io::Write::write_all(&mut f, line.as_bytes()));
    if let Err(e) = appended {
        eprintln!("cannot record the scenario's time: {e}");
    }
}
