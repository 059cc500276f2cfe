//! Faults, bad input and secrets, end to end against the namespace lab (real sshd, real daemons):
//! each case asserts the exit code, the message a user sees, and the lab's state afterwards.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{LVSLAB, TestLab, lvslab, show, stderr, stdout};

fn lv(lab: &TestLab, args: &[&str]) -> std::process::Output {
    let inv = lab.inventory.to_str().unwrap();
    let mut all = vec!["-i", inv];
    all.extend_from_slice(args);
    lvslab(&all)
}

fn host_veth(lab: &TestLab, node: &str) -> String {
    lab.info["nodes"]
        .as_array()
        .and_then(|n| n.iter().find(|n| n["name"] == node))
        .and_then(|n| n["host_veth"].as_str())
        .unwrap_or_else(|| panic!("no host_veth for {node}: {}", lab.info))
        .to_string()
}

fn ip_link(veth: &str, state: &str) {
    let ok = Command::new("ip")
        .args(["link", "set", veth, state])
        .status()
        .unwrap()
        .success();
    assert!(ok, "ip link set {veth} {state}");
}

/// `lvslab run PLAYBOOK` in the background, its output captured.
fn spawn_run(lab: &TestLab, playbook: &str) -> std::process::Child {
    Command::new(LVSLAB)
        .args(["-i", lab.inventory.to_str().unwrap(), "run", playbook])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn write_playbook(lab: &TestLab, name: &str, text: &str) -> String {
    let path = lab.dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn a_host_down_is_unreachable_the_others_converge_and_a_rerun_fixes_it() {
    let lab = TestLab::up(2);
    let veth = host_veth(&lab, "node3");
    ip_link(&veth, "down");
    let started = Instant::now();
    let out = lv(&lab, &["--connect-timeout", "2", "up", "--no-verify"]);
    ip_link(&veth, "up");
    assert_eq!(out.status.code(), Some(4), "{}", show(&out));
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "bounded by the connect timeout"
    );
    let text = stdout(&out);
    assert!(
        text.contains("unreach   node3") && text.contains("no answer within 2 s"),
        "{text}"
    );
    assert!(
        text.contains("node3        ok=0   changed=0   failed=0   skipped=0    UNREACHABLE"),
        "recap names it: {text}"
    );
    assert!(text.contains("changed   node2"), "node2 converged: {text}");
    let page = lab.ssh("node2", "cat /var/www/html/index.html");
    assert!(stdout(&page).starts_with("node2 "), "{}", show(&page));

    let rerun = lv(&lab, &["up", "--no-verify"]);
    assert_eq!(rerun.status.code(), Some(0), "{}", show(&rerun));
    let text = stdout(&rerun);
    assert!(
        text.contains("changed   node3") && !text.contains("changed   node2"),
        "only node3 had work left: {text}"
    );

    // Every director unreachable: what the load balancer does is unknown, not "none", and no
    // mode is guessed.
    let directors = [host_veth(&lab, "node1"), host_veth(&lab, "node4")];
    for v in &directors {
        ip_link(v, "down");
    }
    let verify = lv(&lab, &["--connect-timeout", "2", "verify"]);
    let status = lv(&lab, &["--connect-timeout", "2", "status"]);
    for v in &directors {
        ip_link(v, "up");
    }
    assert_ne!(verify.status.code(), Some(0), "{}", show(&verify));
    let text = stdout(&verify);
    assert!(
        text.contains("no director answered (node1, node4: unreachable)")
            && !text.contains("verify (manual mode)")
            && !text.contains("http via VIP"),
        "{}",
        show(&verify)
    );
    let text = stdout(&status);
    assert!(
        text.contains("(not known for node1, node4: unreachable)")
            && !text.contains("held by no host"),
        "{}",
        show(&status)
    );
}

#[test]
fn a_hanging_command_times_out_a_lost_host_is_named_and_others_finish() {
    let lab = TestLab::up(2);
    let pb = write_playbook(
        &lab,
        "hang.yml",
        "- name: hang\n  hosts: real_servers\n  tasks:\n    - name: slow on node3\n      shell: \"sleep 30\"\n      when: inventory_hostname == 'node3'\n    - name: marker\n      copy: { dest: /root/marker, content: done }\n",
    );
    let started = Instant::now();
    let out = lv(&lab, &["--command-timeout", "2", "run", &pb]);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "the timeout ended it: {:?}",
        started.elapsed()
    );
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let text = stdout(&out);
    assert!(
        text.contains("failed    node3      slow on node3: command timed out after 2 s"),
        "{text}"
    );
    assert!(
        text.contains("changed   node2      marker"),
        "node2 went on: {text}"
    );
    let left = lab.ssh("node3", "pgrep -x sleep || echo none");
    assert_eq!(
        stdout(&left).trim(),
        "none",
        "the timed-out command was ended on the host"
    );

    // The host is lost mid-run: its SSH sessions are killed during a task.
    let pb = write_playbook(
        &lab,
        "lost.yml",
        "- name: lost\n  hosts: real_servers\n  tasks:\n    - name: a long step\n      shell: \"sleep 3\"\n    - name: after\n      copy: { dest: /root/after, content: done }\n",
    );
    let child = spawn_run(&lab, &pb);
    std::thread::sleep(Duration::from_millis(1200));
    lab.exec("node3", &["pkill", "-f", "sshd: root@"]);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", show(&out));
    let text = stdout(&out);
    assert!(
        text.contains("unreach   node3") && text.contains("a long step"),
        "names the task: {text}"
    );
    assert!(text.contains("changed   node2      after"), "{text}");
    let rerun = lv(&lab, &["run", &pb]);
    assert_eq!(
        rerun.status.code(),
        Some(0),
        "a rerun converges: {}",
        show(&rerun)
    );
}

#[test]
fn ctrl_c_prints_the_recap_and_exits_130_and_a_second_run_is_refused() {
    let lab = TestLab::up(2);
    let pb = write_playbook(
        &lab,
        "slow.yml",
        "- name: slow\n  hosts: real_servers\n  tasks:\n    - name: slow\n      shell: \"sleep 4\"\n",
    );
    let child = spawn_run(&lab, &pb);
    std::thread::sleep(Duration::from_millis(800));
    let second = lv(&lab, &["run", &pb]);
    assert_eq!(second.status.code(), Some(1), "{}", show(&second));
    assert!(
        stderr(&second).contains("another lvslab run (pid"),
        "{}",
        show(&second)
    );

    let started = Instant::now();
    common::kill("INT", child.id());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", show(&out));
    assert!(started.elapsed() < Duration::from_secs(3), "ends at once");
    assert!(stdout(&out).contains("RECAP"), "{}", show(&out));
}

#[test]
fn host_keys_unknown_and_changed_are_refused() {
    let lab = TestLab::up(2);
    let known = lab.known_hosts.clone();
    let original = std::fs::read_to_string(&known).unwrap();

    // Unknown: not in known_hosts.
    let without: String = original
        .lines()
        .filter(|l| !l.starts_with("198.18.0.12 "))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&known, &without).unwrap();
    let out = lv(&lab, &["-l", "node2", "exec", "--", "touch /root/ran"]);
    assert_eq!(out.status.code(), Some(4), "{}", show(&out));
    let text = stdout(&out);
    assert!(
        text.contains("SHA256:") && text.contains("--accept-new-host-keys"),
        "fingerprint and how to trust: {text}"
    );
    let out = lv(&lab, &["--accept-new-host-keys", "-l", "node2", "ping"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(
        std::fs::read_to_string(&known)
            .unwrap()
            .contains("198.18.0.12"),
        "the key was recorded"
    );

    // Changed: node2's line holds node3's key. Refused, naming file and line; nothing runs.
    let node3_key = original
        .lines()
        .find(|l| l.starts_with("198.18.0.13 "))
        .unwrap()
        .split_once(' ')
        .unwrap()
        .1
        .to_string();
    let changed: String = original
        .lines()
        .map(|l| {
            if l.starts_with("198.18.0.12 ") {
                format!("198.18.0.12 {node3_key}\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    std::fs::write(&known, &changed).unwrap();
    let line = changed
        .lines()
        .position(|l| l.starts_with("198.18.0.12 "))
        .unwrap()
        + 1;
    let out = lv(
        &lab,
        &[
            "--accept-new-host-keys",
            "-l",
            "node2",
            "exec",
            "--",
            "touch /root/ran",
        ],
    );
    assert_eq!(out.status.code(), Some(4), "{}", show(&out));
    let text = stdout(&out);
    assert!(
        text.contains("HOST KEY CHANGED")
            && text.contains(&format!("{} line {line}", known.display())),
        "{text}"
    );
    let ran = lab.ssh("node3", "true"); // node3 still fine
    assert!(ran.status.success());
    std::fs::write(&known, &original).unwrap();
    let ran = lab.ssh("node2", "ls /root/ran 2>/dev/null || echo no");
    assert_eq!(
        stdout(&ran).trim(),
        "no",
        "no command ran on a host whose key did not match"
    );
}

#[test]
fn secrets_never_show_and_an_invalid_keepalived_conf_is_never_installed() {
    let lab = TestLab::up(2);
    let inventory = std::fs::read_to_string(&lab.inventory).unwrap();
    let secret = inventory
        .lines()
        .find_map(|l| l.trim().strip_prefix("auth_pass: "))
        .unwrap()
        .trim_matches('"')
        .to_string();
    let first = lv(&lab, &["-v", "--diff", "up", "--no-verify"]);
    assert_eq!(first.status.code(), Some(0), "{}", show(&first));
    let json = lv(&lab, &["--json", "--diff", "--check", "up"]);
    for out in [&first, &json] {
        assert!(
            !stdout(out).contains(&secret) && !stderr(out).contains(&secret),
            "secret leaked: {}",
            show(out)
        );
    }
    assert!(
        stdout(&first).contains("auth_pass ********"),
        "masked in the diff: {}",
        stdout(&first)
    );
    let on_host = lab.ssh("node1", "cat /etc/keepalived/keepalived.conf");
    assert!(
        stdout(&on_host).contains(&secret),
        "the host still gets the real value"
    );

    // A template that keepalived -t refuses: not installed, the old file and daemon stay.
    let dir = lab.dir.join("broken");
    std::fs::create_dir_all(dir.join("templates")).unwrap();
    let good = include_str!("../templates/keepalived.conf.j2");
    std::fs::write(
        dir.join("templates/keepalived.conf.j2"),
        good.replace(
            "    advert_int {{",
            "    bogus_keyword 1\n    advert_int {{",
        ),
    )
    .unwrap();
    let before = stdout(&lab.ssh(
        "node1",
        "md5sum /etc/keepalived/keepalived.conf; pgrep -x keepalived | head -1",
    ));
    let out = lv(
        &lab,
        &["--playbooks", dir.to_str().unwrap(), "up", "--no-verify"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let text = stdout(&out);
    assert!(
        text.contains("failed validation; the old file is unchanged")
            && text.contains("Unknown keyword 'bogus_keyword'"),
        "{text}"
    );
    let after = stdout(&lab.ssh("node1", "md5sum /etc/keepalived/keepalived.conf; pgrep -x keepalived | head -1; ls -a /etc/keepalived | grep -c lvslab."));
    assert!(
        after.starts_with(&before),
        "same file, same daemon: {before} / {after}"
    );
    assert!(
        after.trim_end().ends_with('0'),
        "no temp file left: {after}"
    );
}

#[test]
fn odd_names_are_quoted_or_refused() {
    let lab = TestLab::up(2);
    let pb = write_playbook(
        &lab,
        "odd.yml",
        "- name: odd\n  hosts: node2\n  tasks:\n    - name: a path with spaces and $(metacharacters)\n      copy: { dest: \"/root/a b/$(touch /root/pwned); x'y\", content: \"ok\\n\" }\n",
    );
    let out = lv(&lab, &["run", &pb]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let check = lab.ssh(
        "node2",
        "cat \"/root/a b/\\$(touch /root/pwned); x'y\"; ls /root/pwned 2>/dev/null || echo safe",
    );
    assert_eq!(stdout(&check), "ok\nsafe\n", "{}", show(&check));

    let inv = std::fs::read_to_string(&lab.inventory).unwrap().replacen(
        "interface: eth0",
        "interface: \"eth0; reboot\"",
        1,
    );
    let bad = lab.dir.join("bad-inventory.yml");
    std::fs::write(&bad, inv).unwrap();
    let out = lvslab(&["-i", bad.to_str().unwrap(), "up"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        stderr(&out).contains("bad-inventory.yml:")
            && stderr(&out).contains("not an interface name"),
        "{}",
        show(&out)
    );
}
