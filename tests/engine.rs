//! The engine end to end: the real binary over real SSH against the namespace lab.

mod common;

use std::path::Path;

use common::{Edit, TestLab, lvslab, show, stdout};

const SITE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/site.yml");

/// Per-host (ok, changed, failed) from the recap of a `--json` run.
fn recap(out: &std::process::Output) -> Vec<(String, u64, u64, u64)> {
    let text = stdout(out);
    let line = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|e| e["event"] == "recap")
        .unwrap_or_else(|| panic!("no recap: {}", show(out)));
    line["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["host"].as_str().unwrap().to_string(),
                h["ok"].as_u64().unwrap(),
                h["changed"].as_u64().unwrap(),
                h["failed"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn total(out: &std::process::Output, field: usize) -> u64 {
    recap(out)
        .iter()
        .map(|r| match field {
            1 => r.1,
            2 => r.2,
            _ => r.3,
        })
        .sum()
}

fn run(lab: &TestLab, extra: &[&str]) -> std::process::Output {
    let inv = lab.inventory.to_str().unwrap();
    let mut args = vec!["-i", inv, "--json"];
    args.extend_from_slice(extra);
    lvslab(&args)
}

#[test]
fn first_run_changes_second_run_is_ok_and_check_reports_drift() {
    let lab = TestLab::up(2);
    let first = run(&lab, &["run", SITE]);
    assert_eq!(first.status.code(), Some(0), "{}", show(&first));
    assert!(
        total(&first, 2) >= 14,
        "every module changed something on both hosts: {}",
        show(&first)
    );
    assert_eq!(total(&first, 3), 0);

    // What it did is really there.
    let page = lab.ssh("node2", "cat /var/lib/lvslab-test/index.html; cat /proc/sys/net/ipv4/conf/all/arp_ignore; ip -o addr show dev lo | grep -c 198.18.0.100; pgrep -x nginx >/dev/null && echo nginx");
    let text = stdout(&page);
    assert!(text.contains("page of node2 at 198.18.0.12"), "{text}");
    assert!(text.contains("\n1\n1\nnginx"), "{text}");

    let second = run(&lab, &["run", SITE]);
    assert_eq!(second.status.code(), Some(0), "{}", show(&second));
    assert_eq!(
        total(&second, 2),
        0,
        "a converged host reports no change: {}",
        show(&second)
    );

    // Drift by hand; --check reports it and changes nothing.
    lab.ssh("node3", "echo 0 > /proc/sys/net/ipv4/conf/all/arp_ignore; echo tampered > /var/lib/lvslab-test/index.html");
    let check = run(&lab, &["--check", "--diff", "run", SITE]);
    assert_eq!(check.status.code(), Some(0), "{}", show(&check));
    let text = stdout(&check);
    assert!(
        text.contains("net.ipv4.conf.all.arp_ignore 0 -> 1"),
        "{text}"
    );
    assert!(
        text.contains("-tampered") && text.contains("+page of node3"),
        "diff shown: {text}"
    );
    assert_eq!(recap(&check).iter().find(|r| r.0 == "node2").unwrap().2, 0);
    assert!(
        text.contains(
            r#""task":"read the page","status":"skipped","msg":"commands do not run in check mode""#
        ),
        "a command is skipped in check mode, even a read-only one (changed_when: false): {text}"
    );
    let still = lab.ssh(
        "node3",
        "cat /proc/sys/net/ipv4/conf/all/arp_ignore /var/lib/lvslab-test/index.html",
    );
    assert_eq!(
        stdout(&still),
        "0\ntampered\n",
        "check mode changed nothing"
    );

    // A normal run repairs exactly that.
    let fix = run(&lab, &["run", SITE]);
    assert_eq!(
        recap(&fix).iter().find(|r| r.0 == "node3").unwrap().2,
        2,
        "{}",
        show(&fix)
    );
}

#[test]
fn exec_ping_and_limits() {
    let lab = TestLab::up(2);
    let inv = lab.inventory.to_str().unwrap();
    let out = lvslab(&["-i", inv, "exec", "-l", "node2,directors", "--", "hostname"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let text = stdout(&out);
    for n in ["node1", "node2", "node4"] {
        assert!(
            text.contains(&format!("{n}      hostname: exit status 0\n{n}")) || text.contains(n),
            "{text}"
        );
    }
    assert!(!text.contains("node3"), "--limit keeps node3 out: {text}");
    let out = lvslab(&["-i", inv, "exec", "-l", "node2", "--", "exit 3"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "a failed command is exit 2: {}",
        show(&out)
    );
    let out = lvslab(&["-i", inv, "ping"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(stdout(&out).contains("ipvs"), "{}", show(&out));
}

#[test]
fn validate_points_at_file_line_and_column() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/inventory.example.yml");
    let out = lvslab(&["validate", "-i", example]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));

    let dir = std::env::temp_dir().join(format!("lvslab-validate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.yml");
    let text = std::fs::read_to_string(example)
        .unwrap()
        .edit("virtual_router_id: 51", "virtual_router_id: 300");
    let line = 1 + text
        .lines()
        .position(|l| l.contains("virtual_router_id: 300"))
        .expect("the example names a virtual_router_id");
    std::fs::write(&bad, text).unwrap();
    let out = lvslab(&["validate", "-i", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let err = common::stderr(&out);
    assert!(
        err.contains(&format!("bad.yml:{line}:24")) && err.contains("outside 1-255"),
        "{err}"
    );

    let pb = dir.join("pb.yml");
    std::fs::write(
        &pb,
        "- name: p\n  hosts: directors\n  tasks:\n    - name: t\n      servce: { name: x }\n",
    )
    .unwrap();
    let out = lvslab(&["validate", "-i", example, pb.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let err = common::stderr(&out);
    // At the unknown key itself, not at the task.
    assert!(
        err.contains("pb.yml:5:7:") && err.contains("servce"),
        "{err}"
    );

    // An inventory without the directors group: the inventory is blamed, not a built-in
    // playbook's line; with a playbook of one's own, that playbook is still checked.
    let plain = dir.join("plain.yml");
    std::fs::write(
        &plain,
        "hosts:\n  web1: { address: 198.18.0.12 }\ngroups:\n  web: { hosts: [web1] }\n",
    )
    .unwrap();
    let out = lvslab(&["validate", "-i", plain.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let err = common::stderr(&out);
    assert!(
        err.contains("plain.yml has no `lvs:` section") && !err.contains("boot.yml"),
        "{err}"
    );
    let own = dir.join("own.yml");
    std::fs::write(
        &own,
        "- name: p\n  hosts: web\n  tasks:\n    - name: t\n      shell: \"true\"\n",
    )
    .unwrap();
    let out = lvslab(&[
        "validate",
        "-i",
        plain.to_str().unwrap(),
        own.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(stdout(&out).contains("built-in playbooks (`lvslab up`, `down`) are not checked"));
    std::fs::remove_dir_all(Path::new(&dir)).unwrap();
}

/// `lvslab set` changes one value in place and keeps the rest of the file; a key that is not
/// there, or a value the inventory refuses, leaves the file untouched and says why.
#[test]
fn set_changes_one_value_in_place_or_nothing_at_all() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/inventory.example.yml");
    let dir = std::env::temp_dir().join(format!("lvslab-set-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let inv = dir.join("inventory.yml");
    let original = std::fs::read_to_string(example).unwrap();
    std::fs::write(&inv, &original).unwrap();
    let path = inv.to_str().unwrap();

    let out = lvslab(&[
        "-i",
        path,
        "set",
        "lvs.forwarding=tun",
        "lvs.health_check.delay_loop=2",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(
        stdout(&out).contains("lvs.forwarding: dr -> tun"),
        "{}",
        show(&out)
    );
    let now = std::fs::read_to_string(&inv).unwrap();
    let expected = original
        .edit("  forwarding: dr        #", "  forwarding: tun        #")
        .edit("delay_loop: 6", "delay_loop: 2");
    assert_eq!(now, expected);

    for (arg, says) in [
        (
            "lvs.health_check.delay_lop=2",
            "no key `lvs.health_check.delay_lop`",
        ),
        ("lvs.scheduler=fastest", "would not load"),
        ("lvs.health_check=1", "holds a mapping"),
    ] {
        let out = lvslab(&["-i", path, "set", "lvs.forwarding=nat", arg]);
        assert_eq!(out.status.code(), Some(1), "{arg}: {}", show(&out));
        assert!(common::stderr(&out).contains(says), "{arg}: {}", show(&out));
        assert_eq!(std::fs::read_to_string(&inv).unwrap(), expected, "{arg}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `lvslab drain` and `undrain` take a real server of the inventory: anything else is refused
/// before the file is touched or a host contacted, with the real servers there are.
#[test]
fn drain_takes_a_real_server_or_touches_nothing() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/inventory.example.yml");
    let dir = std::env::temp_dir().join(format!("lvslab-drain-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let inv = dir.join("inventory.yml");
    let original = std::fs::read_to_string(example).unwrap();
    std::fs::write(&inv, &original).unwrap();
    let path = inv.to_str().unwrap();
    for args in [["drain", "node1"], ["undrain", "node9"]] {
        let out = lvslab(&["-i", path, args[0], args[1]]);
        assert_eq!(out.status.code(), Some(1), "{}", show(&out));
        assert!(
            common::stderr(&out).contains(&format!(
                "`{}` is not a real server of {path} (real servers: node2, node3)",
                args[1]
            )),
            "{}",
            show(&out)
        );
        assert_eq!(std::fs::read_to_string(&inv).unwrap(), original);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Output that cannot be written ends lvslab in words, not a panic: a reader that goes away
/// (`| head -1`) quietly with 141, a full disk with its reason and 1.
#[test]
fn output_that_cannot_be_written_ends_in_words_not_a_panic() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let mut child = Command::new(common::LVSLAB)
        .args(["completions", "bash"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with("_lvslab()"), "{first}");
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(141), "{}", show(&out));
    assert_eq!(common::stderr(&out), "", "a quiet exit");

    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/inventory.example.yml");
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let out = Command::new(common::LVSLAB)
        .args(["-i", example, "validate"])
        .env_remove("LVSLAB_INVENTORY")
        .stdout(full)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let said = common::stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("lvslab: cannot write the output: No space left on device")
            && !said.contains("panicked"),
        "{said}"
    );
}

/// The flags an Ansible user types: `--list-tasks`/`--list-hosts` read the files only (the
/// example inventory's hosts exist nowhere), `--start-at-task` and `--skip-tags` choose the
/// tasks, `-e` takes `@FILE` and JSON besides `KEY=VALUE`; `-u` and `--syntax-check` answer
/// with lvslab's way, doing nothing.
#[test]
fn ansible_flags_do_what_ansible_users_expect() {
    let dir = std::env::temp_dir().join(format!("lvslab-flags-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pb = dir.join("flags.yml");
    std::fs::write(
        &pb,
        "- name: flags\n  hosts: real_servers\n  tasks:\n    - name: one\n      shell: \"true\"\n      tags: [a]\n    - name: two\n      shell: \"true\"\n      tags: [b]\n    - name: three\n      shell: \"true\"\n    - name: the variables arrived\n      assert: { that: [\"x == 1\", \"y == 'b'\"] }\n",
    )
    .unwrap();
    let pb = pb.to_str().unwrap();
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/inventory.example.yml");
    let listed = lvslab(&[
        "-i",
        example,
        "-l",
        "node2",
        "run",
        pb,
        "--list-tasks",
        "--list-hosts",
    ]);
    assert_eq!(listed.status.code(), Some(0), "{}", show(&listed));
    assert_eq!(
        stdout(&listed),
        format!(
            "playbook: {pb}\n  play `flags` (hosts: real_servers): 1 host(s): node2\n    one  [tags: a]\n    two  [tags: b]\n    three\n    the variables arrived\n"
        )
    );

    let lab = TestLab::up(2);
    let vars = dir.join("vars.yml");
    std::fs::write(&vars, "x: 1\ny: a\n").unwrap();
    let at = format!("@{}", vars.display());
    let out = run(
        &lab,
        &[
            "run",
            pb,
            "--start-at-task",
            "two",
            "--skip-tags",
            "b",
            "-e",
            &at,
            "-e",
            r#"{"y": "b"}"#,
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    // Only `three` changed something (one and two never ran), and the assert passed.
    assert_eq!(total(&out, 2), 2, "{}", show(&out));
    assert_eq!(total(&out, 3), 0, "{}", show(&out));
    let text = stdout(&out);
    assert!(
        !text.contains("\"task\":\"one\"") && !text.contains("\"task\":\"two\""),
        "{text}"
    );
    let missing = run(&lab, &["run", pb, "--start-at-task", "four"]);
    assert_eq!(missing.status.code(), Some(1), "{}", show(&missing));
    assert!(common::stderr(&missing).contains("no task of these playbooks has that name"));

    for (flag, answer) in [
        (vec!["-u", "admin"], "connection: { user: admin }"),
        (vec!["--syntax-check"], "lvslab validate PLAYBOOK"),
    ] {
        let mut args = vec!["run", pb];
        args.extend(flag);
        let out = run(&lab, &args);
        assert_eq!(out.status.code(), Some(1), "{}", show(&out));
        assert!(common::stderr(&out).contains(answer), "{}", show(&out));
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
