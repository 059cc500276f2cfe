//! Watching a drill: the client's steady requests, the MACs that answer ARP for the VIP (both
//! from the client, in the background), and the directors' states sampled from this machine; all
//! put on the drill's clock.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;

use super::record::{
    ArpSample, ClientEntry, DirectorSample, DirectorState, Record, Request, Sample,
};
use crate::probes::hosts::LvsHosts;
use crate::transport::{ExecOutput, Session, TransportError, sh};

/// What the client sends.
#[derive(Debug, Clone)]
pub enum Probe {
    /// GET through the VIP (IPVS): who answered, and whether.
    Http(String),
    /// ICMP echo to the VIP: whether the VIP answers at all (a kernel without IPVS).
    Ping(String),
}

impl Probe {
    pub fn word(&self) -> &'static str {
        match self {
            Probe::Http(_) => "http",
            Probe::Ping(_) => "ping",
        }
    }
}

/// How often the directors are sampled.
const SAMPLE_EVERY: Duration = Duration::from_millis(250);
/// How long one director sample may take before the director counts as unreachable.
const SAMPLE_TIMEOUT: Duration = Duration::from_secs(1);

type Job = tokio::task::JoinHandle<Result<ExecOutput, TransportError>>;

/// A drill being watched.
pub struct Watch {
    t0: Instant,
    /// The client's clock minus ours (ms): the client stamps its lines with its own.
    client_skew_ms: i64,
    epoch0_ms: i64,
    client: Session,
    stop_flag: String,
    quiet_flag: String,
    load: Job,
    arp: Option<Job>,
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

impl Watch {
    /// Starts the requests (`rate` a second, until [`Watch::finish`] or `max`), the ARP
    /// sampling and the directors' sampling.
    pub async fn start(
        hosts: &LvsHosts<'_>,
        probe: Probe,
        rate: u32,
        max: Duration,
        title: String,
        ask_arp: bool,
    ) -> Result<Watch, String> {
        let client = hosts.client.session.clone();
        // The client's clock against ours, from one round trip.
        let before = epoch_ms();
        let out = client
            .run(sh::epoch_ms())
            .await
            .map_err(|e| format!("the client {}: {e}", hosts.client.name))?;
        let after = epoch_ms();
        let theirs: i64 = out
            .stdout_str()
            .trim()
            .parse()
            .unwrap_or((before + after) / 2);
        let client_skew_ms = theirs - (before + after) / 2;

        let nonce = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let stop_flag = format!("/tmp/lvslab-drill-{}-{nonce}.stop", std::process::id());
        let quiet_flag = format!("/tmp/lvslab-drill-{}-{nonce}.quiet", std::process::id());
        let secs = u32::try_from(max.as_secs()).unwrap_or(u32::MAX);
        let interval_ms = (1000 / rate.max(1)).max(10);
        let command = match &probe {
            Probe::Http(url) => sh::drill_http_load(url, interval_ms, secs, &stop_flag),
            Probe::Ping(vip) => sh::drill_ping_load(vip, interval_ms, secs, &stop_flag),
        };
        let runner = client.clone();
        let bound = max + Duration::from_secs(10);
        let load = tokio::spawn(async move { runner.run_timeout(&command, bound).await });
        if !ask_arp {
            let _ = client.run(&sh::touch(&quiet_flag)).await;
        }
        let arp = hosts.client.host.map(|h| {
            let iface = h.interface.clone().unwrap_or_else(|| "eth0".into());
            let command = sh::drill_arp_watch(
                &iface,
                &hosts.vip(),
                secs,
                &stop_flag,
                &quiet_flag,
                &format!("lvsarp{:04x}", nonce % 0x10000),
            );
            let runner = client.clone();
            tokio::spawn(async move { runner.run_timeout(&command, bound).await })
        });

        let mut macs = Vec::new();
        for d in &hosts.directors {
            if let Ok(o) = d
                .conn
                .session
                .run(&sh::mac_address(&d.director.interface))
                .await
            {
                macs.push((
                    o.stdout_str().trim().to_lowercase(),
                    d.director.name.clone(),
                ));
            }
        }
        let record = Arc::new(Mutex::new(Record {
            title,
            probe: probe.word().into(),
            directors: hosts
                .directors
                .iter()
                .map(|d| d.director.name.clone())
                .collect(),
            macs,
            ..Record::default()
        }));

        // The drill's clock starts now, on both scales.
        let (t0, epoch0_ms) = (Instant::now(), epoch_ms());
        let (stop_sampler, mut stopped) = watch::channel(false);
        let targets: Vec<(String, Session)> = hosts
            .directors
            .iter()
            .map(|d| (d.director.name.clone(), d.conn.session.clone()))
            .collect();
        let sample_cmd = sh::director_sample(&hosts.vip());
        let sampler = tokio::spawn(async move {
            let mut samples = Vec::new();
            loop {
                let t_ms = i64::try_from(t0.elapsed().as_millis()).unwrap_or(i64::MAX);
                let asked = targets.iter().map(|(name, session)| {
                    let cmd = sample_cmd.clone();
                    async move {
                        let out = session.run_timeout(&cmd, SAMPLE_TIMEOUT).await;
                        director_sample(name, out.ok())
                    }
                });
                let directors = futures::future::join_all(asked).await;
                samples.push(Sample { t_ms, directors });
                tokio::select! {
                    _ = tokio::time::sleep(SAMPLE_EVERY) => {}
                    _ = stopped.changed() => break,
                }
            }
            samples
        });
        Ok(Watch {
            t0,
            client_skew_ms,
            epoch0_ms,
            client,
            stop_flag,
            quiet_flag,
            load,
            arp,
            sampler,
            stop_sampler,
            record,
        })
    }

    /// The MAC of director `name`'s VRRP interface, as read at the start.
    pub fn mac_of(&self, name: &str) -> Option<String> {
        let r = self.record.lock().ok()?;
        r.macs
            .iter()
            .find(|(_, n)| n == name)
            .map(|(mac, _)| mac.clone())
    }

    /// The client stops asking ARP for the VIP (see [`ArpSample::asked`]).
    pub async fn quiet_arp(&self) {
        // A failed touch only means the asking goes on.
        let _ = self.client.run(&sh::touch(&self.quiet_flag)).await;
    }

    /// Milliseconds since the drill started.
    pub fn now_ms(&self) -> i64 {
        i64::try_from(self.t0.elapsed().as_millis()).unwrap_or(i64::MAX)
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
        let offset = self.client_skew_ms + self.epoch0_ms;
        let to_drill = move |client_ms: i64| client_ms - offset;
        // A failed stop only means the loops run to their bound.
        let _ = self.client.run(&sh::touch(&self.stop_flag)).await;
        let _ = self.stop_sampler.send(true);
        let samples = self.sampler.await.unwrap_or_default();
        let load = self
            .load
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("the client's requests: {e}"))?;
        let arp = match self.arp {
            Some(job) => job.await.ok().and_then(Result::ok),
            None => None,
        };
        for flag in [&self.stop_flag, &self.quiet_flag] {
            let _ = self.client.run(&sh::remove_path(flag)).await;
        }
        let mut record = self
            .record
            .lock()
            .map(|r| r.clone())
            .map_err(|e| e.to_string())?;
        record.samples = samples;
        record.marks.sort_by_key(|m| m.t_ms);
        record.requests = load
            .stdout_str()
            .lines()
            .filter_map(|l| {
                let mut w = l.split_whitespace();
                let start: i64 = w.next()?.parse().ok()?;
                let code = w.next()?;
                let who = w.next().filter(|w| *w != "-").map(str::to_string);
                let end: i64 = w.next().and_then(|e| e.parse().ok()).unwrap_or(start);
                Some(Request {
                    start_ms: to_drill(start),
                    end_ms: to_drill(end),
                    ok: code == "200",
                    who: if code == "200" { who } else { None },
                })
            })
            .collect();
        record.requests.sort_by_key(|r| r.start_ms);
        if let Some(out) = arp {
            for line in out.stdout_str().lines() {
                let mut w = line.split_whitespace();
                let (kind, t) = (w.next(), w.next().and_then(|t| t.parse::<i64>().ok()));
                match (kind, t) {
                    (Some("X"), _) => record.arp_from_client = true,
                    (Some("N"), Some(t)) => record.client_entries.push(ClientEntry {
                        t_ms: to_drill(t),
                        mac: w.next().filter(|m| *m != "-").map(str::to_string),
                    }),
                    (Some("A"), Some(t)) => record.arp.push(ArpSample {
                        t_ms: to_drill(t),
                        macs: w.map(str::to_string).collect(),
                    }),
                    _ => {}
                }
            }
            record.arp.sort_by_key(|a| a.t_ms);
            record.client_entries.sort_by_key(|a| a.t_ms);
        }
        record.duration_ms = self.t0.elapsed().as_millis().try_into().unwrap_or(i64::MAX);
        Ok(record)
    }
}

/// A director's sample from `running frozen holds` (see [`sh::director_sample`]).
fn director_sample(name: &str, out: Option<ExecOutput>) -> DirectorSample {
    let flags: Vec<bool> = out
        .map(|o| o.stdout_str())
        .unwrap_or_default()
        .split_whitespace()
        .map(|w| w == "1")
        .collect();
    let (state, holds_vip) = match flags.as_slice() {
        [running, frozen, holds] => (
            match (*running, *frozen, *holds) {
                (false, _, _) => DirectorState::Stopped,
                (true, true, _) => DirectorState::Frozen,
                (true, false, true) => DirectorState::Master,
                (true, false, false) => DirectorState::Backup,
            },
            *holds,
        ),
        _ => (DirectorState::Unreachable, false),
    };
    DirectorSample {
        name: name.to_string(),
        state,
        holds_vip,
    }
}
