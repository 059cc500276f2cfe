//! The load balancer live: its hosts connected (directors, real servers, and the client
//! requests are sent from), and what probes, drills and the benchmark all ask of it: who holds
//! the VIP, each director's state, requests through the VIP, the pair's election. `lvs` is the
//! model; this is the model met with the hosts.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::fleet::{Connected, Fleet};
use crate::inventory::{Host, Inventory};
use crate::lvs::{Director, DirectorState, Lvs, RealServer};
use crate::programs::{self, Program};
use crate::report::{Event, Reporter};
use crate::transport::local::Local;
use crate::transport::sh::{self, Answer};
use crate::transport::{ExecOutput, Session};

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

/// How long one of verify's GETs through the VIP may take: a lost SYN is sent again after 1 s,
/// and a request that needed that was answered, not failed; a dead VIP still fails 20 requests
/// within a minute.
pub const HTTP_TIMEOUT_SECS: u32 = 3;

/// How long a probe's command may take on this machine when there is no client host.
const LOCAL_TIMEOUT: Duration = Duration::from_secs(120);

pub async fn run(session: &Session, cmd: &str) -> Result<ExecOutput, String> {
    session.run(cmd).await.map_err(|e| e.to_string())
}

/// A query's value, or why there is none in words.
pub async fn read<T>(session: &Session, query: &sh::Read<T>) -> Result<T, String> {
    session.read(query).await.map_err(|e| e.to_string())
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
        let query = sh::address_holders(&self.vip());
        let sessions = self
            .directors
            .iter()
            .map(|d| (d.director.name.as_str(), &d.conn.session))
            .chain(
                self.real_servers
                    .iter()
                    .map(|r| (r.real_server.name.as_str(), &r.conn.session)),
            );
        let query = &query;
        let found = futures::future::join_all(
            sessions.map(|(name, s)| async move { (name, read(s, query).await) }),
        )
        .await;
        let mut holders = Vec::new();
        for (name, held) in found {
            for h in held.unwrap_or_default() {
                if crate::lvs::names::holds_vip_on(&h.device) {
                    holders.push((name.to_string(), h.device));
                }
            }
        }
        holders
    }

    /// Each director's state now (unreachable when it cannot be read).
    pub async fn director_states(&self) -> Vec<(String, DirectorState)> {
        let query = &sh::director_sample(&self.vip());
        futures::future::join_all(self.directors.iter().map(|d| async move {
            let state = read(&d.conn.session, query)
                .await
                .map_or(DirectorState::Unreachable, |flags| flags.state());
            (d.director.name.clone(), state)
        }))
        .await
    }

    /// Each director as keepalived itself says (verify, status): its state and keepalived's
    /// own numbers, read from its state dump; watched for `window` when given (verify: a
    /// BACKUP must hear adverts meanwhile). A keepalived that cannot dump its state is read
    /// from the host as the drills read it, and the detail says so.
    pub async fn director_readings(&self, window: Option<Duration>) -> Vec<(String, Reading)> {
        let window_ms = window.map(|w| u32::try_from(w.as_millis()).unwrap_or(u32::MAX));
        let query = &sh::keepalived_live(window_ms);
        let sample = &sh::director_sample(&self.vip());
        futures::future::join_all(self.directors.iter().map(|d| async move {
            let session = &d.conn.session;
            let reading = match read(session, query).await {
                Err(why) => Reading {
                    state: DirectorState::Unreachable,
                    detail: why,
                    instance: None,
                    foreign_adverts: None,
                },
                Ok(live) => match live.state() {
                    Some(state) => Reading {
                        state,
                        detail: live_detail(&live, window),
                        instance: live.instance().cloned(),
                        foreign_adverts: foreign_adverts(&live, window),
                    },
                    None => match read(session, sample).await {
                        Ok(flags) => Reading {
                            state: flags.state(),
                            detail: "read from the VIP: this keepalived cannot dump its state"
                                .into(),
                            instance: None,
                            foreign_adverts: None,
                        },
                        Err(why) => Reading {
                            state: DirectorState::Unreachable,
                            detail: why,
                            instance: None,
                            foreign_adverts: None,
                        },
                    },
                },
            };
            (d.director.name.clone(), reading)
        }))
        .await
    }

    /// `count` GETs of `url` from the client, one after another, each given
    /// [`HTTP_TIMEOUT_SECS`].
    pub async fn http_answers(&self, url: &str, count: u32) -> Result<Vec<Answer>, String> {
        self.http_answers_from(url, count, None).await
    }

    /// [`LvsHosts::http_answers`] from another address of the client's (another client, as
    /// IPVS sees it).
    pub async fn http_answers_from(
        &self,
        url: &str,
        count: u32,
        source: Option<IpAddr>,
    ) -> Result<Vec<Answer>, String> {
        read(
            &self.client.session,
            &sh::http_probe_from(url, count, HTTP_TIMEOUT_SECS, source),
        )
        .await
    }

    /// Whom the client's ARP entry for the VIP names: a director, or a MAC no director has
    /// (`None`: the client has no entry, or it could not be read).
    pub async fn client_follows(&self) -> Option<String> {
        let mac = read(&self.client.session, &sh::neigh_lladdr(&self.vip()))
            .await
            .ok()??;
        for d in &self.directors {
            let own = read(&d.conn.session, &sh::mac_address(&d.director.interface)).await;
            if own.is_ok_and(|own| own.eq_ignore_ascii_case(&mac)) {
                return Some(format!(
                    "the client's ARP entry names {} ({mac})",
                    d.director.name
                ));
            }
        }
        Some(format!("the client's ARP entry names {mac}, no director's"))
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

/// A director's state as read live, and keepalived's own numbers behind it.
#[derive(Debug, Clone)]
pub struct Reading {
    pub state: DirectorState,
    /// keepalived's priority and adverts, or how the state was read.
    pub detail: String,
    /// The instance as keepalived's last dump showed it (`None`: no dump was read).
    pub instance: Option<sh::VrrpInstance>,
    /// Adverts for its VRID that were not the pair's while it was watched (`None`: not
    /// watched).
    pub foreign_adverts: Option<u64>,
}

impl Reading {
    /// `BACKUP (priority 50, ...)`, and what a state outside VRRP means.
    pub fn words(&self) -> String {
        let mut text = self.state.word().to_string();
        if !self.detail.is_empty() {
            text.push_str(&format!(" ({})", self.detail));
        }
        if let Some(why) = self.state.meaning() {
            text.push_str(&format!(": {why}"));
        }
        text
    }
}

/// keepalived's numbers for a reading: its effective priority, and the adverts it sent or
/// heard while watched.
fn live_detail(live: &sh::KeepalivedLive, window: Option<Duration>) -> String {
    let Some(now) = live.instance() else {
        return String::new();
    };
    let mut words = vec![format!("priority {}", now.effective_priority)];
    let first = live.dumps.first().and_then(|d| d.as_ref()?.first());
    if let (Some(before), Some(w), true) = (first, window, live.dumps.len() > 1) {
        let secs = w.as_secs_f64();
        let heard = now.adverts_received.saturating_sub(before.adverts_received);
        let sent = now.adverts_sent.saturating_sub(before.adverts_sent);
        words.push(format!(
            "adverts in {secs:.1} s: {sent} sent, {heard} heard"
        ));
        let foreign = now.foreign_adverts.saturating_sub(before.foreign_adverts);
        if foreign > 0 {
            words.push(format!(
                "{foreign} foreign: for its VRID with another VIP list or password"
            ));
        }
    }
    words.join(", ")
}

/// The adverts for its VRID that were not the pair's, between the first and the last dump of a
/// watched reading.
fn foreign_adverts(live: &sh::KeepalivedLive, window: Option<Duration>) -> Option<u64> {
    let now = live.instance()?;
    let before = live.dumps.first().and_then(|d| d.as_ref()?.first())?;
    (window.is_some() && live.dumps.len() > 1)
        .then(|| now.foreign_adverts.saturating_sub(before.foreign_adverts))
}

/// Whether keepalived runs on the host (the first field of [`sh::director_sample`]).
pub async fn keepalived_runs(session: &Session, vip: &str) -> bool {
    session
        .read_timeout(&sh::director_sample(vip), Duration::from_secs(3))
        .await
        .is_ok_and(|flags| flags.keepalived_runs)
}

/// Two or more directors MASTER at once (a split brain), in words: who, and for how long: since the last
/// of them became MASTER, by its keepalived's transition time and `now` (seconds since the
/// epoch, this machine's clock). `None` with at most one MASTER.
pub fn split_brain(readings: &[(String, Reading)], now: f64) -> Option<String> {
    let masters: Vec<(&str, Option<f64>)> = readings
        .iter()
        .filter(|(_, r)| r.state == DirectorState::Master)
        .map(|(n, r)| {
            let since = r.instance.as_ref().map(|i| i.last_transition);
            (n.as_str(), since.filter(|t| *t > 0.0))
        })
        .collect();
    if masters.len() < 2 {
        return None;
    }
    let names: Vec<&str> = masters.iter().map(|(n, _)| *n).collect();
    let who = if names.len() == 2 {
        format!("{} and {} are both MASTER", names[0], names[1])
    } else {
        format!("{} are all MASTER", names.join(", "))
    };
    let since = masters
        .iter()
        .map(|(_, t)| *t)
        .collect::<Option<Vec<f64>>>()
        .and_then(|times| times.into_iter().reduce(f64::max));
    Some(match since {
        Some(t) => format!(
            "{who}, for {:.0} s (since the last of them became MASTER)",
            (now - t).max(0.0)
        ),
        None => who,
    })
}

/// Seconds since the epoch on this machine's clock.
pub fn epoch_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// A freshly started pair elects its MASTER after ~3 adverts: wait for that, not longer.
pub async fn wait_for_election(hosts: &LvsHosts<'_>) {
    let advert = hosts.lvs.vrrp.as_ref().map_or(1, |v| v.advert_int);
    let deadline = Instant::now() + Duration::from_secs(u64::from(advert) * 4 + 2);
    let mut states = hosts.director_states().await;
    // The MASTER to expect: the director in VRRP with the highest priority (preemption).
    let settled = |states: &[(String, DirectorState)]| {
        let best = hosts
            .directors
            .iter()
            .filter(|d| {
                states
                    .iter()
                    .any(|(n, s)| n == &d.director.name && s.in_vrrp())
            })
            .max_by_key(|d| d.director.vrrp.as_ref().map(|v| v.priority));
        // No keepalived in VRRP: nothing to wait for. With nopreempt any MASTER is the one.
        best.is_none_or(|d| {
            states.iter().any(|(n, s)| {
                *s == DirectorState::Master && (n == &d.director.name || !hosts.lvs.preempts())
            })
        })
    };
    while !settled(&states) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
        states = hosts.director_states().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(state: DirectorState, since: Option<f64>) -> Reading {
        Reading {
            state,
            detail: String::new(),
            instance: since.map(|t| sh::VrrpInstance {
                name: "VI_1".into(),
                state: sh::VrrpWord::Master,
                effective_priority: 100,
                adverts_received: 0,
                adverts_sent: 0,
                foreign_adverts: 0,
                last_transition: t,
                nopreempt: None,
                preempt_delay: None,
                garp: None,
                tracked: Vec::new(),
                tracked_scripts: Vec::new(),
            }),
            foreign_adverts: None,
        }
    }

    /// A split brain lasts since the last director became MASTER; one MASTER is none.
    #[test]
    fn a_split_brain_in_words() {
        let one = [
            (
                "node1".to_string(),
                reading(DirectorState::Master, Some(100.0)),
            ),
            (
                "node4".to_string(),
                reading(DirectorState::Backup, Some(90.0)),
            ),
        ];
        assert_eq!(split_brain(&one, 200.0), None);
        let two = [
            (
                "node1".to_string(),
                reading(DirectorState::Master, Some(100.0)),
            ),
            (
                "node4".to_string(),
                reading(DirectorState::Master, Some(187.6)),
            ),
        ];
        assert_eq!(
            split_brain(&two, 200.0).unwrap(),
            "node1 and node4 are both MASTER, for 12 s (since the last of them became MASTER)"
        );
        let unknown = [
            ("a".to_string(), reading(DirectorState::Master, None)),
            ("b".to_string(), reading(DirectorState::Master, Some(1.0))),
            ("c".to_string(), reading(DirectorState::Master, Some(2.0))),
        ];
        assert_eq!(
            split_brain(&unknown, 9.0).unwrap(),
            "a, b, c are all MASTER"
        );
    }
}
