//! One long-lived `sh` per connection that runs commands one after another, so a command costs
//! a fork on the host instead of a new SSH session (sshd child, login shell, rc files). Each
//! command runs in a subshell with stdin from /dev/null; after it, the shell prints an end marker
//! with the exit status on stdout and an end marker on stderr. The marker holds a random nonce,
//! so ordinary output cannot end a command early.

use std::hash::{BuildHasher, Hasher};

/// The command that starts the shell on the host (through the user's login shell, once).
pub const START: &str = "exec /bin/sh";

pub struct Framing {
    marker: String,
}

/// A command's output as it arrives; complete when both markers were seen.
#[derive(Debug, Default)]
pub struct Collect {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub status: Option<u32>,
    stderr_done: bool,
}

impl Framing {
    pub fn new() -> Self {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(std::process::id().into());
        Framing {
            marker: format!("LVSLAB-END-{:016x}", h.finish()),
        }
    }

    /// A line no command holds by chance: the end of a here-document that carries a command.
    pub fn delimiter(&self) -> String {
        self.marker.replace("END", "IN")
    }

    /// Another such line: the end of a here-document that carries a command's input.
    pub fn data_delimiter(&self) -> String {
        self.marker.replace("END", "DATA")
    }

    /// The text to write to the shell's stdin for one command.
    pub fn wrap(&self, command: &str) -> String {
        let m = &self.marker;
        format!(
            "(\n{command}\n) </dev/null; printf '\\n{m} %d\\n' \"$?\"; printf '\\n{m}\\n' >&2\n"
        )
    }

    /// Take in stdout bytes; true once the command is complete.
    pub fn stdout(&self, c: &mut Collect, data: &[u8]) -> bool {
        c.stdout.extend_from_slice(data);
        if c.status.is_none() {
            let tail = format!("\n{} ", self.marker);
            if let Some(at) = find(&c.stdout, tail.as_bytes()) {
                let rest = &c.stdout[at + tail.len()..];
                if let Some(nl) = rest.iter().position(|b| *b == b'\n') {
                    c.status = std::str::from_utf8(&rest[..nl])
                        .ok()
                        .and_then(|s| s.trim().parse().ok())
                        .or(Some(255));
                    c.stdout.truncate(at);
                }
            }
        }
        self.done(c)
    }

    /// Take in stderr bytes; true once the command is complete.
    pub fn stderr(&self, c: &mut Collect, data: &[u8]) -> bool {
        c.stderr.extend_from_slice(data);
        if !c.stderr_done {
            let tail = format!("\n{}\n", self.marker);
            if let Some(at) = find(&c.stderr, tail.as_bytes()) {
                c.stderr.truncate(at);
                c.stderr_done = true;
            }
        }
        self.done(c)
    }

    /// One script that runs `commands` back to back, each wrapped as [`Framing::wrap`] does
    /// (its own subshell, stdin from /dev/null, both streams ended by a marker): read-only
    /// queries sent in one round trip, their answers taken apart again by [`Framing::split`].
    /// Its marker must not be the one of the shell that runs it (a new `Framing` has its own).
    pub fn batch<S: AsRef<str>>(&self, commands: &[S]) -> String {
        commands.iter().map(|c| self.wrap(c.as_ref())).collect()
    }

    /// What each of the `count` commands of a [`Framing::batch`] printed on stdout and stderr,
    /// and its exit status; `None` when the streams do not hold `count` complete answers.
    pub fn split(&self, stdout: &[u8], stderr: &[u8], count: usize) -> Option<Vec<Collect>> {
        let (mut out, mut err) = (stdout, stderr);
        let status_tail = format!("\n{} ", self.marker);
        let err_tail = format!("\n{}\n", self.marker);
        let mut answers = Vec::with_capacity(count);
        for _ in 0..count {
            let at = find(out, status_tail.as_bytes())?;
            let rest = &out[at + status_tail.len()..];
            let nl = rest.iter().position(|b| *b == b'\n')?;
            let status = std::str::from_utf8(&rest[..nl]).ok()?.trim().parse().ok()?;
            let e_at = find(err, err_tail.as_bytes())?;
            answers.push(Collect {
                stdout: out[..at].to_vec(),
                stderr: err[..e_at].to_vec(),
                status: Some(status),
                stderr_done: true,
            });
            out = &rest[nl + 1..];
            err = &err[e_at + err_tail.len()..];
        }
        Some(answers)
    }

    fn done(&self, c: &Collect) -> bool {
        c.status.is_some() && c.stderr_done
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, Read, Write};
    use std::process::{Command, Stdio};

    /// A batch run by a real `sh` (inside a connection's framing of its own, as the transport
    /// sends it) splits into each command's output as if each had run alone.
    #[test]
    fn a_batch_splits_into_each_commands_own_answer() {
        let connection = Framing::new();
        let batch = Framing::new();
        let cmds = [
            "echo one; echo err >&2; exit 3",
            "printf 'no newline'",
            "cat; echo read-nothing",
            "printf 'two\\n\\nlines\\n'; printf 'half' >&2",
            "exit 0",
        ];
        let script = batch.batch(&cmds);
        let out = Command::new("sh")
            .arg("-c")
            .arg(connection.wrap(&script))
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let mut whole = Collect::default();
        assert!(!connection.stdout(&mut whole, &out.stdout));
        assert!(connection.stderr(&mut whole, &out.stderr));
        assert_eq!(whole.status, Some(0));
        let answers = batch
            .split(&whole.stdout, &whole.stderr, cmds.len())
            .unwrap();
        let seen: Vec<(String, String, Option<u32>)> = answers
            .into_iter()
            .map(|c| {
                (
                    String::from_utf8(c.stdout).unwrap(),
                    String::from_utf8(c.stderr).unwrap(),
                    c.status,
                )
            })
            .collect();
        assert_eq!(
            seen,
            vec![
                ("one\n".into(), "err\n".into(), Some(3)),
                ("no newline".into(), "".into(), Some(0)),
                ("read-nothing\n".into(), "".into(), Some(0)),
                ("two\n\nlines\n".into(), "half".into(), Some(0)),
                ("".into(), "".into(), Some(0)),
            ]
        );
        // Fewer answers than commands (a batch cut short): nothing is taken for an answer.
        assert!(
            batch
                .split(&whole.stdout, &whole.stderr, cmds.len() + 1)
                .is_none()
        );
    }

    /// Feed several wrapped commands to a real `sh` and take the outputs apart again.
    #[test]
    fn a_real_shell_runs_commands_back_to_back() {
        let f = Framing::new();
        let mut sh = Command::new("sh")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let cmds = [
            "echo one; echo err >&2; exit 3",
            "printf 'no newline'",
            "cat; echo read-nothing",
            "cd /; set -e; false; echo not-here",
            "pwd",
        ];
        let mut input = sh.stdin.take().unwrap();
        for c in cmds {
            input.write_all(f.wrap(c).as_bytes()).unwrap();
        }
        drop(input);
        let mut out = Vec::new();
        sh.stdout.take().unwrap().read_to_end(&mut out).unwrap();
        let mut err = Vec::new();
        sh.stderr.take().unwrap().read_to_end(&mut err).unwrap();
        sh.wait().unwrap();
        // Split the streams per command the way the transport does, byte by byte.
        let mut results = Vec::new();
        let (mut o, mut e) = (&out[..], &err[..]);
        for _ in cmds {
            let mut c = Collect::default();
            let mut done = false;
            while c.status.is_none() && !o.is_empty() {
                let mut line = Vec::new();
                o.read_until(b'\n', &mut line).unwrap();
                done = f.stdout(&mut c, &line);
            }
            while !done && !e.is_empty() {
                let mut line = Vec::new();
                e.read_until(b'\n', &mut line).unwrap();
                done = f.stderr(&mut c, &line);
            }
            assert!(done);
            results.push((
                String::from_utf8(c.stdout.clone()).unwrap(),
                String::from_utf8(c.stderr.clone()).unwrap(),
                c.status,
            ));
        }
        assert_eq!(results[0], ("one\n".into(), "err\n".into(), Some(3)));
        assert_eq!(results[1], ("no newline".into(), "".into(), Some(0)));
        assert_eq!(
            results[2],
            ("read-nothing\n".into(), "".into(), Some(0)),
            "stdin is /dev/null"
        );
        assert_eq!(
            results[3].2,
            Some(1),
            "set -e and cd stay in their subshell"
        );
        assert_eq!(
            results[4].0,
            std::env::current_dir().unwrap().display().to_string() + "\n"
        );
    }
}
