//! What happened, as events. The engine emits them; views subscribe: the terminal view
//! (progress bars or plain lines) or JSON lines. Secrets are masked here, before any view.

mod json;
mod terminal;

pub use json::JsonView;
pub use terminal::TerminalView;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::secrets::Secrets;

/// The result of one task on one host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Changed,
    Failed,
    Skipped,
    Unreachable,
}

impl Status {
    pub fn word(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Changed => "changed",
            Status::Failed => "failed",
            Status::Skipped => "skipped",
            Status::Unreachable => "unreachable",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    RunStart {
        what: String,
        hosts: Vec<String>,
        check: bool,
    },
    /// The task results a run expects: each play's tasks times its hosts (before loops,
    /// handlers and hosts that drop out), for the terminal's overall progress line.
    RunPlan {
        tasks: u64,
    },
    PlayStart {
        play: String,
        hosts: Vec<String>,
    },
    Task {
        host: String,
        task: String,
        status: Status,
        #[serde(skip_serializing_if = "String::is_empty")]
        msg: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        diff: Option<String>,
        #[serde(skip_serializing_if = "String::is_empty")]
        output: String,
        ms: u64,
    },
    /// The reads of a host's next tasks, fetched ahead in batches (their task lines then show
    /// the time after the answers were in): how many, in how many round trips, how long.
    ReadsAhead {
        host: String,
        reads: usize,
        round_trips: u32,
        ms: u64,
    },
    Unreachable {
        host: String,
        error: String,
    },
    Probe {
        probe: String,
        pass: bool,
        evidence: String,
    },
    Warning {
        text: String,
    },
    Info {
        text: String,
    },
    /// A command's measured result as data (`bench modes`, drills): for `--json`; the terminal
    /// shows the same as text through `Info`.
    Result {
        what: String,
        data: serde_json::Value,
    },
    Recap {
        hosts: Vec<HostRecap>,
        elapsed_ms: u64,
        check: bool,
    },
}

/// Per-host counts at the end of a run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct HostRecap {
    pub host: String,
    pub ok: u32,
    pub changed: u32,
    pub failed: u32,
    pub skipped: u32,
    pub unreachable: bool,
    /// SSH commands run on the host (round trips), for speed work.
    pub round_trips: u32,
}

/// A view of the run.
pub trait Observer: Send + Sync {
    fn event(&self, event: &Event);
    /// Called once at the end, to tidy the terminal.
    fn finish(&self) {}
}

/// Fans events out to the views, masking secrets, and keeps the recap counts.
#[derive(Clone)]
pub struct Reporter {
    inner: Arc<Inner>,
}

struct Inner {
    views: Vec<Box<dyn Observer>>,
    secrets: Secrets,
    counts: Mutex<BTreeMap<String, HostRecap>>,
}

impl Reporter {
    pub fn new(views: Vec<Box<dyn Observer>>, secrets: Secrets) -> Self {
        Reporter {
            inner: Arc::new(Inner {
                views,
                secrets,
                counts: Mutex::new(BTreeMap::new()),
            }),
        }
    }

    /// Replace every secret in `text`.
    pub fn mask(&self, text: &str) -> String {
        self.inner.secrets.mask(text)
    }

    pub fn emit(&self, event: Event) {
        let event = self.masked(event);
        if let Ok(mut counts) = self.inner.counts.lock() {
            match &event {
                Event::Task { host, status, .. } => {
                    let c = counts.entry(host.clone()).or_insert_with(|| HostRecap {
                        host: host.clone(),
                        ..Default::default()
                    });
                    match status {
                        Status::Ok => c.ok += 1,
                        Status::Changed => c.changed += 1,
                        Status::Failed => c.failed += 1,
                        Status::Skipped => c.skipped += 1,
                        Status::Unreachable => c.unreachable = true,
                    }
                }
                Event::Unreachable { host, .. } => {
                    counts
                        .entry(host.clone())
                        .or_insert_with(|| HostRecap {
                            host: host.clone(),
                            ..Default::default()
                        })
                        .unreachable = true;
                }
                _ => {}
            }
        }
        for v in &self.inner.views {
            v.event(&event);
        }
    }

    /// Counts so far for these hosts (in this order), with round trips filled in by the caller.
    pub fn recap(&self, hosts: &[String]) -> Vec<HostRecap> {
        let counts = self
            .inner
            .counts
            .lock()
            .map(|c| c.clone())
            .unwrap_or_default();
        hosts
            .iter()
            .map(|h| {
                counts.get(h).cloned().unwrap_or_else(|| HostRecap {
                    host: h.clone(),
                    ..Default::default()
                })
            })
            .collect()
    }

    pub fn finish(&self) {
        for v in &self.inner.views {
            v.finish();
        }
    }

    fn masked(&self, event: Event) -> Event {
        if self.inner.secrets.values().is_empty() {
            return event;
        }
        let m = |s: String| self.mask(&s);
        match event {
            Event::Task {
                host,
                task,
                status,
                msg,
                diff,
                output,
                ms,
            } => Event::Task {
                host,
                task: m(task),
                status,
                msg: m(msg),
                diff: diff.map(m),
                output: m(output),
                ms,
            },
            e @ Event::ReadsAhead { .. } => e,
            Event::Unreachable { host, error } => Event::Unreachable {
                host,
                error: m(error),
            },
            Event::Probe {
                probe,
                pass,
                evidence,
            } => Event::Probe {
                probe,
                pass,
                evidence: m(evidence),
            },
            Event::Warning { text } => Event::Warning { text: m(text) },
            Event::Info { text } => Event::Info { text: m(text) },
            Event::Result { what, data } => Event::Result {
                what,
                data: self.inner.secrets.mask_json(data),
            },
            other => other,
        }
    }
}

/// Build the views the command line asked for.
pub fn reporter(json: bool, no_progress: bool, verbose: u8, secrets: Secrets) -> Reporter {
    let view: Box<dyn Observer> = if json {
        Box::new(JsonView)
    } else {
        Box::new(TerminalView::new(no_progress, verbose))
    };
    Reporter::new(vec![view], secrets)
}

/// An observer that keeps every event, for tests of what was reported.
#[cfg(test)]
pub struct Capture(pub std::sync::Arc<std::sync::Mutex<Vec<Event>>>);

#[cfg(test)]
impl Observer for Capture {
    fn event(&self, e: &Event) {
        if let Ok(mut v) = self.0.lock() {
            v.push(e.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Capture(Mutex<Vec<String>>);
    impl Observer for Arc<Capture> {
        fn event(&self, e: &Event) {
            self.0
                .lock()
                .unwrap()
                .push(serde_json::to_string(e).unwrap());
        }
    }

    #[test]
    fn secrets_are_masked_in_every_field_and_counted() {
        let cap = Arc::new(Capture(Mutex::new(Vec::new())));
        let r = Reporter::new(
            vec![Box::new(cap.clone())],
            Secrets::new(vec!["s3cr".into(), "s3cret".into()]),
        );
        r.emit(Event::Task {
            host: "n1".into(),
            task: "t".into(),
            status: Status::Changed,
            msg: "auth_pass s3cret".into(),
            diff: Some("-auth_pass s3cr\n+auth_pass s3cret".into()),
            output: "s3cret".into(),
            ms: 1,
        });
        let line = cap.0.lock().unwrap()[0].clone();
        assert!(!line.contains("s3cr"), "{line}");
        assert!(line.contains(crate::secrets::MASK));
        assert_eq!(r.recap(&["n1".into()])[0].changed, 1);
    }
}
