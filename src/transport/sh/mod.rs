//! Every command line lvslab runs on a host is built under `sh/`, and quoted only through this
//! file: [`quote`] and [`argv`] are the one way a value from an inventory or a playbook reaches a
//! shell; [`sudo`], [`as_root_from_stdin`] and the connection's own shell are here too. Each
//! other file holds one domain's commands.
//!
//! Commands are POSIX `sh`. A read-only query whose output lvslab reads is a [`Read`]: its line
//! together with the parser of what it prints, in the file of its domain beside the typed value
//! it returns, and tested there on captured output of the real tools. Commands that change a
//! host, and those whose output is only shown, are plain lines.

mod addresses;
mod boot;
mod drills;
mod facts;
mod files;
mod ipvs;
mod links;
mod neighbours;
mod nft;
mod packages;
mod requests;
mod routes;
mod services;
mod sysctl;
mod vrrp;

pub use addresses::*;
pub use boot::*;
pub use drills::*;
pub use facts::*;
pub use files::*;
pub use ipvs::*;
pub use links::*;
pub use neighbours::*;
pub use nft::*;
pub use packages::*;
pub use requests::*;
pub use routes::*;
pub use services::*;
pub use sysctl::*;
pub use vrrp::*;

use std::borrow::Cow;

/// Where lvslab keeps what it must remember on a host (original sysctl values, ...).
pub const STATE_DIR: &str = "/var/lib/lvslab";

/// lvslab's own sysctl file: only the keys lvslab set, nothing else.
pub const SYSCTL_FILE: &str = "/etc/sysctl.d/90-lvslab.conf";

/// What lvslab set at runtime (addresses, devices, routes, manual IPVS rules), one file per
/// setting holding the command that sets it again; `lvslab-boot` runs them at boot.
pub const BOOT_DIR: &str = "/etc/lvslab-boot.d";

/// The script that re-applies [`BOOT_DIR`] and [`SYSCTL_FILE`] at boot, and the name of the
/// systemd unit or init script that runs it.
pub const BOOT_SCRIPT: &str = "/usr/local/sbin/lvslab-boot";
pub const BOOT_SERVICE: &str = "lvslab-boot";

/// Quote one word for `sh`. Words of safe characters stay as they are (readable logs).
pub fn quote(word: &str) -> Cow<'_, str> {
    let safe = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c));
    if safe {
        Cow::Borrowed(word)
    } else {
        Cow::Owned(format!("'{}'", word.replace('\'', r"'\''")))
    }
}

/// A command and its arguments, each quoted.
pub fn argv<S: AsRef<str>>(words: &[S]) -> String {
    words
        .iter()
        .map(|w| quote(w.as_ref()).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Run a command line as root through sudo (no password prompt: fail instead of hanging). The
/// line is an argument of sudo, so it shows in the host's process list: only for lvslab's own
/// lines that hold no secret (ending a command, the lab's own commands); see
/// [`as_root_from_stdin`].
pub fn sudo(command: &str) -> String {
    format!("sudo -n -- sh -c {}", quote(command))
}

/// Run a command line as root through sudo with the line on sudo's stdin (a here-document
/// ended by `delimiter`, which the line must not hold as a line of its own): no argument of any
/// process shows it, so a secret in it stays out of the host's process list.
pub fn as_root_from_stdin(command: &str, delimiter: &str) -> String {
    format!("sudo -n -- /bin/sh -s <<'{delimiter}'\n{command}\n{delimiter}")
}

/// `command` with `input` on its stdin, both in one text for a shell to read: the input as
/// base64 in a here-document ended by `delimiter` (a line neither base64 nor the command
/// holds). A file's content and the command that writes it then reach the host on a shell's
/// stdin, like every other command, and no process's arguments show either.
pub fn with_input(command: &str, input: &[u8], delimiter: &str) -> String {
    let encoded = data_encoding::BASE64.encode(input);
    let mut lines = String::with_capacity(encoded.len() + encoded.len() / 76 + 1);
    for chunk in encoded.as_bytes().chunks(76) {
        lines.push_str(&String::from_utf8_lossy(chunk));
        lines.push('\n');
    }
    format!(
        "command -v base64 >/dev/null 2>&1 || {{ echo 'base64 (coreutils) is missing on this host: lvslab sends data with it' >&2; exit 127; }}\n\
         lvslab_input() {{\nbase64 -d <<'{delimiter}'\n{lines}{delimiter}\n}}\n\
         lvslab_input | {{\n{command}\n}}"
    )
}

/// A connection's shell: the login shell replaced by `sh` (one exec; a shell is started per
/// command while the long-lived one is busy, so this costs on every such command). Its first
/// line on stdin is [`SHELL_PID`].
pub fn session_shell() -> &'static str {
    super::framing::START
}

/// The first line sent to a connection's shell: it prints its pid (the leader of the session
/// sshd made for it, so everything a command starts can be ended with [`end_session`]).
pub const SHELL_PID: &str = "echo $$\n";

/// The parser of a query that prints one item a line: its lines, empty ones left out.
pub(super) fn non_empty_lines(text: &str) -> Result<Vec<String>, ParseError> {
    Ok(text
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect())
}

/// Ends every process of session `pid` (a command that timed out or was given up, and all it
/// started): SIGTERM first, so a script's traps remove what it was making (a file write's
/// temporary file); SIGKILL for what is still there two seconds later (SIGKILL is not refused: the processes
/// are gone, or zombies, when it returns).
pub fn end_session(pid: u32) -> String {
    format!(
        "pkill -TERM -s {pid}; n=0; while pgrep -s {pid} >/dev/null && [ $n -lt 20 ]; do sleep 0.1; n=$((n+1)); done; pkill -KILL -s {pid}; true"
    )
}

/// Runs `script` on the host on its own (its own session, no input or output), so it goes on
/// when the connection cannot: a fault that cuts the host off undoes itself.
pub fn detached(script: &str) -> String {
    format!(
        "setsid sh -c {} </dev/null >/dev/null 2>&1 &",
        quote(script)
    )
}

fn quote_owned(s: &str) -> String {
    quote(s).into_owned()
}

/// A read-only query: its command line, and the parser of what that prints into a `T`. Run it
/// with [`crate::transport::Session::read`] (or a task's `read_ok`).
pub struct Read<T> {
    line: String,
    parse: fn(&str) -> Result<T, ParseError>,
}

impl<T> Read<T> {
    fn new(line: impl Into<String>, parse: fn(&str) -> Result<T, ParseError>) -> Self {
        Read {
            line: line.into(),
            parse,
        }
    }

    /// The command line, for the shell.
    pub fn line(&self) -> &str {
        &self.line
    }

    /// What the command printed, read.
    pub fn parse(&self, stdout: &str) -> Result<T, ParseError> {
        (self.parse)(stdout)
    }
}

impl<T> Clone for Read<T> {
    fn clone(&self) -> Self {
        Read {
            line: self.line.clone(),
            parse: self.parse,
        }
    }
}

impl<T> std::fmt::Debug for Read<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Read").field(&self.line).finish()
    }
}

/// Output a query's parser cannot read: what is wrong with it, and the output itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{problem}")]
pub struct ParseError {
    problem: String,
    output: String,
}

impl ParseError {
    fn new(problem: impl Into<String>, output: &str) -> Self {
        ParseError {
            problem: problem.into(),
            output: output.trim().to_string(),
        }
    }

    /// The output as printed, without the white space around it.
    pub fn output(&self) -> &str {
        &self.output
    }
}

/// Escape a literal for a basic regular expression inside a single-quoted sed/grep script.
/// Only sysctl keys and addresses reach here, which are checked to be [A-Za-z0-9._/-].
fn regex_escape(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric() || "._/-:".contains(*c))
        .flat_map(|c| if c == '.' { vec!['\\', '.'] } else { vec![c] })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `cmd` with this machine's `sh`: its exit status and stdout.
    pub(super) fn sh(cmd: &str) -> (i32, String) {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }

    /// Input carried in the command text reaches the command byte for byte (binary, no final
    /// newline, empty, a line like a delimiter), also nested in the here-document that takes a
    /// command to root's shell, and inside the long-lived shell's framing.
    #[test]
    fn input_in_the_command_text_arrives_byte_for_byte() {
        let framing = super::super::framing::Framing::new();
        let long: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 256) as u8).collect();
        let cases: [&[u8]; 5] = [
            b"",
            b"no newline at the end",
            b"two\nlines\n",
            b"LVSLAB-DATA-x\n'$(id)'\n\\\0",
            &long,
        ];
        for input in cases {
            let cmd = with_input(
                "od -An -v -tx1 | tr -d ' \n'",
                input,
                &framing.data_delimiter(),
            );
            // As the login user, and as root's shell would read it (`/bin/sh -s` from a
            // here-document), each inside the framing's subshell.
            let nested = format!("/bin/sh -s <<'{d}'\n{cmd}\n{d}", d = framing.delimiter());
            for line in [&cmd, &nested] {
                let (status, out) = sh(&format!("(\n{line}\n) </dev/null"));
                let want: String = input.iter().map(|b| format!("{b:02x}")).collect();
                assert_eq!(
                    (status, out),
                    (0, want),
                    "{:?}",
                    String::from_utf8_lossy(input)
                );
            }
        }
        // The command's exit status is the whole line's.
        let (status, _) = sh(&with_input("cat >/dev/null; exit 3", b"x", "END-OF-IT"));
        assert_eq!(status, 3);
        // The data is base64: no line of it can end a here-document early.
        assert!(!with_input("cat", &long, "D").contains("\nD\nD\n"));
    }

    /// Ending a session on this machine: a script's TERM trap runs (its temporary file goes),
    /// a process that ignores SIGTERM is killed, and nothing of the session is left.
    #[test]
    fn ending_a_session_runs_traps_and_leaves_nothing() {
        let dir = std::env::temp_dir().join(format!("lvslab-end-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let tmp = dir.join("tmp");
        let script = format!(
            "t={}; : > \"$t\"; trap 'rm -f \"$t\"' EXIT; trap 'exit 143' TERM; \
             sh -c 'trap \"\" TERM; sleep 30' & sleep 30",
            quote(tmp.to_str().unwrap())
        );
        let mut child = std::process::Command::new("setsid")
            .args(["sh", "-c", &script])
            .spawn()
            .unwrap();
        let sid = child.id();
        // Reaped as sshd reaps a session's shell (a zombie would count as left).
        let reaper = std::thread::spawn(move || child.wait());
        std::thread::sleep(std::time::Duration::from_millis(300));
        assert!(tmp.exists());
        let started = std::time::Instant::now();
        let (status, _) = sh(&end_session(sid));
        assert_eq!(status, 0);
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        // A zombie is done; this machine's init may reap it later than a host's would.
        let (_, left) = sh(&format!("ps -o stat= -s {sid} | grep -v '^Z' || true"));
        assert_eq!(left, "", "the session is empty");
        assert!(!tmp.exists(), "the TERM trap removed the temporary file");
        assert!(reaper.join().unwrap().is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn quoting_survives_the_shell() {
        for nasty in [
            "a b",
            "$(touch /tmp/pwned)",
            "it's",
            "`id`",
            "x;y",
            "",
            "*",
            "--",
            "\n",
        ] {
            let (_, out) = sh(&format!("printf '%s' {}", quote(nasty)));
            assert_eq!(out, nasty);
        }
        assert_eq!(quote("eth0"), "eth0");
        assert_eq!(argv(&["ip", "addr", "a b"]), "ip addr 'a b'");
    }
}
