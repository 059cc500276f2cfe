//! Watching a drill: the client's steady requests, the MACs that answer ARP for the VIP, the
//! moments each director gains or loses the VIP (its kernel's own address events), and the
//! directors' states sampled from this machine; all put on the drill's clock.
//!
//! HTTP requests are lvslab's own, sent over the client's SSH connection (a direct-tcpip
//! channel: the client's sshd makes the TCP connection, so the VIP sees the client), timed on
//! this machine: no process is started on the client per request, which a slow client (an
//! emulated VM) could not keep up with. Where the client's sshd refuses forwarding, a curl loop
//! on the client does it. Pings always run on the client.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;

use super::record::{
    ArpSample, ClientEntry, DirectorSample, DirectorState, Record, Request, Sample, VipEvent,
};
use crate::live::{LvsHosts, Needs};
use crate::lvs::Endpoint;
use crate::transport::sh::{self, ArpSeen, DirectorFlags, LoadRequest, VipChange};
use crate::transport::{ReadError, Session};

/// What the client sends.
#[derive(Debug, Clone)]
pub enum Probe {
    /// GET / of the virtual service (IPVS): who answered, and whether.
    Http(Endpoint),
    /// ICMP echo to the VIP: whether the VIP answers at all (a kernel without IPVS).
    Ping(String),
}

impl Probe {
    /// What a watch with this probe runs: the load's tool, the ARP watch's and the directors'
    /// sampling. A drill checks it before it starts: a missing program must not be measured as
    /// an outage.
    pub fn needs(&self, hosts: &LvsHosts<'_>) -> Needs {
        use crate::programs::{ARPING, AWK, IP, PGREP, PING, PS};
        let mut client = vec![IP];
        if let Probe::Ping(_) = self {
            client.push(PING);
        }
        if hosts.client.host.is_some() {
            client.push(ARPING);
        }
        Needs {
            client,
            directors: vec![IP, AWK, PGREP, PS],
            ..Needs::default()
        }
    }

    pub fn word(&self) -> &'static str {
        match self {
            Probe::Http(_) => "http",
            Probe::Ping(_) => "ping",
        }
    }
}

/// How often the directors are sampled.
const SAMPLE_EVERY: Duration = Duration::from_millis(250);
/// The pause after a director's sample that took `took`: [`SAMPLE_EVERY`], longer (up to
/// [`SAMPLE_PAUSE_MAX`]) on a host slow to answer, so the sampling takes at most a third of its
/// time. (In an emulated VM, four samples a second on each director took more CPU than there
/// was while a director rebooted: the other director's samples timed out for 12 to 28 s.)
fn sample_pause(took: Duration) -> Duration {
    SAMPLE_EVERY.max(took * 2).min(SAMPLE_PAUSE_MAX)
}
const SAMPLE_PAUSE_MAX: Duration = Duration::from_secs(1);

/// How long one director sample may take before the director counts as unreachable (an
/// emulated VM under load answers in over a second).
const SAMPLE_TIMEOUT: Duration = Duration::from_secs(3);
/// How long one request may take before it counts as failed (curl's `-m` in the shell loop).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// A query running on a host in the background, read when it ends.
type Job<T> = tokio::task::JoinHandle<Result<T, ReadError>>;

/// How the requests are made.
enum Load {
    /// A loop on the client; its requests carry the client's clock.
    Shell(Job<Vec<LoadRequest>>),
    /// lvslab's own requests over the client's SSH connection, on this machine's clock.
    Channels {
        task: tokio::task::JoinHandle<Vec<Request>>,
        stop: watch::Sender<bool>,
    },
}

/// A host's clock against ours.
#[derive(Clone)]
struct Clock {
    /// Their clock minus ours, in ms (from one round trip).
    skew_ms: i64,
}

impl Clock {
    async fn of(session: &Session) -> Option<Clock> {
        let before = epoch_ms();
        let theirs = session.read(&sh::epoch_ms()).await.ok()?;
        let after = epoch_ms();
        Some(Clock {
            skew_ms: theirs - (before + after) / 2,
        })
    }
}

/// A director's background job printing its VIP events.
struct VipWatch {
    name: String,
    session: Session,
    clock: Clock,
    job: Job<Vec<VipChange>>,
}

/// A drill being watched.
pub struct Watch {
    t0: Instant,
    epoch0_ms: i64,
    client: Session,
    client_clock: Clock,
    stop_flag: String,
    quiet_flag: String,
    load: Load,
    arp: Option<Job<Vec<ArpSeen>>>,
    vip_watches: Vec<VipWatch>,
    sampler: tokio::task::JoinHandle<Vec<Sample>>,
    stop_sampler: watch::Sender<bool>,
    pub record: Arc<Mutex<Record>>,
}

fn epoch_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

fn since(t0: Instant) -> i64 {
    i64::try_from(t0.elapsed().as_millis()).unwrap_or(i64::MAX)
}

impl Watch {
    /// Starts the requests (`rate` a second, until [`Watch::finish`] or `max`), the ARP
    /// sampling, the directors' VIP events and their sampling.
    pub async fn start(
        hosts: &LvsHosts<'_>,
        probe: Probe,
        rate: u32,
        max: Duration,
        title: String,
        ask_arp: bool,
    ) -> Result<Watch, String> {
        hosts.require(&probe.needs(hosts))?;
        let client = hosts.client.session.clone();
        let client_clock = Clock::of(&client)
            .await
            .ok_or_else(|| format!("the client {} did not tell its time", hosts.client.name))?;
        let nonce = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let stop_flag = format!("/tmp/lvslab-drill-{}-{nonce}.stop", std::process::id());
        let quiet_flag = format!("/tmp/lvslab-drill-{}-{nonce}.quiet", std::process::id());
        let secs = u32::try_from(max.as_secs()).unwrap_or(u32::MAX);
        let bound = max + Duration::from_secs(10);
        let interval = Duration::from_millis(u64::from((1000 / rate.max(1)).max(10)));

        let mut macs = Vec::new();
        for d in &hosts.directors {
            if let Ok(mac) = d
                .conn
                .session
                .read(&sh::mac_address(&d.director.interface))
                .await
            {
                macs.push((mac, d.director.name.clone()));
            }
        }
        // Each director's clock, read once: its VIP events and its samples are stamped by it.
        let mut clocks = Vec::new();
        for d in &hosts.directors {
            clocks.push(Clock::of(&d.conn.session).await);
        }
        let mut vip_watches = Vec::new();
        for (d, clock) in hosts.directors.iter().zip(&clocks) {
            let session = d.conn.session.clone();
            let Some(clock) = clock.clone() else {
                continue;
            };
            let query = sh::drill_vip_events(&hosts.vip(), secs, &stop_flag);
            let runner = session.clone();
            let job = tokio::spawn(async move { runner.read_timeout(&query, bound).await });
            vip_watches.push(VipWatch {
                name: d.director.name.clone(),
                session,
                clock,
                job,
            });
        }

        // The drill's clock starts now, on both scales.
        let (t0, epoch0_ms) = (Instant::now(), epoch_ms());
        let mut load_note = None;
        let load = match &probe {
            Probe::Http(endpoint) => {
                match Self::channel_load(&client, endpoint, interval, t0, max).await {
                    Ok(load) => load,
                    Err(why) => {
                        hosts.require(&Needs {
                            client: vec![crate::programs::CURL],
                            ..Needs::default()
                        })?;
                        load_note = Some(format!(
                            "requests by curl on the client ({why}): each starts a process there"
                        ));
                        let query = sh::drill_http_load(
                            &endpoint.http_url("/"),
                            interval.as_millis().try_into().unwrap_or(1000),
                            REQUEST_TIMEOUT.as_secs(),
                            secs,
                            &stop_flag,
                        );
                        let runner = client.clone();
                        Load::Shell(tokio::spawn(async move {
                            runner.read_timeout(&query, bound).await
                        }))
                    }
                }
            }
            Probe::Ping(vip) => {
                let query = sh::drill_ping_load(
                    vip,
                    interval.as_millis().try_into().unwrap_or(1000),
                    secs,
                    &stop_flag,
                );
                let runner = client.clone();
                Load::Shell(tokio::spawn(async move {
                    runner.read_timeout(&query, bound).await
                }))
            }
        };
        if !ask_arp {
            let _ = client.run(&sh::touch(&quiet_flag)).await;
        }
        let arp = hosts.client.host.map(|h| {
            let iface = h.interface.clone().unwrap_or_else(|| "eth0".into());
            let query = sh::drill_arp_watch(
                &iface,
                &hosts.vip(),
                secs,
                &stop_flag,
                &quiet_flag,
                &format!("lvsarp{:04x}", nonce % 0x10000),
            );
            let runner = client.clone();
            tokio::spawn(async move { runner.read_timeout(&query, bound).await })
        });
        let record = Arc::new(Mutex::new(Record {
            title,
            probe: probe.word().into(),
            load: load_note,
            directors: hosts
                .directors
                .iter()
                .map(|d| d.director.name.clone())
                .collect(),
            macs,
            ..Record::default()
        }));

        let (stop_sampler, stopped) = watch::channel(false);
        let targets: Vec<(String, Session)> = hosts
            .directors
            .iter()
            .map(|d| (d.director.name.clone(), d.conn.session.clone()))
            .collect();
        let vip = hosts.vip();
        // Each director sampled on its own: one slow to answer (its keepalived killed, its
        // session busy with a repair) must not hold back the other's state, which is when the
        // picture drew a takeover seconds after it happened.
        let sampler = tokio::spawn(async move {
            let loops = targets
                .into_iter()
                .zip(clocks)
                .map(|((name, session), clock)| {
                    let sample = sh::director_sample(&vip);
                    let mut stopped = stopped.clone();
                    async move {
                        let mut seen = Vec::new();
                        loop {
                            let asked = since(t0);
                            let flags = session.read_timeout(&sample, SAMPLE_TIMEOUT).await.ok();
                            let answered = since(t0);
                            // When the host looked, by its clock (its connection may have run
                            // other commands first); else midway between the ask and the answer.
                            let t_ms = match (flags, &clock) {
                                (Some(f), Some(c)) => {
                                    (f.read_at_ms - c.skew_ms - epoch0_ms).clamp(asked, answered)
                                }
                                _ => (asked + answered) / 2,
                            };
                            seen.push((t_ms, director_sample(&name, flags)));
                            let took = Duration::from_millis((answered - asked).max(0) as u64);
                            tokio::select! {
                                _ = tokio::time::sleep(sample_pause(took)) => {}
                                _ = stopped.changed() => break,
                            }
                        }
                        seen
                    }
                });
            merge_samples(futures::future::join_all(loops).await)
        });
        Ok(Watch {
            t0,
            epoch0_ms,
            client,
            client_clock,
            stop_flag,
            quiet_flag,
            load,
            arp,
            vip_watches,
            sampler,
            stop_sampler,
            record,
        })
    }

    /// Requests over the client's SSH connection, after one that shows the way works (an
    /// answer of any kind; a refused channel means the client's sshd forwards nothing).
    async fn channel_load(
        client: &Session,
        endpoint: &Endpoint,
        interval: Duration,
        t0: Instant,
        max: Duration,
    ) -> Result<Load, String> {
        let request = http_request(endpoint);
        let address = endpoint.address.to_string();
        let trial = client
            .exchange(&address, endpoint.port, request.as_bytes(), REQUEST_TIMEOUT)
            .ok_or("this client has no SSH connection to send them through")?
            .await;
        if let Err(e) = trial
            && (e.contains("rohibited") || e.contains("disabled"))
        {
            return Err(format!("its sshd forwards no connections: {e}"));
        }
        let (stop, mut stopped) = watch::channel(false);
        let client = client.clone();
        let port = endpoint.port;
        let task = tokio::spawn(async move {
            let mut done = Vec::new();
            let mut inflight = tokio::task::JoinSet::new();
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stopped.changed() => break,
                }
                if t0.elapsed() > max {
                    break;
                }
                let (client, address, request) = (client.clone(), address.clone(), request.clone());
                inflight.spawn(async move {
                    let start_ms = since(t0);
                    let answer = match client.exchange(
                        &address,
                        port,
                        request.as_bytes(),
                        REQUEST_TIMEOUT,
                    ) {
                        Some(f) => f.await,
                        None => Err("no SSH connection".into()),
                    };
                    let (ok, who, error) = match answer {
                        Ok(bytes) => http_answer(&bytes),
                        Err(e) => (false, None, Some(e)),
                    };
                    Request {
                        start_ms,
                        end_ms: since(t0),
                        ok,
                        who,
                        error,
                    }
                });
                while let Some(r) = inflight.try_join_next() {
                    done.extend(r.ok());
                }
            }
            while let Some(r) = inflight.join_next().await {
                done.extend(r.ok());
            }
            done
        });
        Ok(Load::Channels { task, stop })
    }

    /// The MAC of director `name`'s VRRP interface, as read at the start.
    pub fn mac_of(&self, name: &str) -> Option<String> {
        let r = self.record.lock().ok()?;
        r.macs
            .iter()
            .find(|(_, n)| n == name)
            .map(|(mac, _)| mac.clone())
    }

    /// The client stops asking ARP for the VIP (see [`ArpSample`]).
    pub async fn quiet_arp(&self) {
        // A failed touch only means the asking goes on.
        let _ = self.client.run(&sh::touch(&self.quiet_flag)).await;
    }

    /// Milliseconds since the drill started.
    pub fn now_ms(&self) -> i64 {
        since(self.t0)
    }

    /// Notes something at `t_ms` on the drill's clock.
    pub fn mark_at(&self, t_ms: i64, text: impl Into<String>) {
        if let Ok(mut r) = self.record.lock() {
            r.mark(t_ms, text);
        }
    }

    /// Notes something the drill did or saw, at this moment.
    pub fn mark(&self, text: impl Into<String>) {
        let t = self.now_ms();
        if let Ok(mut r) = self.record.lock() {
            r.mark(t, text);
        }
    }

    /// Stops everything and returns the whole record.
    pub async fn finish(self) -> Result<Record, String> {
        let Watch {
            t0,
            epoch0_ms,
            client,
            client_clock,
            stop_flag,
            quiet_flag,
            load,
            arp,
            vip_watches,
            sampler,
            stop_sampler,
            record,
        } = self;
        // A time stamp of a host with `clock`, on the drill's clock.
        let to_drill = |clock: &Clock, their_ms: i64| their_ms - clock.skew_ms - epoch0_ms;
        // A failed stop only means the loops run to their bound.
        let _ = client.run(&sh::touch(&stop_flag)).await;
        for w in &vip_watches {
            let _ = w.session.run(&sh::touch(&stop_flag)).await;
        }
        let _ = stop_sampler.send(true);
        let samples = sampler.await.unwrap_or_default();
        let requests = match load {
            Load::Channels { task, stop } => {
                let _ = stop.send(true);
                task.await.map_err(|e| e.to_string())?
            }
            Load::Shell(job) => job
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| format!("the client's requests: {e}"))?
                .into_iter()
                .map(|r| {
                    let ok = r.code == "200";
                    Request {
                        start_ms: to_drill(&client_clock, r.start_ms),
                        end_ms: to_drill(&client_clock, r.end_ms),
                        ok,
                        who: if ok { r.who } else { None },
                        error: match r.code.as_str() {
                            "200" => None,
                            "000" => Some("no answer".into()),
                            other => Some(format!("answered {other}")),
                        },
                    }
                })
                .collect(),
        };
        let arp = match arp {
            Some(job) => job.await.ok().and_then(Result::ok),
            None => None,
        };
        let mut vip_events = Vec::new();
        let mut sessions = Vec::new();
        for w in vip_watches {
            sessions.push(w.session.clone());
            let Ok(Ok(changes)) = w.job.await else {
                continue;
            };
            for change in changes {
                if !crate::lvs::names::holds_vip_on(&change.device) {
                    continue;
                }
                vip_events.push(VipEvent {
                    t_ms: to_drill(&w.clock, change.ms),
                    director: w.name.clone(),
                    holds: change.added,
                    device: change.device,
                });
            }
        }
        // Only once every loop has seen it (hosts may share their /tmp, as lab nodes do).
        for session in sessions.iter().chain([&client]) {
            for flag in [&stop_flag, &quiet_flag] {
                let _ = session.run(&sh::remove_path(flag)).await;
            }
        }
        let mut record = record
            .lock()
            .map(|r| r.clone())
            .map_err(|e| e.to_string())?;
        record.samples = samples;
        record.marks.sort_by_key(|m| m.t_ms);
        record.requests = requests;
        record.requests.sort_by_key(|r| r.start_ms);
        vip_events.sort_by_key(|e| e.t_ms);
        record.vip_events = vip_events;
        record.apply_vip_events();
        if let Some(seen) = arp {
            for s in seen {
                match s {
                    ArpSeen::FromClient => record.arp_from_client = true,
                    ArpSeen::Entry { ms, mac } => record.client_entries.push(ClientEntry {
                        t_ms: to_drill(&client_clock, ms),
                        mac,
                    }),
                    ArpSeen::Answers { ms, macs } => record.arp.push(ArpSample {
                        t_ms: to_drill(&client_clock, ms),
                        macs,
                    }),
                }
            }
            record.arp.sort_by_key(|a| a.t_ms);
            record.client_entries.sort_by_key(|a| a.t_ms);
        }
        record.duration_ms = since(t0);
        Ok(record)
    }
}

/// A GET of `/` that ends with the answer (HTTP/1.0, the connection closed by the server).
fn http_request(endpoint: &Endpoint) -> String {
    format!(
        "GET / HTTP/1.0\r\nHost: {}\r\nUser-Agent: lvslab-drill\r\nConnection: close\r\n\r\n",
        endpoint.address
    )
}

/// Whether an answer is `200`, the first word of its page (who answered), and else what came.
fn http_answer(answer: &[u8]) -> (bool, Option<String>, Option<String>) {
    let text = String::from_utf8_lossy(answer);
    let status = text.lines().next().unwrap_or("").trim();
    let ok = status.split_whitespace().nth(1) == Some("200");
    if !ok {
        let error = if status.is_empty() {
            "closed without an answer".to_string()
        } else {
            format!("answered {status}")
        };
        return (false, None, Some(error));
    }
    let who = text
        .split_once("\r\n\r\n")
        .and_then(|(_, body)| body.split_whitespace().next())
        .map(str::to_string);
    (true, who, None)
}

/// A director's sample from its flags (see [`sh::director_sample`]); `None`: it did not
/// answer in time.
/// The directors' own samples as one list: a sample at each time any director was read, each
/// director in it as it was last read (one not read yet is left out).
fn merge_samples(per_director: Vec<Vec<(i64, DirectorSample)>>) -> Vec<Sample> {
    let mut times: Vec<i64> = per_director.iter().flatten().map(|(t, _)| *t).collect();
    times.sort_unstable();
    times.dedup();
    times
        .into_iter()
        .map(|t_ms| Sample {
            t_ms,
            directors: per_director
                .iter()
                .filter_map(|seen| seen.iter().rev().find(|(t, _)| *t <= t_ms))
                .map(|(_, d)| d.clone())
                .collect(),
        })
        .collect()
}

fn director_sample(name: &str, flags: Option<DirectorFlags>) -> DirectorSample {
    let (state, holds_vip) = match flags {
        Some(f) => (f.state(), f.holds_vip),
        None => (DirectorState::Unreachable, false),
    };
    DirectorSample {
        name: name.to_string(),
        state,
        holds_vip,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_director_slow_to_answer_is_sampled_less_often() {
        assert_eq!(sample_pause(Duration::from_millis(20)), SAMPLE_EVERY);
        assert_eq!(
            sample_pause(Duration::from_millis(300)),
            Duration::from_millis(600)
        );
        assert_eq!(sample_pause(Duration::from_secs(3)), SAMPLE_PAUSE_MAX);
    }

    /// Directors read at their own pace make one list in which each changes when it was read.
    #[test]
    fn each_directors_samples_keep_their_own_times() {
        let d = |name: &str, state: DirectorState| DirectorSample {
            name: name.into(),
            state,
            holds_vip: state == DirectorState::Master,
        };
        let merged = merge_samples(vec![
            vec![
                (100, d("node1", DirectorState::Master)),
                (3100, d("node1", DirectorState::Stopped)),
            ],
            vec![
                (120, d("node4", DirectorState::Backup)),
                (400, d("node4", DirectorState::Backup)),
                (700, d("node4", DirectorState::Master)),
            ],
        ]);
        let at: Vec<(i64, Vec<(String, DirectorState)>)> = merged
            .iter()
            .map(|s| {
                let ds = s
                    .directors
                    .iter()
                    .map(|d| (d.name.clone(), d.state))
                    .collect();
                (s.t_ms, ds)
            })
            .collect();
        use DirectorState::*;
        let n = |a: &str, s| (a.to_string(), s);
        assert_eq!(
            at,
            vec![
                (100, vec![n("node1", Master)]),
                (120, vec![n("node1", Master), n("node4", Backup)]),
                (400, vec![n("node1", Master), n("node4", Backup)]),
                // node4 took over at 700 ms although node1 was not read again until 3100 ms.
                (700, vec![n("node1", Master), n("node4", Master)]),
                (3100, vec![n("node1", Stopped), n("node4", Master)]),
            ]
        );
        assert!(merge_samples(vec![vec![], vec![]]).is_empty());
    }

    #[test]
    fn answers_are_read_as_a_client_sees_them() {
        assert_eq!(
            http_answer(b"HTTP/1.1 200 OK\r\nServer: nginx\r\n\r\nnode2 198.18.0.12\n"),
            (true, Some("node2".to_string()), None)
        );
        assert_eq!(
            http_answer(b"HTTP/1.1 502 Bad Gateway\r\n\r\noops"),
            (
                false,
                None,
                Some("answered HTTP/1.1 502 Bad Gateway".into())
            )
        );
        assert_eq!(
            http_answer(b""),
            (false, None, Some("closed without an answer".into()))
        );
    }
}
