//! End-to-end tests of `lvslab lab` (the namespace lab) on this machine: real namespaces, real
//! sshd, the real OpenSSH client. Needs root and the lab's packages, like `lvslab lab up`.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{
    DownOnDrop, TestLab, kill, lvslab, node_sshd, pids_in_namespace, show, stderr, stdout,
    traces_of, turn, unique_name,
};

#[test]
fn ssh_reaches_node2_and_a_file_on_node1_is_not_on_node4() {
    let lab = TestLab::up(2);
    let out = lab.ssh("node2", "hostname");
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(stdout(&out).trim(), "node2");

    let places = [
        "/root/only-node1",
        "/etc/only-node1",
        "/var/tmp/only-node1",
        "/tmp/only-node1",
    ];
    let write: Vec<String> = places.iter().map(|p| format!("echo one > {p}")).collect();
    let out = lab.ssh("node1", &write.join(" && "));
    assert!(out.status.success(), "{}", show(&out));
    let look = format!(
        "for f in {}; do test -e $f && echo $f; done; hostname",
        places.join(" ")
    );
    let out = lab.ssh("node4", &look);
    assert_eq!(
        stdout(&out),
        "node4\n",
        "node4 sees node1's files: {}",
        show(&out)
    );
    let out = lab.ssh("node1", "cat /root/only-node1 /etc/only-node1");
    assert_eq!(stdout(&out), "one\none\n", "{}", show(&out));
    for place in places {
        assert!(
            !Path::new(place).exists(),
            "{place} leaked onto the machine"
        );
    }
}

#[test]
fn nginx_serves_the_client_and_down_leaves_no_namespace_link_mount_or_process() {
    let lab = TestLab::up(2);
    let out = lab.exec("node2", &["service", "nginx", "start"]);
    assert!(out.status.success(), "{}", show(&out));
    let page = "echo served-by-node2 > /var/www/html/index.html";
    let out = lab.exec("node2", &["sh", "-c", page]);
    assert!(out.status.success(), "{}", show(&out));
    let url = format!("http://{}/", lab.address("node2"));
    let out = lab.exec("client", &["curl", "-sS", "-m", "5", &url]);
    assert_eq!(stdout(&out), "served-by-node2\n", "{}", show(&out));
    // nginx and its files are node2's own: node3 serves nothing.
    let url3 = format!("http://{}/", lab.address("node3"));
    let out = lab.exec("client", &["curl", "-sS", "-m", "5", &url3]);
    assert!(!out.status.success(), "node3 answered: {}", show(&out));

    let node2_pids = pids_in_namespace(&format!("lvs-{}-node2", lab.name));
    assert!(
        node2_pids.len() >= 4,
        "unshare, sshd, nginx: {node2_pids:?}"
    );
    let out = lab.lab("down");
    assert!(out.status.success(), "{}", show(&out));
    assert!(stdout(&out).contains("removed"), "{}", show(&out));
    // A zombie has ended; only init's reaping is left (not ours to wait for).
    let alive: Vec<&u32> = node2_pids
        .iter()
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/status"))
                .is_ok_and(|s| !s.lines().any(|l| l.starts_with("State:\tZ")))
        })
        .collect();
    assert!(
        alive.is_empty(),
        "node2's processes survived down: {alive:?}"
    );
    assert_eq!(traces_of(&lab.name), Vec::<String>::new());
}

#[test]
fn second_up_reports_the_lab_and_its_printed_ssh_line_works() {
    let lab = TestLab::up(2);
    let out = lab.lab("up");
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let text = stdout(&out);
    assert!(text.contains("is already up"), "{text}");
    assert!(text.contains(&format!("lvslab -i {} up", lab.inventory.display())));
    assert!(text.contains(&format!("lvslab lab down --name {}", lab.name)));

    // The `ssh ...` line printed for the user, as printed (plus batch mode and a command).
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("log in:"))
        .unwrap_or_else(|| panic!("no `log in:` line in {text}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(words[0], "ssh");
    let (destination, options) = words[1..].split_last().expect("ssh line has a destination");
    let out = Command::new("ssh")
        .args(["-F", "/dev/null", "-o", "BatchMode=yes"])
        .args(options)
        .args([*destination, "hostname"])
        .output()
        .expect("run ssh");
    assert_eq!(stdout(&out).trim(), "node2", "{}", show(&out));

    // Another shape under the same name is refused; the lab stays up.
    let out = lvslab(&["lab", "up", "--name", &lab.name, "--real-servers", "3"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        stderr(&out).contains("already up with 2 real servers"),
        "{}",
        show(&out)
    );
    let out = lab.lab("status");
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
}

#[test]
fn concurrent_ups_of_one_lab_build_it_once() {
    let _turn = turn();
    let name = unique_name();
    let _down = DownOnDrop(name.clone());
    let runs: Vec<_> = (0..2)
        .map(|_| {
            let name = name.clone();
            std::thread::spawn(move || lvslab(&["lab", "up", "--name", &name]))
        })
        .collect();
    let outs: Vec<_> = runs
        .into_iter()
        .map(|r| r.join().expect("thread"))
        .collect();
    for out in &outs {
        assert!(out.status.success(), "{}", show(out));
    }
    let already = outs
        .iter()
        .filter(|o| stdout(o).contains("is already up"))
        .count();
    assert_eq!(already, 1, "{}\n{}", show(&outs[0]), show(&outs[1]));
    let out = lvslab(&["lab", "status", "--name", &name]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
}

#[test]
fn down_status_and_exec_without_up() {
    let name = unique_name();
    let out = lvslab(&["lab", "down", "--name", &name]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(stdout(&out).contains("nothing to remove"), "{}", show(&out));
    let out = lvslab(&["lab", "status", "--name", &name]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(stdout(&out).contains("is not up"), "{}", show(&out));
    let out = lvslab(&["lab", "exec", "--name", &name, "node2", "--", "true"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(stderr(&out).contains("is not up"), "{}", show(&out));
    assert_eq!(traces_of(&name), Vec::<String>::new());
}

#[test]
fn killed_sshd_shows_in_status_and_the_next_up_rebuilds_the_lab() {
    let lab = TestLab::up(2);
    let out = lab.lab("status");
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));

    let sshd = node_sshd(&lab.name, "node2").expect("node2's sshd");
    kill("TERM", sshd);
    let deadline = Instant::now() + Duration::from_secs(5);
    let out = loop {
        let out = lab.lab("status");
        if out.status.code() != Some(0) || Instant::now() > deadline {
            break out;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let text = stdout(&out);
    let line = |node: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(&format!("{node} ")))
            .unwrap_or_else(|| panic!("no {node} in {text}"))
            .to_string()
    };
    assert!(line("node2").contains("DOWN"), "{text}");
    for node in ["node1", "node3", "node4", "client"] {
        assert!(line(node).contains("sshd answers"), "{text}");
    }

    let out = lab.lab("up");
    assert!(out.status.success(), "{}", show(&out));
    assert!(!stdout(&out).contains("already up"), "{}", show(&out));
    let out = lab.ssh("node2", "hostname");
    assert_eq!(stdout(&out).trim(), "node2", "{}", show(&out));
}

#[test]
fn stale_lab_from_a_killed_run_is_cleaned_by_the_next_up() {
    let lab = TestLab::up(2);
    // A crash: every node's unshare SIGKILLed, the state directory gone; namespaces, bridge and
    // veths stay behind.
    for node in ["node1", "node2", "node3", "node4", "client"] {
        let pid_file = lab.dir.join("nodes").join(node).join("unshare.pid");
        let pid = std::fs::read_to_string(&pid_file).expect("pid file");
        kill("KILL", pid.trim().parse().expect("a pid"));
    }
    std::fs::remove_dir_all(&lab.dir).expect("remove the state directory");
    let out = lab.lab("status");
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(stdout(&out).contains("leftovers"), "{}", show(&out));

    let out = lab.lab("up");
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        stdout(&out).contains("removed leftovers of an earlier run"),
        "{}",
        show(&out)
    );
    let out = lab.ssh("node2", "hostname");
    assert_eq!(stdout(&out).trim(), "node2", "{}", show(&out));
}

#[test]
fn down_finds_leftover_namespaces_links_and_processes_without_state_files() {
    let _turn = turn();
    let name = unique_name();
    let _down = DownOnDrop(name.clone());
    let ns = format!("lvs-{name}-node1");
    let ip = |args: &[&str]| {
        let out = Command::new("ip").args(args).output().expect("run ip");
        assert!(out.status.success(), "ip {args:?}: {}", show(&out));
    };
    ip(&["netns", "add", &ns]);
    ip(&["netns", "add", &format!("lvs-{name}-client")]);
    ip(&["link", "add", &format!("lvsb-{name}"), "type", "bridge"]);
    let veth = format!("lv-{name}-1");
    ip(&[
        "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &ns,
    ]);
    let mut sleeper = Command::new("ip")
        .args(["netns", "exec", &ns, "sleep", "600"])
        .spawn()
        .expect("start a process in the namespace");
    let deadline = Instant::now() + Duration::from_secs(5);
    while pids_in_namespace(&ns).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }

    let out = lvslab(&["lab", "down", "--name", &name]);
    assert!(out.status.success(), "{}", show(&out));
    let text = stdout(&out);
    assert!(text.contains("1 processes"), "{text}");
    assert!(text.contains("2 namespaces"), "{text}");
    assert!(text.contains("2 links"), "{text}");
    let status = sleeper.wait().expect("wait for the sleeper");
    assert!(
        !status.success(),
        "the process in the namespace was not killed"
    );
    assert_eq!(traces_of(&name), Vec::<String>::new());
}

#[test]
fn exec_passes_output_and_exit_code_through() {
    let lab = TestLab::up(1);
    let out = lab.exec("node2", &["sh", "-c", "echo out; echo err >&2; exit 7"]);
    assert_eq!(out.status.code(), Some(7), "{}", show(&out));
    assert_eq!(stdout(&out), "out\n");
    assert_eq!(stderr(&out), "err\n");
    let out = lab.exec("node4", &["hostname"]);
    assert_eq!(stdout(&out), "node4\n", "{}", show(&out));
    // One real server: node1, node2, node4 and the client, no node3.
    let out = lab.exec("node3", &["true"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(stderr(&out).contains("no node `node3`"), "{}", show(&out));
    // The node's network: its address on eth0, no default route (nothing leaves the lab).
    let out = lab.exec("node1", &["ip", "-4", "-o", "addr", "show", "dev", "eth0"]);
    assert!(stdout(&out).contains("198.18.0.11/24"), "{}", show(&out));
    let out = lab.exec("node1", &["ip", "route"]);
    assert!(!stdout(&out).contains("default"), "{}", show(&out));
}

#[test]
fn more_real_servers_come_after_the_second_director_in_the_inventory() {
    let lab = TestLab::up(4);
    assert_eq!(lab.address("node6"), "198.18.0.16");
    let inventory = std::fs::read_to_string(&lab.inventory).expect("inventory");
    assert!(
        inventory.contains("hosts: [node2, node3, node5, node6]"),
        "{inventory}"
    );
    assert!(inventory.contains("hosts: [node1, node4]"), "{inventory}");
    assert!(inventory.contains("vip: 198.18.0.100"), "{inventory}");
    let out = lab.ssh("node6", "hostname");
    assert_eq!(stdout(&out).trim(), "node6", "{}", show(&out));
    let out = lab.lab("status");
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(
        stdout(&out).matches("sshd answers").count(),
        7,
        "{}",
        show(&out)
    );
}

#[test]
fn a_second_lab_on_the_same_network_is_refused() {
    let lab = TestLab::up(2);
    let other = unique_name();
    let _down = DownOnDrop(other.clone());
    let out = lvslab(&["lab", "up", "--name", &other]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let text = stderr(&out);
    assert!(text.contains("198.18.0.0/24"), "{text}");
    assert!(text.contains(&format!("lab `{}`", lab.name)), "{text}");
    assert_eq!(traces_of(&other), Vec::<String>::new());
}

#[test]
fn lab_commands_without_root_say_so_in_one_sentence() {
    let name = unique_name();
    for args in [
        vec!["lab", "up", "--name", &name],
        vec!["lab", "status", "--name", &name],
        vec!["lab", "down", "--name", &name],
        vec!["lab", "exec", "--name", &name, "node1", "--", "true"],
    ] {
        let out = Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                common::LVSLAB,
            ])
            .args(&args)
            .output()
            .expect("run setpriv");
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", show(&out));
        let text = stderr(&out);
        assert_eq!(text.lines().count(), 1, "{args:?}: {text}");
        assert!(
            text.contains(&format!("`lvslab {}", args[..2].join(" ")))
                && text.contains("needs root"),
            "{args:?}: {text}"
        );
    }
}
