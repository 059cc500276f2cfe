//! Trust, end to end on the namespace lab (real sshd, sudo, keepalived): host keys as OpenSSH
//! knows them, check mode that never changes a host, secrets that never show, files written
//! privately, Ctrl-C that ends every command with 130, commands ended as root, run locks per
//! host.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{Edit, LVSLAB, TestLab, lvslab, show, stderr, stdout};

fn lv(inventory: &str, args: &[&str]) -> Output {
    let mut all = vec!["-i", inventory];
    all.extend_from_slice(args);
    lvslab(&all)
}

fn all_output(out: &Output) -> String {
    stdout(out) + &stderr(out)
}

/// A copy of the lab's inventory, with `edit` applied to its text.
fn inventory_copy(lab: &TestLab, name: &str, edit: impl Fn(String) -> String) -> String {
    let text = std::fs::read_to_string(&lab.inventory).unwrap();
    let path = lab.dir.join(name);
    std::fs::write(&path, edit(text)).unwrap();
    path.to_str().unwrap().to_string()
}

/// The inventory with its `known_hosts:` pointing at `file`.
fn with_known_hosts(lab: &TestLab, name: &str, file: &Path) -> String {
    inventory_copy(lab, name, |t| {
        t.edit(
            "known_hosts: known_hosts",
            &format!("known_hosts: {}", file.display()),
        )
    })
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

fn spawn(args: &[&str]) -> std::process::Child {
    Command::new(LVSLAB)
        .args(args)
        .env_remove("LVSLAB_INVENTORY")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Sends SIGINT once `ready` says so (or after `fallback`), and returns the output, the exit
/// code and how long the process took after the signal.
fn interrupt(child: std::process::Child, after: Duration) -> (Output, Duration) {
    std::thread::sleep(after);
    let sent = Instant::now();
    common::kill("INT", child.id());
    let out = child.wait_with_output().unwrap();
    (out, sent.elapsed())
}

fn node_key(lab: &TestLab, address: &str) -> String {
    std::fs::read_to_string(&lab.known_hosts)
        .unwrap()
        .lines()
        .find(|l| l.starts_with(&format!("{address} ")))
        .map(|l| {
            l.split_whitespace()
                .skip(1)
                .take(2)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap()
}

fn keygen(path: &Path, kind: &str) -> String {
    let _ = std::fs::remove_file(path);
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", kind, "-N", "", "-f"])
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    let public = std::fs::read_to_string(path.with_extension("pub")).unwrap();
    public
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn host_keys_are_checked_as_openssh_checks_them() {
    let lab = TestLab::up(2);
    let node2 = node_key(&lab, "198.18.0.12");
    let ecdsa = keygen(&lab.dir.join("other_ecdsa"), "ecdsa");

    // node2 known only with a key of another type: refused, even with --accept-new-host-keys,
    // naming the right line (comments and blank lines count), and the file is left as it was.
    let other_type = lab.dir.join("kh-other-type");
    let text = format!("# a comment\n\n198.18.0.12 {ecdsa}\n");
    write(&other_type, &text);
    let inv = with_known_hosts(&lab, "inv-other-type.yml", &other_type);
    let out = lv(&inv, &["--accept-new-host-keys", "-l", "node2", "ping"]);
    assert_eq!(out.status.code(), Some(4), "{}", show(&out));
    let said = all_output(&out);
    assert!(
        said.contains("HOST KEY CHANGED for 198.18.0.12")
            && said.contains(&format!("{} line 3", other_type.display()))
            && said.contains("a ecdsa-sha2-nistp256 key; the host offers a ssh-ed25519 key"),
        "{said}"
    );
    assert_eq!(
        std::fs::read_to_string(&other_type).unwrap(),
        text,
        "nothing recorded"
    );

    // Hashed names (ssh-keygen -H) are known hosts.
    let hashed = lab.dir.join("kh-hashed");
    std::fs::copy(&lab.known_hosts, &hashed).unwrap();
    let out = Command::new("ssh-keygen")
        .arg("-H")
        .arg("-f")
        .arg(&hashed)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        !std::fs::read_to_string(&hashed)
            .unwrap()
            .contains("198.18.0.12")
    );
    let inv = with_known_hosts(&lab, "inv-hashed.yml", &hashed);
    let out = lv(&inv, &["ping"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));

    // Trust on first use into a hashed file keeps it hashed, and OpenSSH finds the entry.
    let out = Command::new("ssh-keygen")
        .args(["-R", "198.18.0.12", "-f"])
        .arg(&hashed)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    let out = lv(&inv, &["-l", "node2", "ping"]);
    assert_eq!(out.status.code(), Some(4), "unknown again: {}", show(&out));
    let out = lv(&inv, &["--accept-new-host-keys", "-l", "node2", "ping"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let text = std::fs::read_to_string(&hashed).unwrap();
    assert!(!text.contains("198.18.0.12"), "still hashed: {text}");
    let found = Command::new("ssh-keygen")
        .args(["-F", "198.18.0.12", "-f"])
        .arg(&hashed)
        .output()
        .unwrap();
    assert!(stdout(&found).contains(&node2), "{}", show(&found));

    // OpenSSH forms the name it looks up, hashes and records from the one it is given: a name
    // lowercased, an address literal in its canonical form; so does lvslab. node2 reached as
    // 0XC6.0X12.0.0XC (the resolver's hex spelling of its address: upper case, and no
    // /etc/hosts line needed) is 198.18.0.12 to both. First what ssh itself records, hashed.
    let spelled = lab.dir.join("kh-spelled");
    write(&spelled, "");
    let out = Command::new("ssh")
        .args(["-o", "StrictHostKeyChecking=accept-new"])
        .args(["-o", "HashKnownHosts=yes"])
        .args(common::ssh_options(&lab.identity_file, &spelled))
        .args(["root@0XC6.0X12.0.0XC", "true"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    let by_ssh = std::fs::read_to_string(&spelled).unwrap();
    assert!(by_ssh.starts_with("|1|"), "{by_ssh}");
    let found = Command::new("ssh-keygen")
        .args(["-F", "198.18.0.12", "-f"])
        .arg(&spelled)
        .output()
        .unwrap();
    assert!(stdout(&found).contains(&node2), "{}", show(&found));
    let spelled_inventory = |name: &str, file: &Path| {
        inventory_copy(&lab, name, |t| {
            t.edit(
                "known_hosts: known_hosts",
                &format!("known_hosts: {}", file.display()),
            )
            .edit(
                "    address: 198.18.0.12\n",
                "    address: 198.18.0.12\n    connection: { host: 0XC6.0X12.0.0XC }\n",
            )
        })
    };
    let inv = spelled_inventory("inv-spelled.yml", &spelled);
    let out = lv(&inv, &["--accept-new-host-keys", "-l", "node2", "ping"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(
        std::fs::read_to_string(&spelled).unwrap(),
        by_ssh,
        "known: nothing recorded"
    );
    // Another key recorded for 198.18.0.12, hashed: a changed key, refused even with
    // --accept-new-host-keys, and nothing recorded under the spelling as written.
    let changed = lab.dir.join("kh-spelled-changed");
    write(&changed, &format!("198.18.0.12 {ecdsa}\n"));
    let out = Command::new("ssh-keygen")
        .arg("-H")
        .arg("-f")
        .arg(&changed)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    let text = std::fs::read_to_string(&changed).unwrap();
    assert!(text.starts_with("|1|"), "{text}");
    let inv = spelled_inventory("inv-spelled-changed.yml", &changed);
    let out = lv(&inv, &["--accept-new-host-keys", "-l", "node2", "ping"]);
    assert_eq!(out.status.code(), Some(4), "{}", show(&out));
    assert!(
        all_output(&out).contains("HOST KEY CHANGED for 0XC6.0X12.0.0XC"),
        "{}",
        show(&out)
    );
    assert_eq!(
        std::fs::read_to_string(&changed).unwrap(),
        text,
        "nothing recorded"
    );

    // A revoked key is refused, though the host is listed with it.
    let revoked = lab.dir.join("kh-revoked");
    write(
        &revoked,
        &format!(
            "{}@revoked * {node2}\n",
            std::fs::read_to_string(&lab.known_hosts).unwrap()
        ),
    );
    let inv = with_known_hosts(&lab, "inv-revoked.yml", &revoked);
    let out = lv(&inv, &["--accept-new-host-keys", "-l", "node2", "ping"]);
    assert_eq!(out.status.code(), Some(4), "{}", show(&out));
    assert!(
        all_output(&out).contains("marked @revoked"),
        "{}",
        show(&out)
    );

    // A @cert-authority line is not a host key.
    let ca = lab.dir.join("kh-ca");
    write(&ca, &format!("@cert-authority 198.18.0.* {node2}\n"));
    let inv = with_known_hosts(&lab, "inv-ca.yml", &ca);
    let out = lv(&inv, &["--accept-new-host-keys", "-l", "node2", "ping"]);
    assert_eq!(out.status.code(), Some(4), "{}", show(&out));
    assert!(
        all_output(&out).contains("@cert-authority line, which lvslab does not support"),
        "{}",
        show(&out)
    );
}

/// What a node holds that a playbook could change: the files it changed (its overlay's upper
/// layers on this machine, so nothing else writing to the machine's /etc or /var shows), its
/// /tmp, addresses (without the kernel's own `tentative` flag, which IPv6 duplicate address
/// detection drops a second after a link comes up), kernel settings and daemons.
fn snapshot(lab: &TestLab, node: &str) -> String {
    let upper = lab.dir.join("nodes").join(node).join("upper");
    let files = Command::new("find")
        .arg(&upper)
        .args([
            "-path",
            "*/var/log",
            "-prune",
            "-o",
            "-printf",
            "%P %m %U %s %T@\\n",
        ])
        .output()
        .unwrap();
    let mut listing: Vec<String> = stdout(&files).lines().map(str::to_string).collect();
    listing.sort();
    let out = lab.ssh(
        node,
        "find /tmp -printf '%p %m %U %s %T@\\n' | sort; ip -o addr | sed 's/ tentative / /'; \
         for f in /proc/sys/net/ipv4/conf/*/arp_* /proc/sys/net/ipv4/ip_forward; do echo \"$f $(cat $f)\"; done; \
         pgrep -l -x 'nginx|keepalived|sleep' | awk '{print $2}' | sort",
    );
    assert!(out.status.success(), "{}", show(&out));
    listing.join("\n") + "\n" + &stdout(&out)
}

#[test]
fn check_mode_changes_nothing_whatever_a_task_says() {
    let lab = TestLab::up(2);
    let templates = lab.dir.join("templates");
    std::fs::create_dir_all(&templates).unwrap();
    write(
        &templates.join("t.j2"),
        "made by {{ inventory_hostname }}\n",
    );
    // Every module, each with something to change, several told they change nothing.
    let pb = lab.dir.join("every-module.yml");
    write(
        &pb,
        "- name: every module\n  hosts: node2\n  tasks:\n\
         \x20   - { name: sysctl, sysctl: { key: net.ipv4.conf.all.arp_ignore, value: 1 }, changed_when: false }\n\
         \x20   - { name: address, address: { address: 198.18.0.77/32, dev: lo }, failed_when: false }\n\
         \x20   - { name: file, file: { path: /var/lib/check-dir, state: directory }, changed_when: false }\n\
         \x20   - { name: template, template: { src: t.j2, dest: /etc/check-t.conf } }\n\
         \x20   - { name: copy, copy: { dest: /etc/check-c.conf, content: \"x\\n\" }, changed_when: false }\n\
         \x20   - { name: package, package: { name: lvslab-no-such-package } }\n\
         \x20   - { name: service, service: { name: nginx, state: started }, changed_when: false }\n\
         \x20   - { name: command, command: \"touch /tmp/check-command\", changed_when: false }\n\
         \x20   - { name: shell, shell: \"touch /tmp/check-shell\", changed_when: false, failed_when: false }\n\
         \x20   - { name: guarded, shell: { cmd: \"touch /tmp/check-guarded\", unless: \"touch /tmp/check-unless; false\" } }\n\
         \x20   - { name: wait_for, wait_for: { command: \"touch /tmp/check-wait\", timeout: 1 } }\n\
         \x20   - { name: process, process: { name: nginx }, register: ps }\n\
         \x20   - { name: assert, assert: { that: [\"not ps.running\"] } }\n\
         \x20   - { name: ipvs, ipvs: { state: cleared }, when: \"facts.ipvs != 'missing'\" }\n\
         \x20   - { name: handler please, copy: { dest: /etc/check-h.conf, content: \"h\\n\" }, notify: restart }\n\
         \x20 handlers:\n\
         \x20   - { name: restart, service: { name: nginx, state: restarted } }\n",
    );
    let before = snapshot(&lab, "node2");
    let inv = lab.inventory.to_str().unwrap();
    let out = lv(
        inv,
        &["--json", "--check", "--diff", "run", pb.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let after = snapshot(&lab, "node2");
    let gone: Vec<&str> = before
        .lines()
        .filter(|l| !after.lines().any(|a| a == *l))
        .collect();
    let new: Vec<&str> = after
        .lines()
        .filter(|l| !before.lines().any(|b| b == *l))
        .collect();
    assert!(
        gone.is_empty() && new.is_empty(),
        "--check changed the host:\nbefore only: {gone:#?}\nafter only: {new:#?}\n{}",
        show(&out)
    );
    let text = stdout(&out);
    for name in ["command", "shell", "guarded", "wait_for"] {
        assert!(
            text.contains(&format!(r#""task":"{name}","status":"skipped""#)),
            "{name} is skipped in check mode: {text}"
        );
    }
    for name in ["template", "handler please", "restart", "address"] {
        assert!(
            text.contains(&format!(r#""task":"{name}","status":"changed""#)),
            "{name} says what it would change: {text}"
        );
    }
}

#[test]
fn secrets_never_show_and_files_are_written_privately() {
    let lab = TestLab::up(2);
    fn with_pass(pass: &'static str) -> impl Fn(String) -> String {
        move |t: String| {
            let start = t.find("auth_pass: \"").unwrap() + "auth_pass: \"".len();
            let end = start + t[start..].find('"').unwrap();
            format!("{}{pass}{}", &t[..start], &t[end..])
                .edit("vars:\n", "secrets:\n  db_token: tok3nXYZ9\nvars:\n")
        }
    }
    let old = inventory_copy(&lab, "inv-old.yml", with_pass("Old9pass"));
    let new = inventory_copy(&lab, "inv-new.yml", with_pass("New7pass"));
    let out = lv(&old, &["up", "--no-verify"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));

    // The old file on node1 was readable by all; its backup must not be more readable than
    // the new file (0640), and a symlink planted at the backup's path is replaced, not followed.
    let planted = lab.ssh(
        "node1",
        "chmod 644 /etc/keepalived/keepalived.conf && echo victim > /tmp/victim && ln -sf /tmp/victim /etc/keepalived/keepalived.conf.lvslab-prev",
    );
    assert!(planted.status.success(), "{}", show(&planted));

    // --diff of the password change: neither password shows, also not in --json.
    for extra in [&[][..], &["--json"][..]] {
        let mut args = extra.to_vec();
        args.extend(["--check", "--diff", "up", "--no-verify"]);
        let out = lv(&new, &args);
        let said = all_output(&out);
        assert_eq!(out.status.code(), Some(0), "{said}");
        assert!(
            !said.contains("Old9pass") && !said.contains("New7pass"),
            "{said}"
        );
        assert!(
            said.contains("auth_pass ********"),
            "the change is shown, masked: {said}"
        );
    }
    let out = lv(&new, &["up", "--no-verify"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let files = lab.ssh(
        "node1",
        "stat -c '%a %F' /etc/keepalived/keepalived.conf /etc/keepalived/keepalived.conf.lvslab-prev; cat /tmp/victim; ls -a /etc/keepalived",
    );
    let text = stdout(&files);
    assert!(
        text.starts_with("640 regular file\n640 regular file\nvictim\n"),
        "{}",
        show(&files)
    );
    assert!(!text.contains(".lvslab."), "no temp files left: {text}");

    // An existing file keeps its mode and owner when the task sets neither.
    let pb = lab.dir.join("keep.yml");
    write(
        &pb,
        "- name: keep\n  hosts: node2\n  tasks:\n    - copy: { dest: /etc/kept.conf, content: \"new\\n\" }\n",
    );
    lab.ssh("node2", "echo old > /etc/kept.conf && chmod 600 /etc/kept.conf && chown nobody:nogroup /etc/kept.conf");
    let out = lv(&new, &["run", pb.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let kept = lab.ssh(
        "node2",
        "stat -c '%a %U' /etc/kept.conf; cat /etc/kept.conf",
    );
    assert_eq!(stdout(&kept), "600 nobody\nnew\n", "{}", show(&kept));

    // A command that times out is quoted in the error, masked.
    let pb = lab.dir.join("slow.yml");
    write(
        &pb,
        "- name: slow\n  hosts: node2\n  tasks:\n    - shell: \"sleep 5; echo {{ db_token }}\"\n",
    );
    let out = lv(
        &new,
        &["--command-timeout", "1", "run", pb.to_str().unwrap()],
    );
    let said = all_output(&out);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(
        said.contains("timed out") && said.contains("echo ********"),
        "{said}"
    );
    assert!(!said.contains("tok3nXYZ9"), "{said}");

    // An error in the inventory quotes its lines: the secrets there are masked.
    let bad = inventory_copy(&lab, "inv-bad.yml", |t| {
        with_pass("New7pass")(t).edit("advert_int: 1", "advert_int: 0")
    });
    let out = lv(&bad, &["validate"]);
    let said = all_output(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("advert_int 0 is outside 1-255"), "{said}");
    assert!(
        !said.contains("New7pass") && !said.contains("tok3nXYZ9"),
        "{said}"
    );
}

/// Every process's arguments on `node`, read every 100 ms for `how_long` (what anyone on the
/// host can see while lvslab works there).
fn process_lists(lab: &TestLab, node: &str, how_long: Duration) -> String {
    let mut seen = String::new();
    let deadline = Instant::now() + how_long;
    while Instant::now() < deadline {
        let ps = lab.exec(
            node,
            &[
                "sh",
                "-c",
                "cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' ' '",
            ],
        );
        seen.push_str(&stdout(&ps));
        std::thread::sleep(Duration::from_millis(100));
    }
    seen
}

/// A non-root user on node2 who may become root with sudo (no password), or may not.
fn user_inventory(lab: &TestLab, user: &str, sudo: bool) -> String {
    let mut setup = format!(
        "useradd -m -d /var/lib/{user} -p '*' -s /bin/sh {user} && mkdir -p /var/lib/{user}/.ssh && \
         cp /root/.ssh/authorized_keys /var/lib/{user}/.ssh/ && chown -R {user}: /var/lib/{user}/.ssh && chmod 700 /var/lib/{user}/.ssh"
    );
    if sudo {
        setup.push_str(&format!(
            " && echo '{user} ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/{user} && chmod 440 /etc/sudoers.d/{user}"
        ));
    }
    let out = lab.ssh("node2", &setup);
    assert!(out.status.success(), "{}", show(&out));
    inventory_copy(lab, &format!("inv-{user}.yml"), |t| {
        t.edit(
            "  user: root\n",
            &format!("  user: {user}\n  become: true\n"),
        )
        .edit("vars:\n", "secrets:\n  db_token: tok3nXYZ9\nvars:\n")
    })
}

#[test]
fn become_runs_and_ends_commands_as_root_and_keeps_secrets_out_of_argv() {
    let lab = TestLab::up(2);
    let inv = user_inventory(&lab, "labuser", true);

    // A secret in a command run as root shows in no process's arguments on the host.
    let pb = lab.dir.join("secret.yml");
    write(
        &pb,
        "- name: s\n  hosts: node2\n  tasks:\n    - shell: \"sleep 3; : {{ db_token }}\"\n",
    );
    let child = spawn(&["-i", &inv, "run", pb.to_str().unwrap()]);
    let seen = process_lists(&lab, "node2", Duration::from_secs(3));
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(
        seen.contains("sleep 3"),
        "the command was seen running: {seen}"
    );
    assert!(
        !seen.contains("tok3nXYZ9"),
        "the secret was in a process's arguments: {seen}"
    );

    // A command that times out, or is interrupted, is ended as root with all it started.
    let pb = lab.dir.join("long.yml");
    write(
        &pb,
        "- name: l\n  hosts: node2\n  tasks:\n    - shell: \"sleep 301 & sleep 300\"\n",
    );
    let out = lv(
        &inv,
        &["--command-timeout", "2", "run", pb.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(all_output(&out).contains("timed out"), "{}", show(&out));
    std::thread::sleep(Duration::from_millis(500));
    let left = lab.exec("node2", &["sh", "-c", "pgrep -a -f 'sleep 30[01]' || true"]);
    assert_eq!(stdout(&left), "", "left running as root after the timeout");
    let child = spawn(&["-i", &inv, "run", pb.to_str().unwrap()]);
    let (out, took) = interrupt(child, Duration::from_millis(1500));
    assert_eq!(out.status.code(), Some(130), "{}", show(&out));
    assert!(took < Duration::from_secs(3), "ended promptly: {took:?}");
    std::thread::sleep(Duration::from_millis(500));
    let left = lab.exec("node2", &["sh", "-c", "pgrep -a -f 'sleep 30[01]' || true"]);
    assert_eq!(stdout(&left), "", "left running as root after Ctrl-C");

    // Facts that cannot be read (sudo wants a password) are an error naming the host.
    let inv = user_inventory(&lab, "nosudo", false);
    let out = lv(&inv, &["-l", "node2", "ping"]);
    assert_eq!(out.status.code(), Some(4), "{}", show(&out));
    let said = all_output(&out);
    assert!(
        said.contains("cannot read the facts of node2") && said.contains("password"),
        "{said}"
    );
}

/// A file write is a command like any other: its script, `validate:` line included, and its
/// content reach the host on a shell's stdin (no process's arguments show a secret), and a
/// write that times out or is interrupted is ended on the host, as root, before lvslab lets go
/// of the host: the file stays as it was, no temporary file and no process is left, and nothing
/// lands later. As root, and as a user who becomes root with sudo.
#[test]
fn file_writes_keep_secrets_out_of_argv_and_end_on_the_host_when_given_up() {
    let lab = TestLab::up(2);
    let root = inventory_copy(&lab, "inv-root.yml", |t| {
        t.edit("vars:\n", "secrets:\n  db_token: tok3nXYZ9\nvars:\n")
    });
    let user = user_inventory(&lab, "writer", true);
    let slow = |name: &str, secs: u32| {
        let pb = lab.dir.join(name);
        write(
            &pb,
            &format!(
                "- name: w\n  hosts: node2\n  tasks:\n    - copy:\n        dest: /etc/slow.conf\n        content: \"token {{{{ db_token }}}}\\n\"\n        validate: \"sleep {secs}; : {{{{ db_token }}}} && grep -q tok %s\"\n"
            ),
        );
        pb.to_str().unwrap().to_string()
    };
    let host_state = || {
        stdout(&lab.ssh(
            "node2",
            "cat /etc/slow.conf; ls -a /etc | grep -c '^\\.lvslab\\.' ; pgrep -c -f 'sleep [0-9]' || true",
        ))
    };
    for inv in [&root, &user] {
        // The process list, read on the host while the write validates: no secret in it.
        lab.ssh("node2", "rm -f /etc/slow.conf /etc/slow.conf.lvslab-prev");
        let pb = slow("quick.yml", 2);
        let child = spawn(&["-i", inv, "run", &pb]);
        let seen = process_lists(&lab, "node2", Duration::from_secs(3));
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{inv}: {}", show(&out));
        assert!(
            seen.contains("sleep 2"),
            "{inv}: the write was seen validating: {seen}"
        );
        assert!(
            !seen.contains("tok3nXYZ9"),
            "{inv}: a secret in the process list: {seen}"
        );
        assert_eq!(host_state(), "token tok3nXYZ9\n0\n0\n", "{inv}");

        // Given up by a timeout, then by Ctrl-C: ended on the host before lvslab exits.
        let pb = slow("slow.yml", 4);
        lab.ssh("node2", "echo old > /etc/slow.conf");
        let out = lv(inv, &["--command-timeout", "1", "run", &pb]);
        assert_eq!(out.status.code(), Some(2), "{inv}: {}", show(&out));
        assert!(all_output(&out).contains("timed out"), "{}", show(&out));
        assert_eq!(
            host_state(),
            "old\n0\n0\n",
            "{inv}: right after the timeout"
        );
        let child = spawn(&["-i", inv, "run", &pb]);
        let (out, took) = interrupt(child, Duration::from_millis(1500));
        assert_eq!(out.status.code(), Some(130), "{inv}: {}", show(&out));
        assert!(took < Duration::from_secs(4), "{inv}: ended in {took:?}");
        assert_eq!(host_state(), "old\n0\n0\n", "{inv}: right after Ctrl-C");
        std::thread::sleep(Duration::from_secs(4));
        assert_eq!(host_state(), "old\n0\n0\n", "{inv}: nothing landed later");
    }
}

#[test]
fn ctrl_c_ends_every_command_with_130() {
    let lab = TestLab::up(2);
    let inv = lab.inventory.to_str().unwrap().to_string();
    let out = lv(&inv, &["up", "--no-verify"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let cases: [(&[&str], u64); 4] = [
        (&["verify"], 800),
        (&["status"], 150),
        (&["exec", "-l", "node2", "--", "sleep 30"], 800),
        (&["down"], 300),
    ];
    for (args, after) in cases {
        let mut all = vec!["-i", inv.as_str()];
        all.extend_from_slice(args);
        let started = Instant::now();
        let child = spawn(&all);
        let (out, took) = interrupt(child, Duration::from_millis(after));
        // A command may have finished before the signal came: that is not a failure to stop.
        if started.elapsed() > Duration::from_millis(after) && out.status.code() != Some(130) {
            assert!(
                matches!(out.status.code(), Some(0 | 2)),
                "{args:?}: {}",
                show(&out)
            );
            continue;
        }
        assert_eq!(out.status.code(), Some(130), "{args:?}: {}", show(&out));
        assert!(
            took < Duration::from_secs(3),
            "{args:?} took {took:?} after Ctrl-C"
        );
    }
    let left = lab.exec("node2", &["sh", "-c", "pgrep -a -x sleep || true"]);
    assert_eq!(stdout(&left), "", "exec's command was ended on the host");

    // A drill interrupted after it stopped keepalived starts it again before it exits. (An
    // interrupted `down` may have left keepalived shutting down: let it finish first.)
    std::thread::sleep(Duration::from_secs(3));
    let out = lv(&inv, &["up", "--no-verify"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let elected = lab.ssh(
        "node1",
        "for i in $(seq 50); do ip -o addr show dev eth0 | grep -q 198.18.0.100 && exit 0; sleep 0.2; done; exit 1",
    );
    assert!(
        elected.status.success(),
        "node1 holds the VIP: {}\n{}\n{}",
        show(&out),
        show(&lv(&inv, &["status"])),
        show(&lab.ssh(
            "node1",
            "ps -ef; cat /etc/keepalived/keepalived.conf; ip -o addr"
        ))
    );
    let svg = lab.dir.join("interrupted.svg");
    let child = spawn(&[
        "-i",
        &inv,
        "drill",
        "failover",
        "--svg",
        svg.to_str().unwrap(),
    ]);
    // Interrupted once keepalived is stopped on node1.
    let stopped = lab.ssh(
        "node1",
        "for i in $(seq 100); do pgrep -x keepalived >/dev/null || exit 0; sleep 0.1; done; exit 1",
    );
    assert!(stopped.status.success(), "{}", show(&stopped));
    let (out, _) = interrupt(child, Duration::from_millis(300));
    assert_eq!(out.status.code(), Some(130), "{}", show(&out));
    assert!(
        all_output(&out).contains("keepalived started again on node1"),
        "{}",
        show(&out)
    );
    // The picture of the interrupted run is written too, and says so.
    let picture = std::fs::read_to_string(&svg).unwrap_or_default();
    assert!(picture.contains("interrupted"), "{}", show(&out));
    let running = lab.ssh("node1", "pgrep -x keepalived >/dev/null && echo running");
    assert_eq!(stdout(&running).trim(), "running", "{}", show(&out));
}

#[test]
fn two_inventories_naming_one_host_do_not_run_at_once() {
    let lab = TestLab::up(2);
    let a = lab.inventory.to_str().unwrap().to_string();
    let b = inventory_copy(&lab, "other.yml", |t| {
        t.edit("node2:", "web-a:").edit("[node2,", "[web-a,")
    });
    let child = spawn(&["-i", &a, "exec", "-l", "node2", "--", "sleep 4"]);
    std::thread::sleep(Duration::from_millis(800));
    let out = lv(&b, &["-l", "web-a", "ping"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        stderr(&out).contains("is working on web-a (198.18.0.12:22)") && stderr(&out).contains(&a),
        "{}",
        show(&out)
    );
    // The same host under another spelling of its address (the resolver reads 198.18.000.12
    // as 198.18.0.12): one host, one run.
    let c = inventory_copy(&lab, "spelled.yml", |t| {
        t.edit(
            "    address: 198.18.0.12\n",
            "    address: 198.18.0.12\n    connection: { host: 198.18.000.12 }\n",
        )
    });
    let out = lv(&c, &["-l", "node2", "ping"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        stderr(&out).contains("is working on node2 (198.18.000.12:22, that is 198.18.0.12:22)"),
        "{}",
        show(&out)
    );
    // Other hosts are free.
    let out = lv(&b, &["-l", "node3", "ping"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
}

/// The second pass on trust (#20): secrets as users meet them (a PEM key in a rendered file, a
/// secret before a `.`, one with `"` and `\`, a block scalar in a file that does not parse),
/// global options that a command does not read, and files OpenSSH would not trust.
#[test]
fn secrets_in_every_shape_options_in_scope_and_files_as_openssh_trusts_them() {
    let lab = TestLab::up(1);
    const PEM: [&str; 4] = [
        "-----BEGIN PRIVATE KEY-----",
        "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC",
        "BKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj",
        "-----END PRIVATE KEY-----",
    ];
    let secrets = format!(
        "secrets:\n  pem: |\n{}  dotted: S3cr3tDot\n  quoted: 'qu\"o\\te9z'\nvars:\n",
        PEM.iter().map(|l| format!("    {l}\n")).collect::<String>()
    );
    let inv = inventory_copy(&lab, "inv-shapes.yml", |t| t.edit("vars:\n", &secrets));
    let templates = lab.dir.join("templates");
    std::fs::create_dir_all(&templates).unwrap();
    write(
        &templates.join("key.j2"),
        "# the key\nkey: |\n  {{ pem | indent(2) }}\n",
    );
    let pb = lab.dir.join("shapes.yml");
    write(
        &pb,
        "- name: shapes\n  hosts: node2\n  tasks:\n\
         \x20   - { name: key, template: { src: key.j2, dest: /etc/shapes-key.conf } }\n\
         \x20   - { name: words, shell: \"echo token {{ dotted }}. and; printf %s {{ quoted | quote }}\" }\n",
    );
    for extra in [&["--json"][..], &[][..]] {
        let mut args = extra.to_vec();
        args.extend(["--diff", "-v", "run", pb.to_str().unwrap()]);
        let out = lv(&inv, &args);
        let said = all_output(&out);
        assert_eq!(out.status.code(), Some(0), "{said}");
        for line in PEM {
            assert!(!said.contains(line), "{line} shows: {said}");
        }
        assert!(
            said.contains("+  ********"),
            "the key's lines show, masked: {said}"
        );
        assert!(said.contains("token ********."), "{said}");
        for shown in ["S3cr3tDot", "qu\"o", "qu\\\"o", "te9z"] {
            assert!(!said.contains(shown), "{shown} shows: {said}");
        }
        // Removed, so that the next run shows the whole file in its diff again.
        lab.ssh("node2", "rm -f /etc/shapes-key.conf");
    }

    // An inventory that does not parse, with a block-scalar secret: no line of it is quoted.
    for indicator in ["|", ">-"] {
        let broken = inventory_copy(&lab, "inv-broken.yml", |t| {
            t.edit(
                "vars:\n",
                &format!("secrets:\n  db_pass: {indicator}\n    Bl0ckL1ne1\n    Bl0ckL1ne2\n  [broken\nvars:\n"),
            )
        });
        let out = lv(&broken, &["validate"]);
        let said = all_output(&out);
        assert_eq!(out.status.code(), Some(1), "{said}");
        assert!(!said.contains("Bl0ckL1ne"), "{said}");
    }

    // --check is refused by exec, which would run the command: nothing runs.
    let out = lv(
        &inv,
        &[
            "--check",
            "-l",
            "node2",
            "exec",
            "--",
            "touch /tmp/check-exec",
        ],
    );
    let said = all_output(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("--check is not an option of `lvslab exec`")
            && said.contains("nothing was done"),
        "{said}"
    );
    let there = lab.ssh(
        "node2",
        "test -e /tmp/check-exec && echo ran || echo absent",
    );
    assert_eq!(stdout(&there), "absent\n", "{}", show(&there));

    // A key others can read is refused as OpenSSH refuses it: a login failure (exit 4).
    let open_key = lab.dir.join("id-open");
    std::fs::copy(&lab.identity_file, &open_key).unwrap();
    chmod(&open_key, 0o644);
    let opened = inventory_copy(&lab, "inv-open-key.yml", |t| {
        t.edit("identity_file: id_ed25519", "identity_file: id-open")
    });
    let out = lv(&opened, &["-l", "node2", "ping"]);
    let said = all_output(&out);
    assert_eq!(out.status.code(), Some(4), "{said}");
    assert!(
        said.contains("UNPROTECTED PRIVATE KEY FILE!")
            && said.contains(&format!(
                "Permissions 0644 for '{}' are too open",
                open_key.display()
            )),
        "{said}"
    );

    // An inventory every user can write is used, with a warning naming it and its mode.
    chmod(Path::new(&inv), 0o666);
    let out = lv(&inv, &["-l", "node2", "ping"]);
    let said = all_output(&out);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(
        said.contains(&format!(
            "inventory {inv} is writable by every user (mode 0666)"
        )),
        "{said}"
    );
    // So are a playbook and a --playbooks directory others can write.
    chmod(&pb, 0o664);
    let out = lv(&inv, &["run", pb.to_str().unwrap()]);
    let said = all_output(&out);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(
        said.contains(&format!(
            "playbook {} is writable by its group (mode 0664)",
            pb.display()
        )),
        "{said}"
    );
    let dir = lab.dir.join("open-playbooks");
    std::fs::create_dir_all(&dir).unwrap();
    chmod(&dir, 0o777);
    let out = lv(&inv, &["--playbooks", dir.to_str().unwrap(), "validate"]);
    let said = all_output(&out);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(
        said.contains(&format!(
            "playbook directory {} is writable by every user (mode 0777)",
            dir.display()
        )),
        "{said}"
    );
}

fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn runs_recording_host_keys_at_once_keep_every_key_once() {
    let lab = TestLab::up(6);
    let file = lab.dir.join("kh-shared");
    write(&file, "");
    let inv = with_known_hosts(&lab, "inv-shared.yml", &file);
    let nodes: Vec<String> = (1..=8).map(|n| format!("node{n}")).collect();
    let runs: Vec<_> = nodes
        .iter()
        .map(|node| spawn(&["-i", &inv, "--accept-new-host-keys", "-l", node, "ping"]))
        .collect();
    for run in runs {
        let out = run.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    }
    let text = std::fs::read_to_string(&file).unwrap();
    for node in &nodes {
        let address = lab.address(node);
        let lines = text
            .lines()
            .filter(|l| l.starts_with(&format!("{address} ")))
            .count();
        assert_eq!(lines, 1, "{node} ({address}) recorded once:\n{text}");
    }

    // `ssh-keygen -R` (which takes no lock) while another run records a key: what it removed
    // does not come back with the run's copy of the file.
    for round in 0..4 {
        let (gone, added) = (lab.address(&nodes[round]), &nodes[4 + round]);
        let out = Command::new("ssh-keygen")
            .args(["-R", &lab.address(added), "-f"])
            .arg(&file)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", show(&out));
        let run = spawn(&["-i", &inv, "--accept-new-host-keys", "-l", added, "ping"]);
        let out = Command::new("ssh-keygen")
            .args(["-R", &gone, "-f"])
            .arg(&file)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", show(&out));
        let done = run.wait_with_output().unwrap();
        assert_eq!(done.status.code(), Some(0), "{}", show(&done));
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            !text.lines().any(|l| l.starts_with(&format!("{gone} "))),
            "{gone}, removed, came back:\n{text}"
        );
    }
}

/// Files and settings written as asked, whatever was planted (#20): a symbolic link at the
/// destination is replaced and its root-only target left alone (no copy of it, not its mode);
/// a directory on the way that is another user's link is refused; a setuid file stays setuid
/// and a rerun changes nothing; a sysctl value with `\n` in it is written byte for byte, so it
/// cannot add a second setting to lvslab's sysctl file.
#[test]
fn planted_links_setuid_bits_and_escapes_are_handled_as_promised() {
    let lab = TestLab::up(1);
    let inv = lab.inventory.to_str().unwrap().to_string();
    let setup = "rm -rf /tmp/plant && mkdir -p /tmp/plant/real && echo 'root only' > /tmp/plant/shadow \
                 && chmod 600 /tmp/plant/shadow && ln -s /tmp/plant/shadow /tmp/plant/page.html \
                 && ln -s /tmp/plant/real /tmp/plant/via && chown -h 65534 /tmp/plant/via";
    let out = lab.ssh("node2", setup);
    assert!(out.status.success(), "{}", show(&out));
    let pb = lab.dir.join("plant.yml");
    write(
        &pb,
        "- name: files\n  hosts: node2\n  tasks:\n\
         \x20   - name: page\n      copy: { content: \"page\\n\", dest: /tmp/plant/page.html }\n\
         \x20   - name: tool\n      copy: { content: \"#!/bin/sh\\n\", dest: /tmp/plant/tool, mode: \"4755\", owner: \"root:root\" }\n",
    );
    let pb = pb.to_str().unwrap().to_string();
    let out = lv(&inv, &["run", &pb]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(
        stdout(&out).contains("replace the symbolic link at /tmp/plant/page.html"),
        "{}",
        show(&out)
    );
    let seen = lab.ssh(
        "node2",
        "stat -c '%F %a' /tmp/plant/page.html /tmp/plant/shadow /tmp/plant/tool; cat /tmp/plant/shadow; \
         ls /tmp/plant/page.html.lvslab-prev 2>&1 | grep -c 'No such'",
    );
    assert_eq!(
        stdout(&seen),
        "regular file 644\nregular file 600\nregular file 4755\nroot only\n1\n",
        "{}",
        show(&seen)
    );
    let again = lv(&inv, &["run", &pb]);
    assert_eq!(again.status.code(), Some(0), "{}", show(&again));
    assert!(
        stdout(&again).contains("changed=0"),
        "setuid kept, nothing to do: {}",
        show(&again)
    );

    // Through another user's link: refused, nothing written behind it.
    let via = lab.dir.join("via.yml");
    write(
        &via,
        "- name: via\n  hosts: node2\n  tasks:\n\
         \x20   - copy: { content: \"x\\n\", dest: /tmp/plant/via/f }\n",
    );
    let out = lv(&inv, &["run", via.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        show(&out).contains("/tmp/plant/via is a symbolic link owned by uid 65534"),
        "{}",
        show(&out)
    );
    let there = lab.ssh("node2", "ls /tmp/plant/real | wc -l");
    assert_eq!(stdout(&there).trim(), "0");

    // A sysctl value with a backslash sequence: one line, byte for byte (the kernel refuses it).
    let sysctl = lab.dir.join("sysctl.yml");
    write(
        &sysctl,
        "- name: s\n  hosts: node2\n  tasks:\n\
         \x20   - sysctl: { key: net.ipv4.conf.all.arp_ignore, value: \"1\\\\nkernel.printk = 1\" }\n",
    );
    let out = lv(&inv, &["run", sysctl.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let file = lab.ssh(
        "node2",
        "cat /etc/sysctl.d/90-lvslab.conf 2>/dev/null; true",
    );
    assert!(!stdout(&file).contains("kernel.printk"), "{}", show(&file));
    lab.ssh("node2", "rm -rf /tmp/plant");
}
