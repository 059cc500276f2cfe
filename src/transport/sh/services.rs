//! Services through the host's init system, and processes by name: found, signalled, frozen.

use super::{ParseError, Read, argv, detached, quote};

/// Shell that sets `s` to the state letter of process `$p` (`S`, `R`, `T`, `Z`, ...; empty when
/// it is gone), read by the shell itself from /proc (`ps` is a process of its own, a tenth of a
/// second each on an emulated host, for every process of every service a run asks about).
pub(super) const STATE_OF_P: &str = "s=; l=; read -r l 2>/dev/null </proc/$p/stat; s=${l##*\") \"}; [ \"$s\" = \"$l\" ] && s=; s=${s%% *}";

/// Prints `running`, `frozen` (a process of the name stopped by a signal, state T) or
/// `stopped` (none, or zombies only), by process name: init scripts may claim success for a
/// daemon that died at once; then `enabled`, `disabled` or `unknown`.
pub fn service_query(init: &str, service: &str, process: &str) -> Read<ServiceStatus> {
    let s = quote(service);
    let enabled = if init == "systemd" {
        format!(
            "if systemctl is-enabled --quiet {s} 2>/dev/null; then echo enabled; else echo disabled; fi"
        )
    } else {
        format!(
            "e=unknown; [ -e /etc/init.d/{s} ] && e=disabled; for f in /etc/rc[2345].d/S*{s}; do [ -e \"$f\" ] && e=enabled; done; echo $e"
        )
    };
    let line = format!(
        "st=stopped; for p in $(pgrep -x {} || true); do {STATE_OF_P}; case $s in T) st=frozen; break;; Z|X|'') ;; *) st=running;; esac; done; echo $st; {enabled}",
        quote(process)
    );
    Read::new(line, parse_service_query)
}

/// A service as [`service_query`] finds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceStatus {
    pub running: Running,
    pub enabled: Enabled,
}

/// Whether a daemon's processes run, by their states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Running {
    /// A process of its name runs (none is stopped by a signal).
    Yes,
    /// A process of its name is stopped by a signal (SIGSTOP, state T): it does nothing.
    Frozen,
    /// No process of its name (or only zombies).
    No,
}

/// Whether a service starts at boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enabled {
    Yes,
    No,
    /// No init script of that name (sysv).
    Unknown,
}

fn parse_service_query(text: &str) -> Result<ServiceStatus, ParseError> {
    let mut lines = text.lines().map(str::trim);
    let running = match lines.next() {
        Some("running") => Running::Yes,
        Some("frozen") => Running::Frozen,
        Some("stopped") => Running::No,
        _ => {
            return Err(ParseError::new(
                "not running, frozen or stopped first",
                text,
            ));
        }
    };
    let enabled = match lines.next() {
        Some("enabled") => Enabled::Yes,
        Some("disabled") => Enabled::No,
        Some("unknown") => Enabled::Unknown,
        _ => {
            return Err(ParseError::new(
                "not enabled, disabled or unknown second",
                text,
            ));
        }
    };
    Ok(ServiceStatus { running, enabled })
}

/// `action` is start, stop, restart or reload.
pub fn service_action(init: &str, service: &str, action: &str) -> String {
    if init == "systemd" {
        argv(&["systemctl", action, service])
    } else {
        argv(&["service", service, action])
    }
}

/// Whether `service` starts at boot. On systemd without the daemon reload `enable` and
/// `disable` do by default: the links decide the next boot, and `is-enabled` reads them from
/// disk; the reload re-reads every unit and reruns the generators, 3-5 s of an emulated CPU
/// each time (a systemd lab node's first `up` spent 11 s enabling lvslab-boot).
pub fn service_enable(init: &str, service: &str, enable: bool) -> String {
    match (init, enable) {
        ("systemd", true) => argv(&["systemctl", "enable", "--no-reload", service]),
        ("systemd", false) => argv(&["systemctl", "disable", "--no-reload", service]),
        // `defaults` makes the links when there are none, and leaves the K links of a
        // disabled service as they are: `enable` turns those back into S links.
        (_, true) => format!(
            "if command -v update-rc.d >/dev/null; then update-rc.d {s} defaults && update-rc.d {s} enable; else chkconfig {s} on; fi",
            s = quote(service)
        ),
        (_, false) => format!(
            "if command -v update-rc.d >/dev/null; then update-rc.d {s} disable; else chkconfig {s} off; fi",
            s = quote(service)
        ),
    }
}

/// The pids of every process of that name, one per line (none: nothing printed, exit 0).
pub fn process_ids(process: &str) -> Read<Vec<u32>> {
    Read::new(format!("pgrep -x {} || true", quote(process)), |text| {
        text.split_whitespace()
            .map(|p| {
                p.parse()
                    .map_err(|_| ParseError::new("not a list of pids", text))
            })
            .collect()
    })
}

/// Exit 0 while a process of that name runs.
pub fn process_running(process: &str) -> String {
    format!("pgrep -x {} >/dev/null", quote(process))
}

/// Send a signal to every process of that name (SIGTERM lets keepalived drop its VIP).
pub fn process_signal(process: &str, signal: &str) -> String {
    format!("pkill -{} -x {}", quote(signal), quote(process))
}

/// Every process of that name stopped, then killed: all at once, so none can react to another's
/// death (a keepalived killed this way leaves its VIP behind: the seed's flaw).
pub fn kill_all_at_once(process: &str) -> String {
    format!(
        "p=$(pgrep -x {n}); [ -n \"$p\" ] && kill -STOP $p && kill -KILL $p",
        n = quote(process)
    )
}

/// Every process of that name frozen (SIGSTOP) for `secs`, then thawed; detached.
pub fn freeze_for(process: &str, secs: u32) -> String {
    detached(&format!(
        "p=$(pgrep -x {n}); kill -STOP $p; sleep {secs}; kill -CONT $p",
        n = quote(process)
    ))
}

/// Every process of that name frozen (SIGSTOP) until [`thaw`]: a server that accepts
/// connections (the kernel does) and never answers.
pub fn freeze(process: &str) -> String {
    format!("pkill -STOP -x {}", quote(process))
}

/// Exit 0 when no process of that name is frozen (stopped by a signal).
pub fn not_frozen(process: &str) -> String {
    format!(
        "for p in $(pgrep -x {}); do {STATE_OF_P}; [ \"$s\" = T ] && exit 1; done; exit 0",
        quote(process)
    )
}

/// Every process of that name thawed (SIGCONT).
pub fn thaw(process: &str) -> String {
    format!("pkill -CONT -x {} || true", quote(process))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::sh::tests::sh;

    /// Captured on this machine (Debian 12): systemctl's is-enabled and the sysv links of
    /// nginx, cron (a unit, no rc link) and procps (an init script without S link); a process
    /// of the name running.
    #[test]
    fn a_service_s_status() {
        let status = |running, enabled| Ok(ServiceStatus { running, enabled });
        let table = [
            ("stopped\nenabled\n", status(Running::No, Enabled::Yes)),
            ("running\nenabled\n", status(Running::Yes, Enabled::Yes)),
            ("frozen\nenabled\n", status(Running::Frozen, Enabled::Yes)),
            ("stopped\ndisabled\n", status(Running::No, Enabled::No)),
            ("stopped\nunknown\n", status(Running::No, Enabled::Unknown)),
        ];
        for (output, want) in table {
            assert_eq!(
                service_query("sysv", "nginx", "nginx").parse(output),
                want,
                "{output:?}"
            );
        }
        for bad in ["", "stopped\n", "active\nenabled\n", "running\nstatic\n"] {
            assert!(
                service_query("systemd", "nginx", "nginx")
                    .parse(bad)
                    .is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn the_pids_of_a_name() {
        let table = [("1234\n5678\n", Ok(vec![1234, 5678])), ("", Ok(vec![]))];
        for (output, want) in table {
            assert_eq!(process_ids("nginx").parse(output), want, "{output:?}");
        }
        assert!(process_ids("nginx").parse("pgrep: bad\n").is_err());
    }

    #[test]
    fn the_queries_run_on_this_machine() {
        let q = service_query("sysv", "lvslab-none", "lvslab-none");
        let (_, out) = sh(q.line());
        assert_eq!(
            q.parse(&out),
            Ok(ServiceStatus {
                running: Running::No,
                enabled: Enabled::Unknown
            })
        );
        let (rc, out) = sh(process_ids("lvslab-none").line());
        assert_eq!(
            (rc, process_ids("lvslab-none").parse(&out)),
            (0, Ok(vec![]))
        );
    }
}
