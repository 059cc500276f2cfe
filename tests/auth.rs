//! Logging in: key types, an encrypted key without a terminal, the ssh-agent, and a non-root user
//! who becomes root through sudo. Real sshd on the namespace lab.

mod common;

use std::path::Path;
use std::process::Command;

use common::{Edit, TestLab, lvslab, show, stderr, stdout};

fn keygen(path: &Path, kind: &str, passphrase: &str) {
    let _ = std::fs::remove_file(path);
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", kind, "-N", passphrase, "-C", kind, "-f"])
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success(), "ssh-keygen {kind}: {}", show(&out));
}

/// The lab's inventory with a different connection block.
fn inventory_with(lab: &TestLab, name: &str, connection: &str) -> String {
    let text = std::fs::read_to_string(&lab.inventory).unwrap();
    let start = text.find("connection:").unwrap();
    let end = start + text[start..].find("\n\n").unwrap();
    let new = format!(
        "{}{}{}",
        &text[..start],
        connection.trim_end(),
        &text[end..]
    );
    let path = lab.dir.join(name);
    std::fs::write(&path, new).unwrap();
    path.to_str().unwrap().to_string()
}

fn authorize(lab: &TestLab, node: &str, user_home: &str, pubkey: &Path) {
    let key = std::fs::read_to_string(pubkey).unwrap();
    let out = lab.ssh(
        node,
        &format!(
            "mkdir -p {user_home}/.ssh && echo '{}' >> {user_home}/.ssh/authorized_keys",
            key.trim()
        ),
    );
    assert!(out.status.success(), "{}", show(&out));
}

#[test]
fn rsa_and_ecdsa_keys_log_in_and_an_encrypted_key_without_a_terminal_is_explained() {
    let lab = TestLab::up(2);
    for kind in ["rsa", "ecdsa"] {
        let key = lab.dir.join(format!("id_{kind}"));
        keygen(&key, kind, "");
        authorize(&lab, "node2", "/root", &key.with_extension("pub"));
        let inv = inventory_with(
            &lab,
            &format!("inv-{kind}.yml"),
            &format!(
                "connection:\n  user: root\n  identity_file: {}\n  known_hosts: known_hosts\n",
                key.display()
            ),
        );
        let out = lvslab(&["-i", &inv, "-l", "node2", "ping"]);
        assert_eq!(out.status.code(), Some(0), "{kind}: {}", show(&out));
    }
    let key = lab.dir.join("id_locked");
    keygen(&key, "ed25519", "s3cret-pass");
    authorize(&lab, "node2", "/root", &key.with_extension("pub"));
    let inv = inventory_with(
        &lab,
        "inv-locked.yml",
        &format!(
            "connection:\n  user: root\n  identity_file: {}\n  known_hosts: known_hosts\n",
            key.display()
        ),
    );
    let out = lvslab(&["-i", &inv, "-l", "node2", "ping"]);
    assert_eq!(out.status.code(), Some(4), "{}", show(&out));
    assert!(
        stdout(&out).contains("is encrypted and there is no terminal")
            && stdout(&out).contains("ssh-add"),
        "{}",
        show(&out)
    );
}

#[test]
fn the_ssh_agent_is_used_when_no_key_file_is_set() {
    let lab = TestLab::up(2);
    let sock = lab.dir.join("agent.sock");
    let agent = Command::new("ssh-agent")
        .arg("-a")
        .arg(&sock)
        .output()
        .unwrap();
    assert!(agent.status.success(), "{}", show(&agent));
    let pid: String = stdout(&agent)
        .split("SSH_AGENT_PID=")
        .nth(1)
        .unwrap()
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    let add = Command::new("ssh-add")
        .arg(&lab.identity_file)
        .env("SSH_AUTH_SOCK", &sock)
        .output()
        .unwrap();
    assert!(add.status.success(), "{}", show(&add));
    let inv = inventory_with(
        &lab,
        "inv-agent.yml",
        "connection:\n  user: root\n  known_hosts: known_hosts\n",
    );
    let out = Command::new(common::LVSLAB)
        .args(["-i", &inv, "ping"])
        .env("SSH_AUTH_SOCK", &sock)
        .env("HOME", &lab.dir) // no default keys to fall back on
        .output()
        .unwrap();
    let _ = Command::new("kill").arg(&pid).status();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
}

#[test]
fn a_non_root_user_becomes_root_through_sudo() {
    let lab = TestLab::up(2);
    let setup = "useradd -m -d /var/lib/labuser -p '*' -s /bin/sh labuser && echo 'labuser ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/labuser && chmod 440 /etc/sudoers.d/labuser";
    let out = lab.ssh("node2", setup);
    assert!(out.status.success(), "{}", show(&out));
    authorize(
        &lab,
        "node2",
        "/var/lib/labuser",
        &lab.identity_file.with_extension("pub"),
    );
    lab.ssh(
        "node2",
        "chown -R labuser: /var/lib/labuser/.ssh && chmod 700 /var/lib/labuser/.ssh",
    );
    let inv = inventory_with(
        &lab,
        "inv-user.yml",
        &format!(
            "connection:\n  user: labuser\n  become: true\n  identity_file: {}\n  known_hosts: known_hosts\n",
            lab.identity_file.display()
        ),
    );
    let pb = lab.dir.join("become.yml");
    std::fs::write(&pb, "- name: as root\n  hosts: node2\n  tasks:\n    - name: a root-only setting\n      sysctl: { key: net.ipv4.conf.all.arp_announce, value: \"2\" }\n    - name: who\n      command: id -un\n      register: who\n      changed_when: false\n    - name: root\n      assert: { that: [\"who.stdout == 'root'\"] }\n").unwrap();
    let out = lvslab(&["-i", &inv, "run", pb.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(
        stdout(&out).contains("net.ipv4.conf.all.arp_announce 0 -> 2"),
        "{}",
        show(&out)
    );
    // Without become, the same change is refused by the kernel, and said so.
    let inv = inventory_with(
        &lab,
        "inv-user2.yml",
        &format!(
            "connection:\n  user: labuser\n  become: false\n  identity_file: {}\n  known_hosts: known_hosts\n",
            lab.identity_file.display()
        ),
    );
    lab.ssh("node2", "echo 0 > /proc/sys/net/ipv4/conf/all/arp_announce");
    let out = lvslab(&["-i", &inv, "run", pb.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        stdout(&out).contains("failed") && stderr(&out).is_empty(),
        "{}",
        show(&out)
    );
}

/// `connection.jump`: every host is reached through the client node as through a bastion. The
/// nodes see the jump host as the SSH peer; a jump host that does not answer is named.
#[test]
fn a_jump_host_carries_the_connections_and_a_dead_one_is_named() {
    let lab = TestLab::up(2);
    let connection = "connection:\n  user: root\n  identity_file: id_ed25519\n  known_hosts: known_hosts\n  jump: root@198.18.0.10\n";
    let inv = inventory_with(&lab, "inv-jump.yml", connection);
    let out = lvslab(&[
        "-i",
        &inv,
        "exec",
        "-l",
        "node2,node3",
        "--",
        "echo peer=${SSH_CONNECTION%% *} on $(hostname)",
    ]);
    assert!(out.status.success(), "{}", show(&out));
    let text = stdout(&out);
    for node in ["node2", "node3"] {
        assert!(
            text.contains(&format!("peer=198.18.0.10 on {node}")),
            "{node} is reached through the jump host: {}",
            show(&out)
        );
    }
    assert!(!text.contains("peer=198.18.0.1 "), "{}", show(&out));

    let dead = inventory_with(
        &lab,
        "inv-dead-jump.yml",
        &connection.edit("198.18.0.10", "198.18.0.99"),
    );
    let out = lvslab(&[
        "-i",
        &dead,
        "--connect-timeout",
        "2",
        "exec",
        "-l",
        "node2",
        "--",
        "true",
    ]);
    assert_eq!(out.status.code(), Some(4), "{}", show(&out));
    let all = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        all.contains("198.18.0.99") && all.contains("jump host"),
        "the dead jump host is named: {}",
        show(&out)
    );
}
