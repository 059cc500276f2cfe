//! The VM tier: real IPVS in a qemu guest with a stock Debian kernel, for machines (like CI's)
//! whose own kernel has none. Five tests run `lvslab lab vm-run tests/vm/<scenario>.sh`, one
//! scenario each, and assert the `VERDICT <name> PASS|FAIL <evidence>` lines the guest printed
//! on its serial console; three run `lvslab lab demo`, which starts a lab in a VM reached from this machine (`lab up --vm`), or inside it.
//! tests/vm/README.md says what each scenario covers.
//!
//! Needs root and the programs of `lvslab lab deps --vm` (`--install` installs them). The first
//! run builds the VM image (about 35 s, cached in /var/cache/lvslab/vm or $LVSLAB_VM_CACHE);
//! later runs boot in 10-25 s under TCG. A machine without those programs fails these tests:
//! they never pass silently. With $LVSLAB_TEST_TIMINGS set, each scenario's time is appended
//! to that file (scripts/test.sh prints it).

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{
    DownOnDrop, STATE_ROOT, kill, lvslab, show, ssh_options, stderr, stdout, traces_of, turn,
    unique_name, vm_turn,
};

/// Plain `ip`/`ipvsadm` in the guest, independent of lvslab's engine: the tier itself works.
#[test]
fn ipvs_dr_round_robin_works_in_the_vm() {
    run_scenario(
        "scenario-ipvs.sh",
        &[
            "ipvs-kernel",
            "realserver-pages",
            "realserver-dr-settings",
            "ipvs-table",
            "vip-single-arp-holder",
            "rr-distribution",
            "ipvs-connections",
        ],
    );
}

/// lvslab end to end on real IPVS: converge, drift, manual mode and 3 real servers on SysV nodes
/// (manual mode's alias and IPVS rules, and a real server's setup, back from lvslab-boot's init
/// script after a power cut of the MASTER and node2; after `down`, power cuts bring nothing back;
/// the same on systemd nodes below), then several services (persistent seen by two clients, a firewall
/// mark, TLS checked by SSL_GET, sh with sh-port) on them, one real server drained out of all
/// of them under load with no request failed (`lvslab drain`, waiting out a held connection)
/// and put back (`undrain`), the sorry page once the quorum is lost and with every one down,
/// a sorry server standing by at weight 0 (`sorry_server_inhibit`), failed servers kept at
/// weight 0 (`inhibit_on_failure`) (the drills run in scenario-drills.sh, each kind under load).
#[test]
fn lvslab_converges_verifies_repairs_and_tears_down_in_the_vm() {
    run_scenario(
        "scenario-lvslab.sh",
        &[
            "lab-up",
            "up-converges-and-verifies",
            "drift-real-server-deleted",
            "drift-extra-real-server",
            "drift-scheduler-changed",
            "manual-mode",
            "manual-reboot",
            "down-then-reboot",
            "three-real-servers",
            "services-persistent-clients",
            "services-tls",
            "services-converge",
            "services-ipvs-settings",
            "services-mark-on-backup",
            "services-rerun",
            "services-drift",
            "services-scheduler-flags",
            "drain-command",
            "undrain-command",
            "services-ssl-get",
            "services-sorry",
            "services-sorry-inhibit",
            "services-inhibit-on-failure",
            "services-down",
            "services-manual",
        ],
    );
}

/// The failover kinds drilled in the VM: the MASTER killed (its VIP left behind, with IPVS
/// beside it) and cut off (two MASTERs, each with its table). Every kind, these two too, is
/// drilled against its limit on the namespace tier (tests/drills.rs); the others fail the
/// MASTER's VRRP the same way whether IPVS is there or not.
const FAILOVER_KINDS_IN_THE_VM: [&str; 2] = ["kill", "partition"];

/// Every drill on real IPVS under HTTP load: two ways a MASTER fails and four ways a real
/// server does, each within the limit it computes, each leaving the lab as it found it (verify
/// after each kind); kill's stale VIP, partition's two MASTERs, drain's zero errors; a real
/// server that lost the VIP kept by the plain check and removed by the check through the VIP;
/// TCP_CHECK removing a killed server in time (and the hang drill refused with why), and
/// MISC_CHECK (curl) too; a drill SIGKILLed mid-fault leaves a lab that verifies again once its
/// undo ran on the host.
#[test]
fn every_drill_stays_within_its_limit_and_leaves_a_lab_that_verifies_in_the_vm() {
    let mut expected = vec!["lab-up".to_string(), "up".to_string()];
    for kind in FAILOVER_KINDS_IN_THE_VM {
        expected.push(format!("failover-{kind}"));
    }
    expected.push("verify-after-failover-partition".to_string());
    for kind in ["stop", "kill", "hang", "drain"] {
        expected.push(format!("realserver-{kind}"));
    }
    expected.push("verify-after-realserver-drain".to_string());
    expected.push("blackhole".to_string());
    // (A killed failover drill is the namespace tier's, tests/drills.rs.)
    expected.push("killed-realserver-hang".to_string());
    expected.push("verify-after-killed".to_string());
    expected.push("tcp-check".to_string());
    expected.push("misc-check".to_string());
    let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
    run_scenario_with(
        "scenario-drills.sh",
        &[("FAILOVER_KINDS", &FAILOVER_KINDS_IN_THE_VM.join(" "))],
        &expected,
    );
}

/// On nodes that run systemd (systemd-nspawn containers): the seed's whole setup (keepalived DR,
/// then by hand) converges and verifies, lvslab enables its units and reloads keepalived with
/// systemctl (a weight change reaches IPVS), the MASTER survives a real `systemctl reboot`
/// under load, manual mode's alias and rules and a real server's setup come back after one (the
/// MASTER and node2 rebooted at once), and after `down` reboots bring nothing back. The BACKUP
/// boots from the same director units; every role is drilled on SysV nodes in
/// tests/reboot.rs, and SysV nodes' manual mode and `down` across power cuts run in
/// scenario-lvslab.sh.
#[test]
fn the_seed_setup_on_systemd_nodes_survives_a_real_systemctl_reboot_in_the_vm() {
    run_scenario_with(
        "scenario-reboot.sh",
        &[("LAB_INIT", "systemd"), ("REBOOT_DRILLS", "node1")],
        REBOOT_VERDICTS,
    );
}

const REBOOT_VERDICTS: &[&str] = &[
    "lab-up",
    "up",
    "reboot-node1",
    "reload-weight",
    "manual-reboot",
    "down-then-reboot",
];

/// The three forwarding methods of the seed notes on one NAT-shaped lab: each converged and
/// proven by its path (IPVS counters, the real servers' logs, tunl0), rerun without change,
/// switched from one to the next with nothing of the old one left, failed over (NAT: the gateway
/// moves too; TUN: the BACKUP's tunnels; DR in scenario-drills.sh), by hand too, and torn down
/// to nothing.
#[test]
fn every_forwarding_method_converges_proves_its_path_and_switches_cleanly_in_the_vm() {
    let mut expected = vec!["lab-up".to_string(), "only-fresh-lab".to_string()];
    for tag in [
        "dr-after-fresh",
        "nat-after-dr",
        "tun-after-nat",
        "dr-after-tun",
    ] {
        for step in ["up", "rerun", "only", "failover", "verify-after-failover"] {
            // DR's failover is drilled in scenario-drills.sh; verify after a failover with NAT
            // only, whose gateway moves too.
            let skip = (tag.starts_with("dr") && step.contains("failover"))
                || (step == "verify-after-failover" && !tag.starts_with("nat"));
            if !skip {
                expected.push(format!("{step}-{tag}"));
            }
        }
    }
    for more in [
        "manual-nat",
        "manual-tun",
        "down-leaves-nothing",
        "only-after-down",
        "down-twice",
    ] {
        expected.push(more.to_string());
    }
    let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
    run_scenario("scenario-modes.sh", &expected);
}

/// The README's first command, then the lab it leaves: `lvslab lab demo` on a kernel without
/// IPVS starts the lab in a VM (`lab up --vm`), converges and verifies it from this machine with
/// a real round-robin distribution over node2 and node3, and leaves it up for exploring: ssh and
/// `lab exec` reach the nodes, IPVS is real, `lab up --vm` again finds it, a killed VM shows in
/// `lab status` and the next `up` rebuilds it, `lab down` leaves nothing behind.
#[test]
fn lab_demo_leaves_a_vm_lab_to_explore_and_down_removes_it() {
    let name = unique_name();
    // Its lab is on this machine (or its state is): the labs' turn, then the VM's.
    let (_turn, _vm) = (turn(), vm_turn());
    let _down = DownOnDrop(name.clone());
    let out = lvslab(&["lab", "demo", "--name", &name]);
    let text = stdout(&out);
    println!("{}", show(&out));
    assert_eq!(out.status.code(), Some(0), "lab demo failed");
    assert!(
        text.contains("runs the lab inside a small VM"),
        "took the VM path"
    );
    assert!(text.contains(&format!("lab `{name}` is up")) && text.contains("in a VM"));
    assert!(text.contains(
        "PASS http via VIP: 20 GET http://198.18.0.100:80/ from client: node2=10 node3=10 (0 failed)"
    ));
    assert!(text.contains("PASS path (DR)") && text.contains("verify: 12 passed, 0 failed"));
    assert!(text.contains("The lab stays up for you to explore (in the VM)"));

    // Explore it from this machine: OpenSSH with the lab's key, and `lab exec`.
    let dir = Path::new(STATE_ROOT).join(&name);
    let ssh = Command::new("ssh")
        .args(ssh_options(
            &dir.join("id_ed25519"),
            &dir.join("known_hosts"),
        ))
        .args(["root@198.18.0.12", "hostname"])
        .output()
        .expect("cannot run ssh");
    assert_eq!(stdout(&ssh).trim(), "node2", "{}", show(&ssh));
    let exec = lvslab(&[
        "lab", "exec", "--name", &name, "node1", "--", "ipvsadm", "-Ln",
    ]);
    assert!(exec.status.success(), "{}", show(&exec));
    assert!(
        stdout(&exec).contains("198.18.0.100:80 rr") && stdout(&exec).contains("198.18.0.13:80"),
        "real IPVS on node1: {}",
        show(&exec)
    );
    let exit = lvslab(&[
        "lab", "exec", "--name", &name, "node2", "--", "sh", "-c", "exit 7",
    ]);
    assert_eq!(exit.status.code(), Some(7), "exit code passed through");

    let again = lvslab(&["lab", "up", "--vm", "--name", &name]);
    assert!(again.status.success(), "{}", show(&again));
    assert!(
        stdout(&again).contains("is already up in a VM"),
        "{}",
        show(&again)
    );
    let here = lvslab(&["lab", "up", "--name", &name]);
    assert_eq!(here.status.code(), Some(1), "{}", show(&here));
    assert!(stderr(&here).contains("is up in a VM"), "{}", show(&here));

    // A command that cuts the node's own network ends within seconds (the ssh to the node has
    // a keepalive), not never.
    let started = Instant::now();
    let cut = lvslab(&[
        "lab", "exec", "--name", &name, "node4", "--", "ip", "link", "set", "eth0", "down",
    ]);
    assert_ne!(cut.status.code(), Some(0), "{}", show(&cut));
    assert!(
        started.elapsed() < Duration::from_secs(40),
        "lab exec returned after {:?}",
        started.elapsed()
    );

    // A VM that dies shows in `lab status`; the next `up` cleans up and rebuilds it.
    let pid: u32 = std::fs::read_to_string(dir.join("vm/qemu.pid"))
        .expect("qemu.pid")
        .trim()
        .parse()
        .expect("a pid");
    kill("KILL", pid);
    let deadline = Instant::now() + Duration::from_secs(10);
    while Path::new(&format!("/proc/{pid}/cmdline")).exists()
        && !std::fs::read(format!("/proc/{pid}/cmdline"))
            .unwrap_or_default()
            .is_empty()
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = lvslab(&["lab", "status", "--name", &name]);
    assert_eq!(status.status.code(), Some(2), "{}", show(&status));
    assert!(
        stdout(&status).contains("its VM is not running"),
        "{}",
        show(&status)
    );
    let rebuilt = lvslab(&["lab", "up", "--vm", "--name", &name]);
    assert!(rebuilt.status.success(), "{}", show(&rebuilt));
    assert!(
        stdout(&rebuilt).contains("removed leftovers of an earlier run"),
        "{}",
        show(&rebuilt)
    );
    let status = lvslab(&["lab", "status", "--name", &name]);
    assert_eq!(status.status.code(), Some(0), "{}", show(&status));

    let down = lvslab(&["lab", "down", "--name", &name]);
    assert!(down.status.success(), "{}", show(&down));
    assert!(
        stdout(&down).contains("the VM (qemu pid"),
        "{}",
        show(&down)
    );
    assert_eq!(traces_of(&name), Vec::<String>::new(), "left behind");

    // Ctrl-C while the VM boots: exit 130, and nothing half-built is left.
    let mut up = Command::new(env!("CARGO_BIN_EXE_lvslab"))
        .args(["lab", "up", "--vm", "--name", &name])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start lvslab");
    let stderr_pipe = up.stderr.take().expect("piped stderr");
    let mut lines = BufReader::new(stderr_pipe).lines().map_while(Result::ok);
    let booting = lines.find(|l| l.contains("waiting for the lab inside the VM"));
    assert!(booting.is_some(), "lab up --vm never got to boot the VM");
    kill("INT", up.id());
    let rest: Vec<String> = lines.collect();
    let status = up.wait().expect("waiting for lvslab");
    assert_eq!(status.code(), Some(130), "{rest:?}");
    assert!(rest.iter().any(|l| l.contains("interrupted")), "{rest:?}");
    assert_eq!(
        traces_of(&name),
        Vec::<String>::new(),
        "left behind after Ctrl-C"
    );
}

/// `lab demo --forwarding nat` on a kernel without IPVS: the lab in a VM shaped for NAT (two
/// networks, the VM with a network card on each), NAT converged, and every verify probe passing,
/// the path proven from counters and logs. (A TUN lab has DR's shape, which the demo above
/// takes; TUN itself converges and proves its path in scenario-modes.sh.)
#[test]
fn lab_demo_for_nat_ends_with_every_probe_passing() {
    let name = unique_name();
    // Its lab is on this machine (or its state is): the labs' turn, then the VM's.
    let (_turn, _vm) = (turn(), vm_turn());
    let _down = DownOnDrop(name.clone());
    let out = lvslab(&["lab", "demo", "--name", &name, "--forwarding", "nat"]);
    let text = stdout(&out);
    println!("{}", show(&out));
    assert_eq!(
        out.status.code(),
        Some(0),
        "lab demo --forwarding nat failed"
    );
    assert!(text.contains("for NAT:"), "the lab is for NAT");
    assert!(text.contains("PASS path (NAT)"), "the path is proven");
    assert!(
        text.contains(
            "PASS http via VIP: 20 GET http://198.18.0.100:80/ from client: node2=10 node3=10 (0 failed)"
        ),
        "round robin through the VIP"
    );
    assert!(text.contains(" passed, 0 failed"), "every probe passed");
    let down = lvslab(&["lab", "down", "--name", &name]);
    assert!(down.status.success(), "{}", show(&down));
    assert_eq!(traces_of(&name), Vec::<String>::new(), "left behind");
}

/// Without /dev/net/tun (here: hidden by a tmpfs in a private mount namespace) the VM cannot
/// join a lab network: `lab demo` says so, runs the setup inside the VM and still shows the real
/// round-robin distribution; nothing is left on this machine.
#[test]
fn lab_demo_without_a_tap_device_runs_inside_the_vm() {
    let name = unique_name();
    // Its lab is on this machine (or its state is): the labs' turn, then the VM's.
    let (_turn, _vm) = (turn(), vm_turn());
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(r#"mount -t tmpfs none /dev/net && exec "$0" lab demo --name "$1""#)
        .arg(env!("CARGO_BIN_EXE_lvslab"))
        .arg(&name)
        .stdin(Stdio::null())
        .output()
        .expect("cannot run unshare");
    let text = stdout(&out);
    println!("{}", show(&out));
    assert_eq!(out.status.code(), Some(0), "lab demo failed");
    assert!(text.contains("no /dev/net/tun"), "says why");
    assert!(text.contains(
        "PASS http via VIP: 20 GET http://198.18.0.100:80/ from client: node2=10 node3=10 (0 failed)"
    ));
    assert!(text.contains("PASS path (DR)") && text.contains("verify: 12 passed, 0 failed"));
    assert!(text.contains("The VM has powered off"));
    assert_eq!(traces_of(&name), Vec::<String>::new(), "left behind");
}

/// Runs one scenario in the VM and fails unless every expected verdict (and every other verdict
/// printed) is PASS and lvslab exited 0.
fn run_scenario(scenario: &str, expected: &[&str]) {
    run_scenario_with(scenario, &[], expected)
}

/// The scenario with shell variables set before it starts (`settings`: name, value).
fn run_scenario_with(scenario: &str, settings: &[(&str, &str)], expected: &[&str]) {
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
