//! The VM tier's scenarios that measure time against limits: every drill under load, the
//! forwarding methods' failovers, a real `systemctl reboot`. Their limits hold on an emulated CPU
//! only when nothing else competes for it, so scripts/test.sh runs this file alone, after every
//! other test (tests/vm_tier.rs runs beside the namespace tests). What the VM tier needs and how
//! a scenario is asserted: tests/vm_tier.rs, tests/common/vm.rs.

mod common;

use common::vm::{run_scenario, run_scenario_with};

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
/// undo ran on the host; 10 connections held open across a kill: none survives without
/// connection sync, all with it (the BACKUP holding verify's entries) and all with mh and
/// sloppy_tcp instead.
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
    expected.push("connection-sync".to_string());
    expected.push("mh-sloppy-tcp".to_string());
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
