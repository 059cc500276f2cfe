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
    /// The reader of the output went away (`lvslab ... | head`): a quiet exit, as a program
    /// ended by SIGPIPE ends (128 + 13).
    OutputClosed,
}

impl Outcome {
    pub fn code(self) -> i32 {
        match self {
            Outcome::Ok => 0,
            Outcome::Input => 1,
            Outcome::Failed => 2,
            Outcome::Unreachable => 4,
            Outcome::Interrupted => 130,
            Outcome::OutputClosed => 141,
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

/// Output that cannot be written ends lvslab in words, never in a panic: a closed pipe
/// (`lvslab completions bash | head -1`) quietly with [`Outcome::OutputClosed`], any other
/// failure (a full disk, `/dev/full`) with its reason and [`Outcome::Input`]. Installed once,
/// first thing in `main`: `print!` panics when stdout cannot take what it is given.
pub fn on_unwritable_output() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let said = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if let Some(why) = said.strip_prefix("failed printing to stdout: ") {
            if why.contains("Broken pipe") {
                std::process::exit(Outcome::OutputClosed.code());
            }
            eprintln!("lvslab: cannot write the output: {why}");
            std::process::exit(Outcome::Input.code());
        }
        default(info);
    }));
}

/// Writes `bytes` to stdout whole, ending as [`on_unwritable_output`] says when it cannot.
pub fn write_stdout(bytes: &[u8]) -> Outcome {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => Outcome::Ok,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Outcome::OutputClosed,
        Err(e) => {
            eprintln!("lvslab: cannot write the output: {e}");
            Outcome::Input
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
