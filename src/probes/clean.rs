//! After `down`: nothing of the lab is left on its hosts.

use super::{Findings, Verdict};
use crate::cancel::Cancel;
use crate::live::{LvsHosts, read, run};
use crate::report::{Event, Reporter};
use crate::transport::sh;

/// The VIP nowhere, keepalived stopped, the IPVS table empty and lvslab's nftables table gone
/// on every director, the real servers' sysctls restored, lvslab's sysctl file and web
/// listeners gone.
pub async fn verify_clean(hosts: &LvsHosts<'_>, reporter: &Reporter, cancel: &Cancel) -> Findings {
    let mut f = Findings {
        unreachable: hosts.unreachable.clone(),
        ..Findings::default()
    };
    reporter.emit(Event::Info {
        text: "\ncheck that nothing is left:".into(),
    });
    let work = async {
        let v = nowhere(hosts, "VIP nowhere", &hosts.vip()).await;
        f.push(reporter, v);
        if let Some(nat) = &hosts.lvs.nat {
            let v = nowhere(hosts, "gateway nowhere", &nat.gateway.to_string()).await;
            f.push(reporter, v);
        }
        for d in &hosts.directors {
            let ka = run(&d.conn.session, &sh::process_running("keepalived"))
                .await
                .map(|o| o.success())
                .unwrap_or(true);
            let table = if d.conn.facts.has_ipvs() {
                run(&d.conn.session, sh::ipvs_save().line())
                    .await
                    .map(|o| o.stdout_str().trim().to_string())
                    .unwrap_or_else(|e| e)
            } else {
                String::new()
            };
            let (restored, leftovers) = leftovers(&d.conn).await;
            let marks = read(&d.conn.session, &sh::mark_table())
                .await
                .map(|t| t.exists)
                .unwrap_or(true);
            f.push(
                reporter,
                Verdict::new(
                    format!("director {}", d.director.name),
                    !ka && table.is_empty() && !marks && restored,
                    format!(
                        "keepalived {}; IPVS table {}; nftables table ip {}: {}; {leftovers}",
                        if ka { "RUNNING" } else { "stopped" },
                        if table.is_empty() {
                            "empty".to_string()
                        } else {
                            table.replace('\n', "; ")
                        },
                        crate::lvs::marks::TABLE,
                        if marks { "still there" } else { "gone" }
                    ),
                ),
            );
        }
        for r in &hosts.real_servers {
            let (restored, leftovers) = leftovers(&r.conn).await;
            let conf = r.real_server.web.on(&r.conn.facts.family).ports_conf;
            let listeners = !matches!(
                read(&r.conn.session, &sh::file_stat(conf)).await,
                Ok(sh::FileStat::Absent)
            );
            f.push(
                reporter,
                Verdict::new(
                    format!("real server {}", r.real_server.name),
                    restored && !listeners,
                    format!(
                        "{leftovers}; {conf}: {}",
                        if listeners { "still there" } else { "gone" }
                    ),
                ),
            );
        }
    };
    if cancel.guard(work).await.is_none() {
        f.interrupted = true;
    }
    f
}

/// Whether lvslab left nothing on a host: no saved original values (kernel settings, routes),
/// no sysctl file, no boot entries, no lvslab-boot and no VRRP transition script or log; and
/// the words that say so.
async fn leftovers(conn: &crate::fleet::Connected) -> (bool, String) {
    let left = match read(&conn.session, &sh::lvslab_leftovers()).await {
        Ok(left) => left,
        Err(e) => return (false, format!("what lvslab leaves could not be read: {e}")),
    };
    let yes = |b: bool| if b { "yes" } else { "NO" };
    let there = |b: bool| if b { "still there" } else { "gone" };
    (
        left.none(),
        format!(
            "sysctls and routes restored: {}; {}: {}; boot entries: {}; lvslab-boot: {}; VRRP transition script and log: {}{}",
            yes(left.saved == 0),
            sh::SYSCTL_FILE,
            there(left.sysctl_file),
            left.boot_entries,
            there(left.boot),
            there(left.notify),
            if left.tls {
                format!("; {}: still there", crate::lvs::web::TLS_DIR)
            } else {
                String::new()
            }
        ),
    )
}

/// No host holds `address` (on any device, lo and tunl0 too).
async fn nowhere(hosts: &LvsHosts<'_>, probe: &str, address: &str) -> Verdict {
    let vip = address;
    let query = sh::address_holders(vip);
    let mut all = Vec::new();
    let sessions = hosts
        .directors
        .iter()
        .map(|d| (&d.director.name, &d.conn.session))
        .chain(
            hosts
                .real_servers
                .iter()
                .map(|r| (&r.real_server.name, &r.conn.session)),
        );
    for (name, session) in sessions {
        if let Ok(held) = read(session, &query).await {
            all.extend(held.iter().map(|h| format!("{name} {h}")));
        }
    }
    Verdict::new(
        probe,
        all.is_empty(),
        if all.is_empty() {
            format!("no host holds {vip}")
        } else {
            all.join(", ")
        },
    )
}
