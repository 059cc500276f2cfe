//! What a drill saw, on one clock (ms since the drill started): the client's requests, the
//! directors' states as sampled, the MACs that answered ARP for the VIP, and the drill's own
//! marks (the fault, the takeover, the restore). From it: the outage, the text timeline, the
//! picture (see `svg`).

use std::collections::BTreeSet;

use serde::Serialize;

pub use crate::lvs::DirectorState;

/// One request from the client.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Request {
    pub start_ms: i64,
    pub end_ms: i64,
    pub ok: bool,
    /// The real server that answered (HTTP), if any.
    pub who: Option<String>,
    /// Why it failed: no answer in time, refused, reset, or the status that came back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DirectorSample {
    pub name: String,
    pub state: DirectorState,
    pub holds_vip: bool,
}

/// The directors at one moment.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    pub t_ms: i64,
    pub directors: Vec<DirectorSample>,
}

/// A director's kernel adding or removing the VIP (its own address event, time stamped there).
#[derive(Debug, Clone, Serialize)]
pub struct VipEvent {
    pub t_ms: i64,
    pub director: String,
    /// Added (true) or removed.
    pub holds: bool,
    pub device: String,
}

/// The MACs that answered an ARP request for the VIP, asked from the client's network.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ArpSample {
    pub t_ms: i64,
    pub macs: Vec<String>,
}

/// The MAC the client's neighbour table held for the VIP: where its packets went.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ClientEntry {
    pub t_ms: i64,
    pub mac: Option<String>,
}

/// Something the drill did or saw.
#[derive(Debug, Clone, Serialize)]
pub struct Mark {
    pub t_ms: i64,
    pub text: String,
}

/// The slowest answers of a run ([`Record::slowest`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Slowest {
    pub p99_ms: i64,
    pub max_ms: i64,
}

impl Slowest {
    pub fn words(&self) -> String {
        format!(
            "slowest answers from the fault on: p99 {} ms, max {} ms",
            self.p99_ms, self.max_ms
        )
    }
}

/// A whole drill run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Record {
    pub title: String,
    pub duration_ms: i64,
    /// `http` (through IPVS) or `ping` (the VIP itself, on a kernel without IPVS).
    pub probe: String,
    /// How the requests were made, when not lvslab's own over the client's SSH connection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load: Option<String>,
    pub requests: Vec<Request>,
    pub samples: Vec<Sample>,
    /// When each director gained or lost the VIP, from its kernel's own events.
    pub vip_events: Vec<VipEvent>,
    pub arp: Vec<ArpSample>,
    /// Whether the ARP requests came from the client itself (no macvlan of their own): then
    /// their answers refreshed the client's own entry.
    pub arp_from_client: bool,
    pub client_entries: Vec<ClientEntry>,
    pub marks: Vec<Mark>,
    /// The directors' names, in the inventory's order, and which MAC is whose.
    pub directors: Vec<String>,
    pub macs: Vec<(String, String)>,
}

impl Record {
    pub fn mark(&mut self, t_ms: i64, text: impl Into<String>) {
        self.marks.push(Mark {
            t_ms,
            text: text.into(),
        });
    }

    /// The slowest answers from `from_ms` on (the fault): the 99th percentile and the
    /// longest time an answered request took. An answer that came after a retransmitted SYN
    /// is no failure, and no outage by the drill's count, but its client waited: this shows
    /// it. `None`: nothing was answered then.
    pub fn slowest(&self, from_ms: i64) -> Option<Slowest> {
        let mut took: Vec<i64> = self
            .requests
            .iter()
            .filter(|r| r.ok && r.start_ms >= from_ms)
            .map(|r| r.end_ms - r.start_ms)
            .collect();
        took.sort_unstable();
        let max_ms = *took.last()?;
        // The nearest-rank percentile: the smallest value at least 99% of answers do not exceed.
        let rank = (took.len() * 99).div_ceil(100).max(1);
        Some(Slowest {
            p99_ms: took[rank - 1],
            max_ms,
        })
    }

    pub fn sent(&self) -> usize {
        self.requests.len()
    }

    pub fn failed(&self) -> usize {
        self.requests.iter().filter(|r| !r.ok).count()
    }

    /// `N failed` with why, most frequent reason first: `2 failed (2 no answer within 1000 ms)`.
    pub fn failed_words(&self) -> String {
        let mut reasons: Vec<(String, usize)> = Vec::new();
        for r in self.requests.iter().filter(|r| !r.ok) {
            let why = r.error.clone().unwrap_or_else(|| "no reason given".into());
            match reasons.iter_mut().find(|(w, _)| *w == why) {
                Some((_, n)) => *n += 1,
                None => reasons.push((why, 1)),
            }
        }
        reasons.sort_by_key(|r| std::cmp::Reverse(r.1));
        let failed = self.failed();
        if reasons.is_empty() {
            return format!("{failed} failed");
        }
        let list: Vec<String> = reasons.iter().map(|(w, n)| format!("{n} {w}")).collect();
        format!("{failed} failed ({})", list.join(", "))
    }

    /// The longest stretch without a successful answer, from the first failed request to the
    /// next request that succeeded (to the end of the run when none did).
    pub fn outage_ms(&self) -> i64 {
        let mut by_start = self.requests.clone();
        by_start.sort_by_key(|r| r.start_ms);
        let mut worst = 0;
        let mut first_fail: Option<i64> = None;
        for r in &by_start {
            if r.ok {
                if let Some(f) = first_fail.take() {
                    worst = worst.max(r.start_ms - f);
                }
            } else {
                first_fail.get_or_insert(r.start_ms);
            }
        }
        if let Some(f) = first_fail {
            let last = by_start.last().map_or(f, |r| r.start_ms);
            worst = worst.max(last - f);
        }
        worst
    }

    /// From `from_ms` until the client was answered again: 0 when no request that started
    /// after it failed; else until the first success after the first such failure (to the end
    /// of the run when none came).
    pub fn outage_from(&self, from_ms: i64) -> i64 {
        let mut after: Vec<&Request> = self
            .requests
            .iter()
            .filter(|r| r.start_ms >= from_ms)
            .collect();
        after.sort_by_key(|r| r.start_ms);
        let Some(first_fail) = after.iter().position(|r| !r.ok) else {
            return 0;
        };
        match after[first_fail..].iter().find(|r| r.ok) {
            Some(ok) => ok.start_ms - from_ms,
            None => after.last().map_or(0, |r| r.start_ms - from_ms),
        }
    }

    /// From the first request that failed in `[from_ms, until_ms)` (the fault) to the last one
    /// there (0 with one or none); a failure before the fault or after its end is not the fault's.
    pub fn error_window_ms(&self, from_ms: i64, until_ms: i64) -> i64 {
        let failed = self
            .requests
            .iter()
            .filter(|r| !r.ok && r.start_ms >= from_ms && r.start_ms < until_ms)
            .map(|r| r.start_ms);
        let (first, last) = failed.fold((None, None), |(lo, hi): (Option<i64>, Option<i64>), t| {
            (
                Some(lo.map_or(t, |l| l.min(t))),
                Some(hi.map_or(t, |h| h.max(t))),
            )
        });
        match (first, last) {
            (Some(a), Some(b)) => b - a,
            _ => 0,
        }
    }

    /// The first time after `from_ms` that `director` gained (`holds`) or lost the VIP, from
    /// its kernel's events.
    pub fn vip_change(&self, director: &str, holds: bool, from_ms: i64) -> Option<i64> {
        self.vip_events
            .iter()
            .find(|e| e.t_ms >= from_ms && e.director == director && e.holds == holds)
            .map(|e| e.t_ms)
    }

    /// The samples' "holds the VIP" corrected by the directors' own events, which are exact
    /// (a sample is as old as its round trip, and a director cut off cannot be sampled):
    /// between events a director holds the VIP as the last event said; before its first
    /// event, as that event changed it from.
    /// A sample is added at each event (the one before it, copied), so a band changes when the
    /// VIP moved, not at the next sample.
    pub fn apply_vip_events(&mut self) {
        let events = self.vip_events.clone();
        for e in &events {
            let at = self.samples.partition_point(|s| s.t_ms < e.t_ms);
            if at == 0 || self.samples.get(at).is_some_and(|s| s.t_ms == e.t_ms) {
                continue;
            }
            let before = self.samples[at - 1].directors.clone();
            self.samples.insert(
                at,
                Sample {
                    t_ms: e.t_ms,
                    directors: before,
                },
            );
        }
        for sample in &mut self.samples {
            for d in &mut sample.directors {
                let mut own = events.iter().filter(|e| e.director == d.name).peekable();
                let Some(first) = own.peek().map(|e| e.holds) else {
                    continue;
                };
                // Before its first event it held the VIP as that event changed it from.
                let holds = own
                    .rfind(|e| e.t_ms <= sample.t_ms)
                    .map_or(!first, |e| e.holds);
                d.holds_vip = holds;
                d.state = match d.state {
                    DirectorState::Master | DirectorState::Backup if holds => DirectorState::Master,
                    DirectorState::Master | DirectorState::Backup => DirectorState::Backup,
                    other => other,
                };
            }
        }
    }

    /// How long two or more directors held the VIP at once (sum of sampled stretches).
    pub fn double_master_ms(&self) -> i64 {
        let mut total = 0;
        for w in self.samples.windows(2) {
            let holders = w[0].directors.iter().filter(|d| d.holds_vip).count();
            if holders >= 2 {
                total += w[1].t_ms - w[0].t_ms;
            }
        }
        total
    }

    /// The most MACs that answered ARP for the VIP at once.
    pub fn most_macs(&self) -> usize {
        self.arp.iter().map(|a| a.macs.len()).max().unwrap_or(0)
    }

    /// Whose MAC `mac` is (a director's name), else the MAC itself.
    pub fn owner(&self, mac: &str) -> String {
        self.macs
            .iter()
            .find(|(m, _)| m == mac)
            .map_or_else(|| mac.to_string(), |(_, name)| name.clone())
    }

    /// One line per second: requests answered/sent and by whom, the VIP's holders, ARP answers,
    /// and the drill's marks in that second.
    pub fn text_timeline(&self) -> String {
        let seconds = (self.duration_ms.max(0) / 1000) + 1;
        let mut out = String::new();
        for s in 0..seconds {
            let (a, b) = (s * 1000, s * 1000 + 1000);
            let reqs: Vec<&Request> = self
                .requests
                .iter()
                .filter(|r| r.start_ms >= a && r.start_ms < b)
                .collect();
            let ok = reqs.iter().filter(|r| r.ok).count();
            let who: BTreeSet<&str> = reqs.iter().filter_map(|r| r.who.as_deref()).collect();
            let last = self.samples.iter().rfind(|x| x.t_ms < b);
            let holders: Vec<String> = last
                .map(|x| {
                    x.directors
                        .iter()
                        .filter(|d| d.holds_vip)
                        .map(|d| d.name.clone())
                        .collect()
                })
                .unwrap_or_default();
            let states: Vec<String> = last
                .map(|x| {
                    x.directors
                        .iter()
                        .map(|d| format!("{} {}", d.name, d.state.word()))
                        .collect()
                })
                .unwrap_or_default();
            let macs = self
                .arp
                .iter()
                .filter(|x| x.t_ms >= a && x.t_ms < b)
                .map(|x| x.macs.len())
                .max()
                .map_or("-".to_string(), |n| n.to_string());
            let entry = self
                .client_entries
                .iter()
                .rfind(|x| x.t_ms < b)
                .and_then(|x| x.mac.as_deref())
                .map_or("-".to_string(), |m| self.owner(m));
            let marks: Vec<&str> = self
                .marks
                .iter()
                .filter(|m| m.t_ms >= a && m.t_ms < b)
                .map(|m| m.text.as_str())
                .collect();
            out.push_str(&format!(
                "  {s:>3}s  {ok:>3}/{:<3} {:<14} VIP {:<12} ARP {macs:<2} client->{entry:<6} {}{}\n",
                reqs.len(),
                who.into_iter().collect::<Vec<_>>().join(","),
                if holders.is_empty() {
                    "nobody".to_string()
                } else {
                    holders.join("+")
                },
                states.join(" "),
                if marks.is_empty() {
                    String::new()
                } else {
                    format!("  <- {}", marks.join("; "))
                }
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(start: i64, ok: bool) -> Request {
        Request {
            error: (!ok).then(|| "refused".to_string()),
            start_ms: start,
            end_ms: start + 10,
            ok,
            who: ok.then(|| "node2".to_string()),
        }
    }

    /// A request answered after 1240 ms (a SYN sent again) is no failure and no outage, but
    /// the slowest answers show it; those before the fault do not count.
    #[test]
    fn the_slowest_answers_from_the_fault_on() {
        let mut requests: Vec<Request> = (0..200).map(|i| req(i * 50, true)).collect();
        requests[150].end_ms = requests[150].start_ms + 1240;
        requests[10].end_ms = requests[10].start_ms + 5000;
        requests[160].ok = false;
        requests[160].end_ms = requests[160].start_ms + 9000;
        let r = Record {
            requests,
            ..Record::default()
        };
        assert_eq!(
            r.outage_ms(),
            50,
            "one failed request, the next one answered"
        );
        let slowest = r.slowest(2000).unwrap();
        assert_eq!((slowest.p99_ms, slowest.max_ms), (10, 1240));
        assert_eq!(
            slowest.words(),
            "slowest answers from the fault on: p99 10 ms, max 1240 ms"
        );
        // Two slow ones in 159 answers reach the 99th percentile.
        let mut two = r.clone();
        two.requests[170].end_ms = two.requests[170].start_ms + 800;
        two.requests[171].end_ms = two.requests[171].start_ms + 900;
        assert_eq!(two.slowest(2000).unwrap().p99_ms, 900);
        assert_eq!(
            r.slowest(20_000),
            None,
            "nothing answered after the last request"
        );
    }

    #[test]
    fn outage_is_the_longest_stretch_without_an_answer() {
        let r = Record {
            requests: vec![
                req(1000, true),
                req(1200, false),
                req(1300, false),
                req(1450, true),
                req(1500, false),
                req(1550, true),
            ],
            ..Record::default()
        };
        assert_eq!(r.outage_ms(), 250);
        assert_eq!(r.failed(), 3);
        assert_eq!(r.failed_words(), "3 failed (3 refused)");
        let mut mixed = r.clone();
        mixed.requests[4].error = Some("no answer within 1000 ms".into());
        assert_eq!(
            mixed.failed_words(),
            "3 failed (2 refused, 1 no answer within 1000 ms)"
        );
        assert_eq!(Record::default().failed_words(), "0 failed");
        assert_eq!(r.error_window_ms(0, i64::MAX), 300);
        assert_eq!(r.error_window_ms(1250, i64::MAX), 200);
        assert_eq!(r.error_window_ms(0, 1400), 100);
        assert_eq!(r.outage_from(1400), 150);
        assert_eq!(r.outage_from(1540), 0);
        let still = Record {
            requests: vec![req(1000, true), req(1100, false), req(1900, false)],
            ..Record::default()
        };
        assert_eq!(still.outage_ms(), 800);
    }

    #[test]
    fn double_masters_and_the_text_timeline() {
        let sample = |t, a: bool, b: bool| Sample {
            t_ms: t,
            directors: vec![
                DirectorSample {
                    name: "node1".into(),
                    state: DirectorState::Master,
                    holds_vip: a,
                },
                DirectorSample {
                    name: "node4".into(),
                    state: if b {
                        DirectorState::Master
                    } else {
                        DirectorState::Backup
                    },
                    holds_vip: b,
                },
            ],
        };
        let mut r = Record {
            duration_ms: 1500,
            requests: vec![req(100, true), req(1100, false)],
            samples: vec![
                sample(0, true, false),
                sample(500, true, true),
                sample(1250, true, false),
            ],
            ..Record::default()
        };
        r.mark(1100, "partition");
        assert_eq!(r.double_master_ms(), 750);
        let text = r.text_timeline();
        assert!(
            text.contains("  0s    1/1   node2") && text.contains("VIP node1+node4"),
            "{text}"
        );
        assert!(text.contains("<- partition"), "{text}");
    }

    #[test]
    fn the_directors_own_events_correct_the_samples() {
        let sample = |t, holds| Sample {
            t_ms: t,
            directors: vec![DirectorSample {
                name: "node4".into(),
                state: if holds {
                    DirectorState::Master
                } else {
                    DirectorState::Backup
                },
                holds_vip: holds,
            }],
        };
        let mut r = Record {
            // The 500 ms sample came back late, after the change.
            samples: vec![sample(0, false), sample(500, true), sample(1000, false)],
            vip_events: vec![VipEvent {
                t_ms: 700,
                director: "node4".into(),
                holds: true,
                device: "eth0".into(),
            }],
            ..Record::default()
        };
        r.apply_vip_events();
        let seen: Vec<(i64, bool, DirectorState)> = r
            .samples
            .iter()
            .map(|s| (s.t_ms, s.directors[0].holds_vip, s.directors[0].state))
            .collect();
        // A sample at the event: the band turns at 700 ms, not at the next sample.
        assert_eq!(
            seen,
            vec![
                (0, false, DirectorState::Backup),
                (500, false, DirectorState::Backup),
                (700, true, DirectorState::Master),
                (1000, true, DirectorState::Master)
            ]
        );
        assert_eq!(r.vip_change("node4", true, 0), Some(700));
        assert_eq!(r.vip_change("node4", false, 0), None);
    }
}
