//! How a command ended, and the exit code that says so: the one mapping for every command
//! (also listed in `--help` and the README).

use crate::playbook::runner::RunResult;
use crate::probes::Findings;

/// How a command ended, worst last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    /// Everything went as asked.
    Ok,
    /// A task or probe failed on some host; the other hosts went on.
    Failed,
    /// A host could not be reached (connect, login, host key, lost connection).
    Unreachable,
    /// Usage or input error (inventory, playbook, template); nothing was contacted.
    Input,
    /// Ctrl-C: work in flight was ended.
    Interrupted,
    /// A command run for the user (`lab exec`) ended with this exit code, passed through.
    Exited(i32),
}

impl Outcome {
    pub fn code(self) -> i32 {
        match self {
            Outcome::Ok => 0,
            Outcome::Input => 1,
            Outcome::Failed => 2,
            Outcome::Unreachable => 4,
            Outcome::Interrupted => 130,
            Outcome::Exited(code) => code,
        }
    }

    pub fn of_run(result: &RunResult) -> Outcome {
        if result.interrupted {
            Outcome::Interrupted
        } else if !result.unreachable.is_empty() {
            Outcome::Unreachable
        } else if !result.failed.is_empty() {
            Outcome::Failed
        } else {
            Outcome::Ok
        }
    }

    pub fn of_findings(f: &Findings) -> Outcome {
        if f.interrupted {
            Outcome::Interrupted
        } else if !f.unreachable.is_empty() {
            Outcome::Unreachable
        } else if f.failed() > 0 {
            Outcome::Failed
        } else {
            Outcome::Ok
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreachable_outranks_failed() {
        assert_eq!(Outcome::Interrupted.code(), 130);
        let mut r = RunResult::default();
        r.failed.insert("a".into());
        r.unreachable.insert("b".into());
        assert_eq!(Outcome::of_run(&r).code(), 4);
        r.interrupted = true;
        assert_eq!(Outcome::of_run(&r).code(), 130);
    }
}
