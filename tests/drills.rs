//! The failover drills on the namespace lab, where VRRP needs no IPVS: the client pings the VIP.
//! Every kind runs, keeps its outage within the limit it computes from the inventory, leaves the
//! lab as it found it, and writes a picture that holds its marks; kill finds the VIP left on the
//! dead MASTER and repairs it with `lvslab up`; partition sees two MASTERs and two MACs; a drill
//! SIGKILLed mid-fault is undone on its host all the same. (The real-server drills and the HTTP
//! load need IPVS: the VM tier runs them.)

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{LVSLAB, TestLab, lvslab, show, stdout};

fn lv(lab: &TestLab, args: &[&str]) -> std::process::Output {
    let inv = lab.inventory.to_str().unwrap();
    let mut all = vec!["-i", inv];
    all.extend_from_slice(args);
    lvslab(&all)
}

/// The runs of a `--json` drill's result event.
fn runs(out: &std::process::Output) -> Vec<serde_json::Value> {
    stdout(out)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|e| e["event"] == "result")
        .and_then(|e| e["data"].as_array().cloned())
        .unwrap_or_else(|| panic!("no result event: {}", show(out)))
}

/// Who holds the VIP (on eth0) and whether keepalived runs, per director.
fn lab_state(lab: &TestLab) -> String {
    ["node1", "node4"]
        .iter()
        .map(|n| {
            let out = lab.ssh(
                n,
                "ip -o addr show dev eth0 | grep -q ' 198.18.0.100/' && echo VIP || echo no-VIP; pgrep -x keepalived >/dev/null && echo running || echo stopped",
            );
            format!("{n}: {}", stdout(&out).split_whitespace().collect::<Vec<_>>().join(" "))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The text nodes of a picture, after checking it is one well-formed SVG document.
fn picture_texts(path: &Path) -> String {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("no picture at {}: {e}", path.display()));
    let doc = roxmltree::Document::parse(&text)
        .unwrap_or_else(|e| panic!("{} is not well-formed: {e}", path.display()));
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    assert!(
        !text.contains("href=") && !text.contains("<script"),
        "one file, no external assets"
    );
    doc.descendants()
        .filter_map(|n| n.text())
        .collect::<Vec<_>>()
        .join("|")
}

#[test]
fn every_failover_kind_stays_within_its_limit_and_leaves_the_lab_as_it_was() {
    let lab = TestLab::up(2);
    let up = lv(&lab, &["up", "--no-verify"]);
    assert_eq!(up.status.code(), Some(0), "{}", show(&up));
    // A client that asks again soon after a stale entry: the partition's limit follows.
    let timers = lab.ssh(
        "client",
        "sysctl -qw net.ipv4.neigh.eth0.base_reachable_time_ms=4000 net.ipv4.neigh.eth0.delay_first_probe_time=1",
    );
    assert!(timers.status.success(), "{}", show(&timers));
    let elected = lab.ssh(
        "node1",
        "for i in $(seq 50); do ip -o addr show dev eth0 | grep -q 198.18.0.100 && exit 0; sleep 0.2; done; exit 1",
    );
    assert!(elected.status.success(), "node1 holds the VIP");
    let before = lab_state(&lab);
    assert_eq!(before, "node1: VIP running; node4: no-VIP running");

    // The terminal's view once: the per-second timeline and where the picture went; twice,
    // with the outage summarised over the runs.
    let svg = lab.dir.join("stop.svg");
    let out = lv(
        &lab,
        &[
            "drill",
            "failover",
            "--repeat",
            "2",
            "--svg",
            svg.to_str().unwrap(),
        ],
    );
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(
        text.contains("the client pings the VIP")
            && text.contains("    0s ")
            && text.contains("<- keepalived stopped on node1 (SIGTERM)")
            && text.contains(&format!("timeline picture: {}", svg.display()))
            && text.contains("PASS drill failover --kind stop")
            && text.contains("failover --kind stop: 2 runs, outage p50 ")
            && text.contains("2 passed"),
        "{}",
        show(&out)
    );
    assert!(
        lab.dir.join("stop-2.svg").exists(),
        "the second run's picture"
    );
    assert!(picture_texts(&svg).contains("keepalived stopped on node1 (SIGTERM)"));
    assert_eq!(lab_state(&lab), before, "{}", show(&out));

    for kind in ["kill", "link-down", "freeze", "partition"] {
        let svg = lab.dir.join(format!("{kind}.svg"));
        let out = lv(
            &lab,
            &[
                "--json",
                "drill",
                "failover",
                "--kind",
                kind,
                "--svg",
                svg.to_str().unwrap(),
            ],
        );
        assert_eq!(out.status.code(), Some(0), "{kind}: {}", show(&out));
        let runs = runs(&out);
        assert_eq!(runs.len(), 1);
        let run = &runs[0];
        let (outage, limit) = (
            run["outage_ms"].as_i64().unwrap(),
            run["limit"]["ms"].as_i64().unwrap(),
        );
        assert!(run["pass"] == true, "{kind}: {run}");
        assert!(
            outage <= limit + 1000,
            "{kind}: outage {outage} > {limit} + 1000"
        );
        let takeover = run["takeover_ms"].as_i64().unwrap();
        // No goodbye: the BACKUP waits out the MASTER's silence (3 adverts at least).
        assert!(
            takeover >= 2500,
            "{kind}: the backup cannot take over before its Master_Down_Interval: {takeover} ms"
        );
        assert!(run["failback_ms"].as_i64().is_some(), "{kind}: {run}");
        let requests = run["record"]["requests"].as_array().unwrap().len();
        assert!(
            requests > 100,
            "{kind}: a steady load ({requests} requests)"
        );
        let marks: Vec<String> = run["record"]["marks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["text"].as_str().unwrap().to_string())
            .collect();
        let texts = picture_texts(&svg);
        for m in &marks {
            assert!(
                texts.contains(m.as_str()),
                "{kind}: the picture holds `{m}`"
            );
        }
        match kind {
            "kill" => {
                assert_eq!(
                    run["stale_vip"], true,
                    "{kind}: the seed's flaw shows: {run}"
                );
                let summary = run["summary"].as_str().unwrap();
                assert!(
                    summary.contains("the VIP stayed on node1 with keepalived dead")
                        && summary.contains("lvslab up on node1:"),
                    "{summary}"
                );
                assert!(marks.iter().any(|m| m == "stale VIP on node1"), "{marks:?}");
            }
            "partition" => {
                let double = run["double_master_ms"].as_i64().unwrap();
                assert!(double > 0, "two MASTERs seen: {run}");
                let most_macs = run["record"]["arp"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| a["macs"].as_array().unwrap().len())
                    .max()
                    .unwrap_or(0);
                assert_eq!(most_macs, 2, "both directors answer ARP for the VIP");
                assert_eq!(
                    run["limit"]["ms"], 10_000,
                    "the client's ARP timers: 1.5 x 4000 + 1000 + 3 x 1000"
                );
                assert!(run["reachable_after_heal_ms"].as_i64().is_some());
            }
            _ => {}
        }
        assert_eq!(lab_state(&lab), before, "{kind}: {}", show(&out));
        let left = lab.ssh(
            "node1",
            "tc qdisc show dev eth0 ingress; ip -o link show dev eth0 | grep -c UP",
        );
        assert_eq!(stdout(&left).trim(), "1", "{kind}: no filter, link up");
        let asker = lab.ssh("client", "ip -o link | grep -c lvsarp || true");
        assert_eq!(stdout(&asker).trim(), "0", "{kind}: the ARP asker is gone");
    }

    // A drill SIGKILLed while its fault is on (keepalived killed on the MASTER) can undo
    // nothing itself: the undo it armed on node1 before the fault starts keepalived again by
    // itself, and node1 takes its VIP back.
    let told = lab.dir.join("killed.txt");
    let mut drill = Command::new(LVSLAB)
        .args(["-i", lab.inventory.to_str().unwrap()])
        .args(["drill", "failover", "--kind", "kill", "--no-svg"])
        .stdout(std::fs::File::create(&told).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let waited = Instant::now();
    while !std::fs::read_to_string(&told)
        .unwrap_or_default()
        .contains(" while ")
    {
        assert!(
            waited.elapsed() < Duration::from_secs(30),
            "the drill never started its load"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // The fault comes 2 s after the load starts.
    std::thread::sleep(Duration::from_secs(5));
    drill.kill().unwrap();
    drill.wait().unwrap();
    let killed = Instant::now();
    let down = lab.ssh(
        "node1",
        "pgrep -x keepalived >/dev/null && echo running || echo dead",
    );
    assert_eq!(
        stdout(&down).trim(),
        "dead",
        "the fault was on when the drill was killed"
    );
    while !lab.ssh("node1", "pgrep -x keepalived").status.success() {
        assert!(
            killed.elapsed() < Duration::from_secs(60),
            "keepalived not started again on node1 {:?} after the drill was killed",
            killed.elapsed()
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    while lab_state(&lab) != before {
        assert!(
            killed.elapsed() < Duration::from_secs(90),
            "the lab after the killed drill's undo: {}",
            lab_state(&lab)
        );
        std::thread::sleep(Duration::from_secs(1));
    }
}

#[test]
fn drill_input_errors_name_what_is_wrong() {
    let lab = TestLab::up(2);
    // Before `up`: nobody holds the VIP.
    let out = lv(&lab, &["drill", "failover", "--no-svg"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        show(&out).contains("no director holds the VIP: run `lvslab up` first"),
        "{}",
        show(&out)
    );
    let out = lv(&lab, &["drill", "realserver", "node9", "--no-svg"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        show(&out).contains(
            "`node9` is not a real server of the inventory (its real servers: node2, node3)"
        ),
        "{}",
        show(&out)
    );
    let out = lv(&lab, &["drill", "failover", "--kind", "explode"]);
    assert_eq!(out.status.code(), Some(1), "a usage error: {}", show(&out));
    assert!(
        show(&out).contains("stop, kill, link-down, freeze, partition"),
        "{}",
        show(&out)
    );
}

/// A program missing on the client is named with its package before anything is done: never
/// measured as an outage (a client without `ping` once made every drill "fail" 196 of 196).
#[test]
fn a_drill_or_verify_whose_client_lacks_its_tool_stops_at_once_naming_the_program_and_package() {
    let lab = TestLab::up(2);
    let up = lv(&lab, &["up", "--no-verify"]);
    assert_eq!(up.status.code(), Some(0), "{}", show(&up));
    let elected = lab.ssh(
        "node1",
        "for i in $(seq 50); do ip -o addr show dev eth0 | grep -q 198.18.0.100 && exit 0; sleep 0.2; done; exit 1",
    );
    assert!(elected.status.success(), "node1 holds the VIP");
    let before = lab_state(&lab);
    // The client loses `ping` and `curl`: a node has mounts of its own, so an empty file bound
    // over each hides it there and nowhere else.
    let hide = lab.ssh(
        "client",
        "for p in ping curl; do f=$(command -v $p) && : > /tmp/no-$p && mount --bind /tmp/no-$p \"$f\" || exit 1; done; ! [ -x \"$(command -v ping)\" ]",
    );
    assert!(hide.status.success(), "{}", show(&hide));

    let started = std::time::Instant::now();
    let out = lv(&lab, &["drill", "failover", "--kind", "stop"]);
    let took = started.elapsed();
    assert_ne!(out.status.code(), Some(0), "{}", show(&out));
    assert!(
        show(&out).contains("the client client has no `ping` (install iputils-ping)"),
        "{}",
        show(&out)
    );
    assert!(
        !show(&out).contains("outage"),
        "nothing measured: {}",
        show(&out)
    );
    assert!(took.as_secs() < 20, "at once, not after a drill: {took:?}");
    assert_eq!(lab_state(&lab), before, "no fault was made");

    let out = lv(&lab, &["verify"]);
    assert_ne!(out.status.code(), Some(0), "{}", show(&out));
    assert!(
        show(&out).contains("the client client has no `curl` (install curl)"),
        "{}",
        show(&out)
    );
    assert!(
        !show(&out).contains("GET "),
        "no request was sent: {}",
        show(&out)
    );
    let down = lv(&lab, &["down"]);
    assert_eq!(down.status.code(), Some(0), "{}", show(&down));
}
