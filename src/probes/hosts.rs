//! The load balancer's hosts, connected: directors, real servers, and the client requests are
//! sent from. The queries several probes and drills share (who holds the VIP, VRRP states,
//! requests through the VIP) are here.

use std::sync::Arc;
use std::time::Duration;

use crate::fleet::{Connected, Fleet};
use crate::inventory::{Host, Inventory};
use crate::lvs::{Director, Lvs, RealServer};
use crate::programs::{self, Program};
use crate::report::{Event, Reporter};
use crate::transport::local::Local;
use crate::transport::{ExecOutput, Session, sh};

/// A director with its connection.
#[derive(Clone)]
pub struct DirectorHost<'a> {
    pub director: &'a Director,
    pub conn: Arc<Connected>,
}

/// A real server with its connection.
#[derive(Clone)]
pub struct RealServerHost<'a> {
    pub real_server: &'a RealServer,
    pub conn: Arc<Connected>,
}

/// Where HTTP and ARP probes are sent from: the inventory's first `clients` host, else this
/// machine.
pub struct Client<'a> {
    pub name: String,
    pub session: Session,
    pub host: Option<&'a Host>,
    /// The programs of the hosts' list it does not have, and its family (for package names).
    absent: Vec<String>,
    family: String,
}

/// The programs a probe or a drill runs, per role: checked before it starts, so a missing
/// program is named with its package instead of being measured as a failure of the lab.
#[derive(Default)]
pub struct Needs {
    pub client: Vec<&'static Program>,
    pub directors: Vec<&'static Program>,
    pub real_servers: Vec<&'static Program>,
}

/// The load balancer's hosts, connected.
pub struct LvsHosts<'a> {
    pub lvs: &'a Lvs,
    pub directors: Vec<DirectorHost<'a>>,
    pub real_servers: Vec<RealServerHost<'a>>,
    pub client: Client<'a>,
    /// Hosts that could not be reached (reported as they were found).
    pub unreachable: Vec<String>,
}

/// One request of [`sh::http_probe`]: its HTTP status, the client's port, curl's exit status,
/// the page's first line (the lab's pages name their node).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub code: String,
    pub port: u16,
    pub exit: u8,
    pub page: String,
}

impl Answer {
    pub fn parse_all(text: &str) -> Vec<Answer> {
        text.lines()
            .map(|line| {
                let mut words = line.splitn(4, ' ');
                let code = words.next().unwrap_or("000").to_string();
                let port = words.next().and_then(|p| p.parse().ok()).unwrap_or(0);
                let exit = words.next().and_then(|e| e.parse().ok()).unwrap_or(0);
                let page = words.next().unwrap_or("").trim().to_string();
                Answer {
                    code,
                    port,
                    exit,
                    page,
                }
            })
            .collect()
    }

    pub fn ok(&self) -> bool {
        self.code == "200"
    }

    /// Why the request failed, in words (curl's exit status), or `None` when it was answered.
    pub fn failure(&self) -> Option<String> {
        if self.ok() {
            return None;
        }
        Some(match self.exit {
            0 => format!("HTTP {}", self.code),
            6 => "no such host".to_string(),
            7 => "refused".to_string(),
            28 => "no answer in time".to_string(),
            52 => "closed without an answer".to_string(),
            56 => "connection reset".to_string(),
            n => format!("curl exit {n}"),
        })
    }

    /// Who answered: the page's first word.
    pub fn who(&self) -> &str {
        self.page.split_whitespace().next().unwrap_or("?")
    }
}

/// How long one of verify's GETs through the VIP may take: a lost SYN is sent again after 1 s,
/// and a request that needed that was answered, not failed; a dead VIP still fails 20 requests
/// within a minute.
pub const HTTP_TIMEOUT_SECS: u32 = 3;

/// How long a probe's command may take on this machine when there is no client host.
const LOCAL_TIMEOUT: Duration = Duration::from_secs(120);

pub async fn run(session: &Session, cmd: &str) -> Result<ExecOutput, String> {
    session.run(cmd).await.map_err(|e| e.to_string())
}

impl<'a> LvsHosts<'a> {
    /// Connects to every director, real server and the client at once; unreachable ones are
    /// reported and left out.
    pub async fn connect(
        inventory: &'a Inventory,
        lvs: &'a Lvs,
        fleet: &Fleet,
        reporter: &Reporter,
    ) -> LvsHosts<'a> {
        let client_host = inventory.client();
        let names: Vec<&str> = lvs
            .directors
            .iter()
            .map(|d| d.name.as_str())
            .chain(lvs.real_servers.iter().map(|r| r.name.as_str()))
            .chain(client_host.map(|h| h.name.as_str()))
            .collect();
        let results = futures::future::join_all(names.iter().map(|name| async move {
            match inventory.host(name) {
                Some(host) => fleet.connect(host).await.map_err(|e| e.to_string()),
                None => Err(format!("{name} is not a host of the inventory")),
            }
        }))
        .await;
        let mut conns = std::collections::HashMap::new();
        let mut unreachable = Vec::new();
        for (name, result) in names.iter().zip(results) {
            match result {
                Ok(c) => {
                    conns.insert(name.to_string(), c);
                }
                Err(error) => {
                    reporter.emit(Event::Unreachable {
                        host: name.to_string(),
                        error,
                    });
                    unreachable.push(name.to_string());
                }
            }
        }
        let directors = lvs
            .directors
            .iter()
            .filter_map(|d| {
                conns.get(&d.name).map(|c| DirectorHost {
                    director: d,
                    conn: c.clone(),
                })
            })
            .collect();
        let real_servers = lvs
            .real_servers
            .iter()
            .filter_map(|r| {
                conns.get(&r.name).map(|c| RealServerHost {
                    real_server: r,
                    conn: c.clone(),
                })
            })
            .collect();
        let client = match client_host.and_then(|h| conns.get(&h.name).map(|c| (h, c))) {
            Some((h, c)) => Client {
                name: h.name.clone(),
                session: c.session.clone(),
                host: Some(h),
                absent: c.facts.absent.clone(),
                family: c.facts.family.clone(),
            },
            None => Client {
                name: "this machine".to_string(),
                session: Session::new(Arc::new(Local), false, LOCAL_TIMEOUT),
                host: None,
                absent: programs::absent_here(programs::of(programs::Place::Host)),
                family: "debian".to_string(),
            },
        };
        LvsHosts {
            lvs,
            directors,
            real_servers,
            client,
            unreachable,
        }
    }

    /// Checks that every host has the programs `needs` names for its role; the error names each
    /// host, program and package that is missing.
    pub fn require(&self, needs: &Needs) -> Result<(), String> {
        let client = match self.client.host {
            Some(_) => format!("the client {}", self.client.name),
            None => "this machine (the client)".to_string(),
        };
        let mut lacking: Vec<String> = programs::lacking(
            &client,
            &needs.client,
            &self.client.absent,
            &self.client.family,
        )
        .into_iter()
        .collect();
        for d in &self.directors {
            let who = format!("the director {}", d.director.name);
            lacking.extend(d.conn.facts.lacking(&who, &needs.directors));
        }
        for r in &self.real_servers {
            let who = format!("the real server {}", r.real_server.name);
            lacking.extend(r.conn.facts.lacking(&who, &needs.real_servers));
        }
        if lacking.is_empty() {
            Ok(())
        } else {
            Err(lacking.join("; "))
        }
    }

    /// The URL of the (first) virtual service.
    pub fn url(&self) -> String {
        self.lvs.service().url()
    }

    pub fn vip(&self) -> String {
        self.lvs.service().vip.to_string()
    }

    /// Who holds the VIP on a device other than `lo`: `(host, device)`, directors and real
    /// servers both (a real server holding it on a real device would be a fault).
    pub async fn vip_holders(&self) -> Vec<(String, String)> {
        let cmd = sh::address_holders(&self.vip());
        let sessions = self
            .directors
            .iter()
            .map(|d| (d.director.name.as_str(), &d.conn.session))
            .chain(
                self.real_servers
                    .iter()
                    .map(|r| (r.real_server.name.as_str(), &r.conn.session)),
            );
        let cmd = &cmd;
        let outs = futures::future::join_all(
            sessions.map(|(name, s)| async move { (name, run(s, cmd).await) }),
        )
        .await;
        let mut holders = Vec::new();
        for (name, out) in outs {
            if let Ok(out) = out {
                for line in out.stdout_str().lines() {
                    let dev = line.split_whitespace().next().unwrap_or("");
                    if crate::lvs::names::holds_vip_on(dev) {
                        holders.push((name.to_string(), dev.to_string()));
                    }
                }
            }
        }
        holders
    }

    /// VRRP state per director: MASTER, BACKUP or STOPPED.
    pub async fn vrrp_states(&self) -> Vec<(String, String)> {
        let cmd = sh::vrrp_state(&self.vip());
        futures::future::join_all(self.directors.iter().map(|d| {
            let cmd = cmd.clone();
            async move {
                let state = run(&d.conn.session, &cmd)
                    .await
                    .map(|o| o.stdout_str().trim().to_string())
                    .unwrap_or_else(|e| format!("UNKNOWN ({e})"));
                (d.director.name.clone(), state)
            }
        }))
        .await
    }

    /// `count` GETs of `url` from the client, one after another, each given
    /// [`HTTP_TIMEOUT_SECS`].
    pub async fn http_answers(&self, url: &str, count: u32) -> Result<Vec<Answer>, String> {
        let out = run(
            &self.client.session,
            &sh::http_probe(url, count, HTTP_TIMEOUT_SECS),
        )
        .await?;
        Ok(Answer::parse_all(&out.stdout_str()))
    }

    /// The director that holds the VIP now.
    pub async fn active_director(&self) -> Option<DirectorHost<'a>> {
        let holders = self.vip_holders().await;
        self.directors
            .iter()
            .find(|d| holders.iter().any(|(n, _)| n == &d.director.name))
            .cloned()
    }
}
