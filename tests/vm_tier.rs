//! The VM tier: real IPVS in a qemu guest with a stock Debian kernel, for machines (like CI's)
//! whose own kernel has none. Two tests run `lvslab lab vm-run tests/vm/<scenario>.sh`, one
//! scenario each, and assert the `VERDICT <name> PASS|FAIL <evidence>` lines the guest printed
//! on its serial console (tests/common/vm.rs); three run `lvslab lab demo`, which starts a lab in
//! a VM reached from this machine (`lab up --vm`), or inside it. The scenarios that measure
//! time against limits (drills, failovers, reboots) are tests/vm_timed.rs's: scripts/test.sh
//! runs this file beside the namespace tests, and those alone after them.
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

use common::vm::run_scenario;
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
