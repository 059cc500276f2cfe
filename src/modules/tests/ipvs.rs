//! `ipvs` over the fake host.

use super::{Lab, State};
use crate::lvs::ipvs::Table;
use crate::report::Status;
use crate::transport::sh::{self, BOOT_DIR};

const SERVICE: &str = "ipvs:
  service:
    vip: 198.18.0.100
    port: 80
    scheduler: rr
    real_servers:
      - { address: 198.18.0.12, port: 80, weight: 1 }
      - { address: 198.18.0.13, port: 80, weight: 1 }";

const TABLE: &str = "-A -t 198.18.0.100:80 -s rr\n\
                     -a -t 198.18.0.100:80 -r 198.18.0.12:80 -g -w 1\n\
                     -a -t 198.18.0.100:80 -r 198.18.0.13:80 -g -w 1\n";

const ENTRY: &str = "50-ipvs-tcp_198.18.0.100_80";

fn table(saved: &str) -> Option<Table> {
    Some(Table::parse(saved).unwrap_or_else(|e| panic!("{e}")))
}

fn with_table(saved: &str) -> State {
    State {
        ipvs: table(saved),
        ..State::new()
    }
}

#[tokio::test]
async fn the_first_run_builds_the_service_and_keeps_it_for_boot() {
    let lab = Lab::new(State::new());
    let run = lab.run(SERVICE).await;
    assert_eq!(run.status, Status::Changed);
    assert_eq!(
        run.msg,
        "add service tcp 198.18.0.100:80 (rr); add real server 198.18.0.12:80 (dr, weight 1); \
         add real server 198.18.0.13:80 (dr, weight 1); kept for boot in /etc/lvslab-boot.d/50-ipvs-tcp_198.18.0.100_80"
    );
    let rules = "ipvsadm -A -t 198.18.0.100:80 -s rr && \
                 ipvsadm -a -t 198.18.0.100:80 -r 198.18.0.12:80 -g -w 1 && \
                 ipvsadm -a -t 198.18.0.100:80 -r 198.18.0.13:80 -g -w 1";
    assert_eq!(
        run.changes,
        [rules.to_string(), sh::boot_entry_write(ENTRY)]
    );
    let s = lab.state();
    assert_eq!(s.ipvs, table(TABLE));
    assert_eq!(
        s.content(&format!("{BOOT_DIR}/{ENTRY}")),
        Some(format!("{rules}\n"))
    );
}

#[tokio::test]
async fn a_second_run_changes_nothing() {
    let lab = Lab::new(State::new());
    let (_, second) = lab.twice(SERVICE).await;
    assert_eq!(
        (second.status, second.msg.as_str()),
        (Status::Ok, "tcp 198.18.0.100:80 rr with 2 real server(s)")
    );
    assert!(second.changes.is_empty(), "{second:?}");
}

#[tokio::test]
async fn check_mode_shows_the_diff_and_changes_nothing() {
    let before = with_table(
        "-A -t 198.18.0.100:80 -s rr\n-a -t 198.18.0.100:80 -r 198.18.0.12:80 -g -w 1\n",
    );
    let lab = Lab::new(before.clone());
    let run = lab.check_diff(SERVICE).await;
    assert_eq!(
        (run.status, run.msg.as_str()),
        (
            Status::Changed,
            "add real server 198.18.0.13:80 (dr, weight 1); kept for boot in /etc/lvslab-boot.d/50-ipvs-tcp_198.18.0.100_80"
        )
    );
    let diff = run.diff.clone().unwrap_or_default();
    assert!(
        diff.starts_with(
            "--- ipvs (host)\n+++ ipvs (desired)\n@@ -1,2 +1,3 @@\n tcp 198.18.0.100:80 rr\n   -> 198.18.0.12:80 dr w1\n+  -> 198.18.0.13:80 dr w1\n"
        ),
        "{diff}"
    );
    assert!(run.changes.is_empty(), "{run:?}");
    assert_eq!(lab.state(), before);
}

#[tokio::test]
async fn only_the_difference_is_changed_and_unmanaged_options_stay() {
    // Persistence is the inventory's (none here: removed); one-packet scheduling (`-o`) is not
    // managed and stays.
    let lab = Lab::new(with_table(
        "-A -t 198.18.0.100:80 -s rr -p 300 -o\n\
         -a -t 198.18.0.100:80 -r 198.18.0.12:80 -g -w 1\n\
         -a -t 198.18.0.100:80 -r 198.18.0.14:80 -g -w 1\n",
    ));
    let task = "ipvs:
  service:
    vip: 198.18.0.100
    port: 80
    scheduler: wrr
    real_servers:
      - { address: 198.18.0.12, port: 80, weight: 3 }
      - { address: 198.18.0.13, port: 80, weight: 1 }
  boot: false";
    let (first, second) = lab.twice(task).await;
    assert_eq!(
        first.msg,
        "scheduling of tcp 198.18.0.100:80 -> wrr; remove real server 198.18.0.14:80; \
         edit real server 198.18.0.12:80 (dr, weight 3); add real server 198.18.0.13:80 (dr, weight 1)"
    );
    assert_eq!(
        first.changes,
        ["ipvsadm -E -t 198.18.0.100:80 -s wrr -o && \
          ipvsadm -d -t 198.18.0.100:80 -r 198.18.0.14:80 && \
          ipvsadm -e -t 198.18.0.100:80 -r 198.18.0.12:80 -g -w 3 && \
          ipvsadm -a -t 198.18.0.100:80 -r 198.18.0.13:80 -g -w 1"]
    );
    assert_eq!(
        lab.state().ipvs,
        table(
            "-A -t 198.18.0.100:80 -s wrr -o\n\
             -a -t 198.18.0.100:80 -r 198.18.0.12:80 -g -w 3\n\
             -a -t 198.18.0.100:80 -r 198.18.0.13:80 -g -w 1\n"
        )
    );
    assert_eq!(second.status, Status::Ok, "{second:?}");
}

#[tokio::test]
async fn absent_deletes_the_service_and_its_boot_entry_once() {
    let lab = Lab::new(State::new());
    lab.run(SERVICE).await;
    let task = format!("{SERVICE}\n  state: absent");
    let (first, second) = lab.twice(&task).await;
    assert_eq!(
        (first.status, first.msg.as_str()),
        (
            Status::Changed,
            "delete service tcp 198.18.0.100:80; removed from boot: 50-ipvs-tcp_198.18.0.100_80"
        )
    );
    assert_eq!(lab.state(), State::new());
    assert_eq!(
        (second.status, second.msg.as_str()),
        (Status::Ok, "no service tcp 198.18.0.100:80")
    );
    assert!(second.changes.is_empty(), "{second:?}");
}

#[tokio::test]
async fn cleared_empties_the_table_and_every_ipvs_boot_entry_once() {
    let lab = Lab::new(State::new());
    lab.run(SERVICE).await;
    lab.run(&SERVICE.replace("port: 80\n", "port: 443\n")).await;
    assert_eq!(lab.state().ipvs.map(|t| t.services.len()), Some(2));
    let (first, second) = lab.twice("ipvs: { state: cleared }").await;
    assert_eq!(
        (first.status, first.msg.as_str()),
        (
            Status::Changed,
            "clear the IPVS table; removed from boot: 50-ipvs-tcp_198.18.0.100_443, 50-ipvs-tcp_198.18.0.100_80"
        )
    );
    assert_eq!(lab.state(), State::new());
    assert_eq!(
        (second.status, second.msg.as_str()),
        (Status::Ok, "IPVS table empty")
    );
    assert!(second.changes.is_empty(), "{second:?}");
}

#[tokio::test]
async fn healthy_only_leaves_out_a_server_that_fails_its_check_and_keeps_no_boot_entry() {
    let mut host = State::new();
    host.http.insert("http://198.18.0.12:80/".into(), 200);
    host.http.insert("http://198.18.0.13:80/".into(), 502);
    let lab = Lab::new(host);
    let task = format!("{SERVICE}\n  healthy_only: true");
    let (first, second) = lab.twice(&task).await;
    assert_eq!(
        first.msg,
        "add service tcp 198.18.0.100:80 (rr); add real server 198.18.0.12:80 (dr, weight 1)"
    );
    assert!(
        first.sent.contains(
            &sh::http_status("http://198.18.0.13:80/", 3)
                .line()
                .to_string()
        ),
        "{:?}",
        first.sent
    );
    let s = lab.state();
    assert_eq!(
        s.ipvs,
        table("-A -t 198.18.0.100:80 -s rr\n-a -t 198.18.0.100:80 -r 198.18.0.12:80 -g -w 1\n")
    );
    assert!(!s.files.keys().any(|p| p.starts_with(BOOT_DIR)));
    assert_eq!(second.status, Status::Ok, "{second:?}");
}

/// A host with `saved` as its IPVS table whose real servers 198.18.0.12 and .13 answer their
/// health check with `codes`.
fn checked(saved: &str, codes: [u16; 2]) -> Lab {
    let mut host = with_table(saved);
    for (address, code) in ["198.18.0.12", "198.18.0.13"].into_iter().zip(codes) {
        host.http.insert(format!("http://{address}:80/"), code);
    }
    Lab::new(host)
}

/// keepalived's local sorry server (this host, 10.0.0.11, on the service's port) stays while
/// every real server fails its check, and goes once one answers again.
#[tokio::test]
async fn the_sorry_server_stays_while_no_real_server_is_healthy() {
    let sorry_table =
        "-A -t 198.18.0.100:80 -s rr\n-a -t 198.18.0.100:80 -r 10.0.0.11:80 -g -w 1\n";
    let task = format!("{SERVICE}\n    sorry_server: local\n  healthy_only: true");
    let lab = checked(sorry_table, [502, 502]);
    let all_down = lab.run(&task).await;
    assert_eq!(all_down.status, Status::Ok, "{all_down:?}");
    assert_eq!(lab.state().ipvs, table(sorry_table));

    let one_back = checked(sorry_table, [200, 502]).run(&task).await;
    assert_eq!(
        one_back.msg,
        "remove real server 10.0.0.11:80; add real server 198.18.0.12:80 (dr, weight 1)"
    );
}

/// With `inhibit_on_failure` keepalived keeps a failed server at weight 0: `up` puts it back
/// to its weight only once it answers its check, and the sorry server stays while every one is
/// at 0.
#[tokio::test]
async fn a_server_keepalived_inhibited_gets_its_weight_back_only_when_healthy() {
    let inhibited = "-A -t 198.18.0.100:80 -s rr\n-a -t 198.18.0.100:80 -r 10.0.0.11:80 -g -w 1\n-a -t 198.18.0.100:80 -r 198.18.0.12:80 -g -w 0\n-a -t 198.18.0.100:80 -r 198.18.0.13:80 -g -w 0\n";
    let task = format!("{SERVICE}\n    sorry_server: local\n  healthy_only: true");
    let lab = checked(inhibited, [502, 502]);
    let all_down = lab.run(&task).await;
    assert_eq!(all_down.status, Status::Ok, "{all_down:?}");
    assert_eq!(lab.state().ipvs, table(inhibited));

    let one_back = checked(inhibited, [200, 502]).run(&task).await;
    assert_eq!(
        one_back.msg,
        "remove real server 10.0.0.11:80; edit real server 198.18.0.12:80 (dr, weight 1)"
    );
}

/// keepalived changes the table too: a real server whose check passed between `up`'s query
/// and its change was added by keepalived meanwhile. ipvsadm refuses the second add; the
/// table is read again, nothing is left to do, and the task has not failed.
#[tokio::test]
async fn a_server_keepalived_added_meanwhile_is_not_a_failure() {
    let one_out = "-A -t 198.18.0.100:80 -s rr\n-a -t 198.18.0.100:80 -r 198.18.0.12:80 -g -w 1\n";
    // 198.18.0.13 added by keepalived right after up read the table.
    let added_meanwhile = || {
        let mut host = with_table(one_out);
        host.ipvs_meanwhile = Table::parse(TABLE)
            .map(|t| {
                vec![crate::lvs::ipvs::Rule::AddServer {
                    key: t.services[0].key,
                    server: t.services[0].real_servers[1].clone(),
                }]
            })
            .unwrap_or_default();
        host
    };
    let task = format!("{SERVICE}\n  healthy_only: true");
    let mut host = added_meanwhile();
    for address in ["198.18.0.12", "198.18.0.13"] {
        host.http.insert(format!("http://{address}:80/"), 200);
    }
    let lab = Lab::new(host);
    let run = lab.run(&task).await;
    assert_eq!(run.status, Status::Changed, "{run:?}");
    assert_eq!(lab.state().ipvs, table(TABLE));
    // Without keepalived (manual mode) the same refusal fails the task.
    let run = Lab::new(added_meanwhile()).run(SERVICE).await;
    assert_eq!(run.status, Status::Failed, "{run:?}");
    assert!(
        run.msg.contains("Destination already exists"),
        "{}",
        run.msg
    );
}

/// keepalived removed the sorry server itself when a real server came back, between `up`'s
/// query and its change: the removal fails ("No such destination"), the table is read again,
/// and what is left is done.
#[tokio::test]
async fn a_sorry_server_keepalived_removed_meanwhile_is_not_a_failure() {
    let sorry_table =
        "-A -t 198.18.0.100:80 -s rr\n-a -t 198.18.0.100:80 -r 10.0.0.11:80 -g -w 1\n";
    let task = format!("{SERVICE}\n    sorry_server: local\n  healthy_only: true");
    let mut host = checked(sorry_table, [200, 200]).state();
    host.ipvs_meanwhile = Table::parse(sorry_table)
        .map(|t| {
            vec![crate::lvs::ipvs::Rule::DeleteServer {
                key: t.services[0].key,
                endpoint: t.services[0].real_servers[0].endpoint,
            }]
        })
        .unwrap_or_default();
    let lab = Lab::new(host);
    let run = lab.run(&task).await;
    assert_eq!(run.status, Status::Changed, "{run:?}");
    assert_eq!(lab.state().ipvs, table(TABLE));
}

/// A scheduler's flags are part of the service: set with `-b`, and a drifted set (a flag
/// added by hand) given again with `-E`, which clears what it does not name.
#[tokio::test]
async fn scheduler_flags_are_set_and_drift_is_repaired() {
    let task = SERVICE.replace(
        "    scheduler: rr\n",
        "    scheduler: sh\n    scheduler_flags: [sh-port]\n",
    );
    let lab = Lab::new(State::new());
    let run = lab.run(&task).await;
    assert_eq!(run.status, Status::Changed, "{run:?}");
    assert!(
        run.msg
            .starts_with("add service tcp 198.18.0.100:80 (sh (sh-port));"),
        "{}",
        run.msg
    );
    assert!(
        run.changes[0].starts_with("ipvsadm -A -t 198.18.0.100:80 -s sh -b sh-port && "),
        "{:?}",
        run.changes
    );
    assert_eq!(lab.run(&task).await.status, Status::Ok);

    let drifted = TABLE.replace("-s rr", "-s sh -b sh-fallback,sh-port");
    let lab = Lab::new(with_table(&drifted));
    let run = lab.run(&task).await;
    assert_eq!(
        run.msg,
        "scheduling of tcp 198.18.0.100:80 -> sh (sh-port); kept for boot in /etc/lvslab-boot.d/50-ipvs-tcp_198.18.0.100_80"
    );
    assert_eq!(
        run.changes[0],
        "ipvsadm -E -t 198.18.0.100:80 -s sh -b sh-port"
    );
    assert_eq!(
        lab.state().ipvs,
        table(&TABLE.replace("-s rr", "-s sh -b sh-port"))
    );
}

/// With `sorry_server_inhibit` keepalived keeps the sorry server at weight 0 while real servers
/// serve, and gives it its weight when none does: `up` leaves it as it is either way.
#[tokio::test]
async fn an_inhibited_sorry_server_is_keepalived_s_at_any_weight() {
    let task = format!(
        "{SERVICE}\n    sorry_server: local\n    on_failure: {{ sorry_server_inhibit: true }}\n  healthy_only: true"
    );
    let standing_by = format!("{TABLE}-a -t 198.18.0.100:80 -r 10.0.0.11:80 -g -w 0\n");
    let run = checked(&standing_by, [200, 200]).run(&task).await;
    assert_eq!(run.status, Status::Ok, "{run:?}");
    let answering = "-A -t 198.18.0.100:80 -s rr\n-a -t 198.18.0.100:80 -r 10.0.0.11:80 -g -w 1\n";
    let lab = checked(answering, [502, 502]);
    assert_eq!(lab.run(&task).await.status, Status::Ok);
    // One back: it is added; the sorry server goes back to 0 by keepalived's hand, not up's.
    let run = checked(answering, [200, 502]).run(&task).await;
    assert_eq!(run.msg, "add real server 198.18.0.12:80 (dr, weight 1)");
}

#[tokio::test]
async fn a_kernel_without_ipvs_and_a_refusal_fail_the_task_in_the_host_s_words() {
    let run = Lab::new(State {
        ipvs: None,
        ..State::new()
    })
    .run(SERVICE)
    .await;
    assert_eq!(run.status, Status::Failed);
    assert!(
        run.msg.starts_with(
            "a has no IPVS in its kernel (ipvsadm: Can't initialize ipvs: Protocol not available"
        ),
        "{}",
        run.msg
    );
    let lab = Lab::new(State::new().unprivileged());
    let run = lab.run(SERVICE).await;
    assert_eq!(
        (run.status, run.msg.as_str()),
        (
            Status::Failed,
            "ipvsadm failed (exit status 2): Permission denied (you must be root)"
        )
    );
    assert_eq!(lab.state(), State::new().unprivileged());
}

/// `services:` is the whole table: a persistent service and a firewall mark are built, one
/// service of an earlier setup is deleted, its boot entry replaced by one for the table; drift
/// on one service is said on that service; a second run changes nothing.
#[tokio::test]
async fn services_make_the_whole_table_and_say_which_service_changes() {
    let lab = Lab::new(State::new());
    lab.run(SERVICE).await;
    let services = "ipvs:
  services:
    - vip: 198.18.0.100
      port: 8080
      ports: [8080]
      scheduler: wlc
      persistence: { timeout: 300, granularity: 255.255.255.0 }
      real_servers: [{ address: 198.18.0.12, port: 8080, weight: 1 }]
    - vip: 198.18.0.100
      port: 8081
      fwmark: 1
      ports: [8081, 8082]
      real_servers: [{ address: 198.18.0.13, port: 8081, weight: 2 }]";
    let (first, second) = lab.twice(services).await;
    assert_eq!(first.status, Status::Changed);
    assert_eq!(
        first.msg,
        "delete service tcp 198.18.0.100:80; add service tcp 198.18.0.100:8080 (wlc persistent 300 s per 255.255.255.0); \
         tcp 198.18.0.100:8080: add real server 198.18.0.12:8080 (dr, weight 1); add service fwmark 1 (rr); \
         fwmark 1: add real server 198.18.0.13:8081 (dr, weight 2); kept for boot in /etc/lvslab-boot.d/50-ipvs-table; \
         removed from boot: 50-ipvs-tcp_198.18.0.100_80"
    );
    let table_now = "-A -t 198.18.0.100:8080 -s wlc -p 300 -M 255.255.255.0\n\
                     -a -t 198.18.0.100:8080 -r 198.18.0.12:8080 -g -w 1\n\
                     -A -f 1 -s rr\n\
                     -a -f 1 -r 198.18.0.13:8081 -g -w 2\n";
    assert_eq!(lab.state().ipvs, table(table_now));
    assert!(
        lab.state()
            .content(&format!("{BOOT_DIR}/50-ipvs-table"))
            .is_some_and(|c| c.contains("ipvsadm -A -f 1 -s rr")),
        "{:?}",
        lab.state()
    );
    assert_eq!(lab.state().content(&format!("{BOOT_DIR}/{ENTRY}")), None);
    assert_eq!(
        (second.status, second.msg.as_str()),
        (
            Status::Ok,
            "tcp 198.18.0.100:8080 wlc persistent 300 s per 255.255.255.0 with 1 real server(s); fwmark 1 rr with 1 real server(s)"
        )
    );
    // Drift on the mark's service only: said on it.
    let drifted = Lab::new(with_table(&table_now.replace("-w 2", "-w 5")));
    let drift = drifted.run(services).await;
    assert_eq!(
        drift.msg,
        "fwmark 1: edit real server 198.18.0.13:8081 (dr, weight 2); kept for boot in /etc/lvslab-boot.d/50-ipvs-table"
    );
}
