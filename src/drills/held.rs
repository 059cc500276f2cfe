//! Connections held open through the VIP across a failover (`drill failover --hold N`): each
//! opened from the client before the fault and asked once (HTTP/1.1, kept alive), asked again
//! once the BACKUP holds the VIP and the client's ARP entry names it. A connection survives when
//! the new MASTER knows where it goes without a SYN: an entry synced from the old MASTER
//! (`sync_daemon`), or a scheduler that sends a packet of no known connection to the same real
//! server again (`mh` with `sloppy_tcp`). Otherwise the new MASTER has no entry, its own stack
//! answers the packet with a reset, and the client's connection ends.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::lvs::{Endpoint, Lvs, Scheduler, ipvs_sysctl};
use crate::transport::{Session, TcpStream};

/// How long one request on a held connection may take.
const ASK_TIMEOUT: Duration = Duration::from_secs(3);
/// The most bytes of one answer's head read before it counts as no answer.
const MAX_HEAD: usize = 16 * 1024;

/// Connections held open, each with the real server that answered its first request.
pub struct Held {
    endpoint: Endpoint,
    conns: Vec<(TcpStream, String)>,
    /// Connections whose first request already failed, by what happened.
    unopened: BTreeMap<String, usize>,
}

/// What the held connections came to after the takeover.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HeldOutcome {
    /// Answered before the fault.
    pub opened: usize,
    /// Answered again after the takeover, by the real server of their first answer.
    pub survived: usize,
    /// Answered again, by another real server (a connection cannot move: its server took it
    /// up as a new one).
    pub moved: usize,
    /// Not answered, by what the client saw.
    pub failed: BTreeMap<String, usize>,
    /// Why they should survive (`None`: they should not), from [`promise`].
    pub promise: Option<String>,
}

impl HeldOutcome {
    /// Whether the run kept what the inventory promises of its held connections.
    pub fn kept_promise(&self) -> bool {
        self.promise.is_none() || (self.opened > 0 && self.survived == self.opened)
    }

    /// `10 of 10 held connections answered after the takeover, each by its real server
    /// (connection sync: ...)`.
    pub fn words(&self, backup: &str) -> String {
        let mut words = format!(
            "{} of {} held connections answered after the takeover by {backup}",
            self.survived, self.opened
        );
        if self.moved > 0 {
            words.push_str(&format!(
                ", {} more by another real server than before",
                self.moved
            ));
        }
        if !self.failed.is_empty() {
            let failed: Vec<String> = self
                .failed
                .iter()
                .map(|(why, n)| format!("{n} {why}"))
                .collect();
            words.push_str(&format!(" ({})", failed.join(", ")));
        }
        match &self.promise {
            Some(why) if self.kept_promise() => words.push_str(&format!(": {why}")),
            Some(why) => words.push_str(&format!(": NOT as promised ({why})")),
            None => words.push_str(&format!(": {NO_PROMISE}")),
        }
        words
    }
}

/// Why held connections break on a failover, and the remedies.
const NO_PROMISE: &str = "without connection sync the new MASTER has no entry for them and resets them \
     (`lvs.vrrp.sync_daemon: true` keeps them; so does the mh scheduler with `sloppy_tcp: 1`)";

/// Whether connections established through the VIP should outlive a failover with this
/// inventory, and why; `None`: they should not.
pub fn promise(lvs: &Lvs) -> Option<String> {
    if lvs.vrrp.as_ref().is_some_and(|v| v.sync_daemon) {
        return Some("connection sync: the BACKUP held their entries".into());
    }
    let sloppy = ipvs_sysctl("sloppy_tcp");
    let sloppy = lvs
        .ipvs_sysctls
        .iter()
        .any(|s| s.key == sloppy && s.value == "1");
    (lvs.service().scheduler == Scheduler::Mh && sloppy).then(|| {
        "mh with sloppy_tcp: the new MASTER took them up and hashed each to the same real server"
            .into()
    })
}

impl Held {
    /// Opens `count` connections from the client to `endpoint` at once, each asked once; the
    /// ones that got no answer are counted, not held. An error when none could be opened.
    pub async fn open(client: &Session, endpoint: &Endpoint, count: u32) -> Result<Held, String> {
        let address = endpoint.address.to_string();
        let request = request(endpoint);
        let opened = futures::future::join_all((0..count).map(|_| async {
            let mut stream = client
                .tcp_stream(&address, endpoint.port)
                .ok_or("this client has no connection to open them through")?
                .await?;
            let who = ask(&mut stream, &request).await?;
            Ok::<_, String>((stream, who))
        }))
        .await;
        let mut held = Held {
            endpoint: *endpoint,
            conns: Vec::new(),
            unopened: BTreeMap::new(),
        };
        for result in opened {
            match result {
                Ok(conn) => held.conns.push(conn),
                Err(e) => *held.unopened.entry(e).or_insert(0) += 1,
            }
        }
        if held.conns.is_empty() {
            let why: Vec<String> = held
                .unopened
                .iter()
                .map(|(e, n)| format!("{n} {e}"))
                .collect();
            return Err(format!(
                "no connection to {} could be held: {}",
                held.endpoint,
                why.join(", ")
            ));
        }
        Ok(held)
    }

    pub fn opened(&self) -> usize {
        self.conns.len()
    }

    /// Who answered the first requests: `node2 x5, node3 x5`.
    pub fn answered_by(&self) -> String {
        let mut by: BTreeMap<&str, usize> = BTreeMap::new();
        for (_, who) in &self.conns {
            *by.entry(who.as_str()).or_insert(0) += 1;
        }
        by.iter()
            .map(|(who, n)| format!("{who} x{n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Asks each connection once more, all at once; what they came to against `promise`.
    pub async fn ask_again(self, promise: Option<String>) -> HeldOutcome {
        let request = request(&self.endpoint);
        let answers =
            futures::future::join_all(self.conns.into_iter().map(|(mut stream, first)| {
                let request = request.clone();
                async move { (ask(&mut stream, &request).await, first) }
            }))
            .await;
        let mut outcome = HeldOutcome {
            opened: answers.len(),
            promise,
            ..HeldOutcome::default()
        };
        for (answer, first) in answers {
            match answer {
                Ok(who) if who == first => outcome.survived += 1,
                Ok(_) => outcome.moved += 1,
                Err(e) => *outcome.failed.entry(e).or_insert(0) += 1,
            }
        }
        outcome
    }
}

/// A GET of `/` that keeps the connection open for the next one.
fn request(endpoint: &Endpoint) -> Vec<u8> {
    format!(
        "GET / HTTP/1.1\r\nHost: {}\r\nUser-Agent: lvslab-drill-held\r\nConnection: keep-alive\r\n\r\n",
        endpoint.address
    )
    .into_bytes()
}

/// Sends `request` and reads one whole answer (its length from Content-Length): the first word
/// of a `200` page (who answered), else what happened.
async fn ask(stream: &mut TcpStream, request: &[u8]) -> Result<String, String> {
    let work = async {
        stream
            .write_all(request)
            .await
            .map_err(|e| format!("not sent ({e})"))?;
        stream
            .flush()
            .await
            .map_err(|e| format!("not sent ({e})"))?;
        read_answer(stream).await
    };
    tokio::time::timeout(ASK_TIMEOUT, work)
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {} ms", ASK_TIMEOUT.as_millis())))
}

/// One HTTP answer from `stream`, read to the end of its body.
async fn read_answer(stream: &mut TcpStream) -> Result<String, String> {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        if data.len() > MAX_HEAD {
            return Err("an answer without an end to its head".into());
        }
        let n = stream
            .read(&mut buf)
            .await
            .map_err(|e| format!("reset ({e})"))?;
        if n == 0 {
            return Err(if data.is_empty() {
                "closed without an answer".into()
            } else {
                "closed in the middle of an answer".into()
            });
        }
        data.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&data[..head_end]).into_owned();
    let status = head.lines().next().unwrap_or("").trim().to_string();
    if status.split_whitespace().nth(1) != Some("200") {
        return Err(format!("answered {status}"));
    }
    let length = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.trim()
                .eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())?
        })
        .ok_or("an answer without Content-Length (the connection cannot be asked again)")?;
    while data.len() < head_end + length {
        let n = stream
            .read(&mut buf)
            .await
            .map_err(|e| format!("reset ({e})"))?;
        if n == 0 {
            return Err("closed in the middle of an answer".into());
        }
        data.extend_from_slice(&buf[..n]);
    }
    let body = String::from_utf8_lossy(&data[head_end..head_end + length]).into_owned();
    Ok(body
        .split_whitespace()
        .next()
        .unwrap_or("(an empty page)")
        .to_string())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio::net::TcpListener;

    use super::*;
    use crate::transport::local::Local;

    /// A web server on this machine that names itself `name` on every answer of a kept-alive
    /// connection, and closes each connection after `answers` answers.
    async fn server(name: &'static str, answers: usize) -> Endpoint {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let port = listener.local_addr().expect("its address").port();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    for _ in 0..answers {
                        match conn.read(&mut buf).await {
                            Ok(n) if n > 0 => {}
                            _ => return,
                        }
                        let body = format!("{name} 127.0.0.1\n");
                        let answer = format!(
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        if conn.write_all(answer.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Endpoint::new("127.0.0.1".parse().expect("an address"), port)
    }

    fn local() -> Session {
        Session::new(Arc::new(Local), false, Duration::from_secs(5))
    }

    #[tokio::test]
    async fn a_kept_alive_connection_answers_twice_and_a_closed_one_is_counted_failed() {
        let endpoint = server("node2", 2).await;
        let held = Held::open(&local(), &endpoint, 3)
            .await
            .expect("held connections");
        assert_eq!((held.opened(), held.answered_by()), (3, "node2 x3".into()));
        let promise = Some("a test".to_string());
        let outcome = held.ask_again(promise.clone()).await;
        assert_eq!((outcome.opened, outcome.survived, outcome.moved), (3, 3, 0));
        assert!(outcome.kept_promise());
        assert_eq!(
            outcome.words("node4"),
            "3 of 3 held connections answered after the takeover by node4: a test"
        );

        // A server that closes after one answer: the second ask finds the connection gone.
        let endpoint = server("node3", 1).await;
        let held = Held::open(&local(), &endpoint, 2).await.expect("held");
        let outcome = held.ask_again(promise).await;
        assert_eq!(outcome.survived, 0);
        assert_eq!(
            outcome.failed,
            BTreeMap::from([("closed without an answer".to_string(), 2)])
        );
        assert!(!outcome.kept_promise());
        assert!(
            outcome
                .words("node4")
                .ends_with("(2 closed without an answer): NOT as promised (a test)"),
            "{}",
            outcome.words("node4")
        );
        // Without a promise, the same is what the inventory leads to, with the remedy.
        let outcome = HeldOutcome {
            opened: 2,
            failed: BTreeMap::from([("closed without an answer".to_string(), 2)]),
            ..HeldOutcome::default()
        };
        assert!(outcome.kept_promise());
        assert!(outcome.words("node4").contains("sync_daemon: true"));
    }

    #[tokio::test]
    async fn nothing_to_connect_to_is_an_error_naming_what_happened() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let port = listener.local_addr().expect("its address").port();
        drop(listener);
        let endpoint = Endpoint::new("127.0.0.1".parse().expect("an address"), port);
        let err = Held::open(&local(), &endpoint, 2)
            .await
            .err()
            .expect("no connection");
        assert!(
            err.starts_with(&format!(
                "no connection to 127.0.0.1:{port} could be held: 2 "
            )),
            "{err}"
        );
    }

    #[test]
    fn sync_or_mh_with_sloppy_tcp_promise_survival_and_nothing_else_does() {
        // `lvs:` keys beside the VIP, and the VRRP keys beside the router id.
        let promised = |lvs: &str, vrrp: &str| {
            let text = format!(
                "lvs:\n  vip: 10.0.0.100\n{lvs}  vrrp: {{ virtual_router_id: 51{vrrp} }}\nhosts:\n  \
                 d1: {{ address: 10.0.0.11, interface: eth0, vrrp: {{ state: MASTER, priority: 100 }} }}\n  \
                 d2: {{ address: 10.0.0.14, interface: eth0, vrrp: {{ state: BACKUP, priority: 50 }} }}\n  \
                 node2: {{ address: 10.0.0.12, interface: eth0 }}\ngroups:\n  \
                 directors: {{ hosts: [d1, d2] }}\n  real_servers: {{ hosts: [node2] }}\n"
            );
            let (inventory, _) = crate::inventory::load_str(std::path::Path::new("i.yml"), text)
                .expect("the test's inventory");
            promise(inventory.lvs.as_ref().expect("lvs"))
        };
        assert_eq!(promised("  scheduler: rr\n", ""), None);
        assert!(
            promised("  scheduler: rr\n", ", sync_daemon: true")
                .is_some_and(|p| p.starts_with("connection sync"))
        );
        let sloppy = "  ipvs_settings: { sloppy_tcp: 1 }\n";
        assert!(
            promised(&format!("  scheduler: mh\n{sloppy}"), "")
                .is_some_and(|p| p.starts_with("mh with sloppy_tcp"))
        );
        assert_eq!(promised("  scheduler: mh\n", ""), None);
        assert_eq!(promised(&format!("  scheduler: rr\n{sloppy}"), ""), None);
    }
}
