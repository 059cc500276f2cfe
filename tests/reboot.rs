//! A lab that survives a reboot of any node, on the namespace lab (VRRP, ARP, the real servers'
//! settings and web servers; the VM tier does the same with IPVS). A lab node's reboot is a
//! power cut: every process of the node killed, its network back to what `lab up` made, then
//! the node boots from its own files. `drill reboot` does it to a real server, the BACKUP and
//! the MASTER; what `up` set comes back with no lvslab run in between, and verify says so.
//! After `down`, a reboot brings nothing of the lab back.

mod common;

use std::collections::BTreeSet;

use common::{TestLab, lvslab, show, stdout};

fn lv(lab: &TestLab, args: &[&str]) -> std::process::Output {
    let inv = lab.inventory.to_str().unwrap();
    let mut all = vec!["-i", inv];
    all.extend_from_slice(args);
    lvslab(&all)
}

/// The JSON events of a `--json` run.
fn events(out: &std::process::Output) -> Vec<serde_json::Value> {
    stdout(out)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .collect()
}

/// The probes that passed, by name.
fn passed(out: &std::process::Output) -> BTreeSet<String> {
    events(out)
        .iter()
        .filter(|e| e["event"] == "probe" && e["pass"] == true)
        .filter_map(|e| e["probe"].as_str().map(str::to_string))
        .collect()
}

/// What a node holds of the lab's setup, as a line a test compares.
fn setup_on(lab: &TestLab, node: &str) -> String {
    let out = lab.ssh(
        node,
        "echo vip-lo=$(ip -o addr show dev lo | grep -c ' 198.18.0.100/32'); \
         echo vip-eth0=$(ip -o addr show dev eth0 | grep -c ' 198.18.0.100/'); \
         echo arp_ignore=$(sysctl -n net.ipv4.conf.all.arp_ignore); \
         echo keepalived=$(pgrep -x keepalived >/dev/null && echo running || echo stopped); \
         echo nginx=$(pgrep -x nginx >/dev/null && echo running || echo stopped); \
         echo boot-entries=$(ls /etc/lvslab-boot.d 2>/dev/null | wc -l)",
    );
    assert!(out.status.success(), "{}", show(&out));
    stdout(&out)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// A power cut of a lab node without lvslab's drill (its init's SIGUSR1), then its sshd again.
fn power_cut(lab: &TestLab, node: &str) {
    let cut = lab.ssh(
        node,
        "setsid sh -c 'sleep 0.3; kill -USR1 1' </dev/null >/dev/null 2>&1 &",
    );
    assert!(cut.status.success(), "{}", show(&cut));
    std::thread::sleep(std::time::Duration::from_secs(2));
    for _ in 0..60 {
        // Booted: what is enabled has started (the node's init marks it).
        if lab
            .ssh(node, "test -e /run/lvslab-node-booted")
            .status
            .success()
        {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    panic!("{node} did not come back after its power cut");
}

#[test]
fn every_role_survives_a_reboot_without_lvslab_and_down_leaves_nothing_to_come_back() {
    let lab = TestLab::up(2);
    let up = lv(&lab, &["--json", "up"]);
    // The namespace lab has no IPVS: its probes fail before and after alike.
    let before = passed(&up);
    for probe in [
        "VRRP",
        "one VIP holder",
        "real server node2",
        "web server node2",
    ] {
        assert!(
            before.iter().any(|p| p.starts_with(probe)),
            "{probe} passes after up: {}",
            show(&up)
        );
    }
    let listed = lab.ssh(
        "node2",
        "ls /etc/lvslab-boot.d; cat /etc/lvslab-boot.d/*; ls /etc/rc2.d",
    );
    let listed = stdout(&listed);
    assert!(
        listed.contains("30-address-lo-198.18.0.100")
            && listed.contains("ip addr replace 198.18.0.100/32 dev lo label lo:")
            && listed.contains("S01lvslab-boot")
            && listed.contains("S01nginx"),
        "the VIP on lo is kept for boot, lvslab-boot and nginx are enabled: {listed}"
    );
    let node2 = setup_on(&lab, "node2");
    assert_eq!(
        node2,
        "vip-lo=1 vip-eth0=0 arp_ignore=1 keepalived=stopped nginx=running boot-entries=1"
    );

    for (node, role) in [
        ("node2", "real server"),
        ("node4", "BACKUP director"),
        ("node1", "MASTER director"),
    ] {
        let init_before = common::node_pid1(&lab.name, node);
        let out = lv(&lab, &["--json", "drill", "reboot", node, "--no-svg"]);
        let all = events(&out);
        let run = all
            .iter()
            .find(|e| e["event"] == "result")
            .and_then(|e| e["data"][0].as_object().cloned())
            .unwrap_or_else(|| panic!("{node}: no result: {}", show(&out)));
        let summary = run["summary"].as_str().unwrap_or_default();
        assert_eq!(run["pass"], true, "{node}: {summary}\n{}", show(&out));
        assert!(
            summary.contains(&format!("{node} ({role}) rebooted"))
                || run["record"]["title"]
                    .as_str()
                    .is_some_and(|t| t.contains(&format!("{node} ({role}) rebooted"))),
            "{node}: {}",
            show(&out)
        );
        assert!(
            summary.contains("answered SSH again after")
                && summary.contains("back in service after"),
            "{summary}"
        );
        // The node's init stayed (a lab node's power cut), everything under it is new.
        assert_eq!(common::node_pid1(&lab.name, node), init_before);
        // Verify ran on the lab as the reboot left it: the same probes pass as after `up`.
        let after: BTreeSet<String> = all
            .iter()
            .filter(|e| e["event"] == "probe" && e["pass"] == true)
            .filter_map(|e| e["probe"].as_str().map(str::to_string))
            .filter(|p| !p.starts_with("drill"))
            .collect();
        assert_eq!(
            after,
            before,
            "{node}: verify after its reboot\n{}",
            show(&out)
        );
    }
    assert_eq!(setup_on(&lab, "node2"), node2, "node2 as up left it");
    let node1 = setup_on(&lab, "node1");
    assert!(
        node1.contains("vip-eth0=1") && node1.contains("keepalived=running"),
        "node1 took the VIP back by priority after its reboot: {node1}"
    );

    let down = lv(&lab, &["down"]);
    assert_eq!(down.status.code(), Some(0), "{}", show(&down));
    assert!(
        stdout(&down).contains("lvslab-boot: gone"),
        "{}",
        show(&down)
    );
    for node in ["node2", "node1"] {
        power_cut(&lab, node);
    }
    assert_eq!(
        setup_on(&lab, "node2"),
        "vip-lo=0 vip-eth0=0 arp_ignore=0 keepalived=stopped nginx=running boot-entries=0",
        "after down and a reboot: no VIP, the ARP settings as before (nginx stays enabled: down keeps the web server)"
    );
    assert_eq!(
        setup_on(&lab, "node1"),
        "vip-lo=0 vip-eth0=0 arp_ignore=0 keepalived=stopped nginx=stopped boot-entries=0",
        "after down and a reboot, keepalived stays disabled: no VIP comes back"
    );
    let links = lab.ssh(
        "node1",
        "ls /etc/rc2.d /etc/init.d | grep -c lvslab-boot || true",
    );
    assert_eq!(stdout(&links).trim(), "0", "no lvslab-boot left on node1");
}
