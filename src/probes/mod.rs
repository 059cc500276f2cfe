//! Probes: checks that prove the lab works, read from the hosts themselves. Each probe is one
//! function that returns a [`Verdict`] with its evidence; the callers (commands, drills) decide
//! what a failed verdict means for the exit code.

pub mod clean;
pub mod load;
pub mod path;
pub mod status;
pub mod verify;

use crate::report::{Event, Reporter};

/// A probe's verdict.
#[derive(Debug, Clone)]
pub struct Verdict {
    pub probe: String,
    pub pass: bool,
    pub evidence: String,
}

impl Verdict {
    pub fn new(probe: impl Into<String>, pass: bool, evidence: impl Into<String>) -> Self {
        Verdict {
            probe: probe.into(),
            pass,
            evidence: evidence.into(),
        }
    }

    pub fn emit(&self, reporter: &Reporter) {
        reporter.emit(Event::Probe {
            probe: self.probe.clone(),
            pass: self.pass,
            evidence: self.evidence.clone(),
        });
    }
}

/// What a set of probes found.
#[derive(Debug, Default)]
pub struct Findings {
    pub verdicts: Vec<Verdict>,
    /// Hosts that could not be reached (their probes did not run).
    pub unreachable: Vec<String>,
    /// Ctrl-C came before the probes were done.
    pub interrupted: bool,
}

impl Findings {
    pub fn failed(&self) -> usize {
        self.verdicts.iter().filter(|v| !v.pass).count()
    }

    /// Keeps a verdict and shows it at once.
    pub fn push(&mut self, reporter: &Reporter, v: Verdict) {
        v.emit(reporter);
        self.verdicts.push(v);
    }
}
