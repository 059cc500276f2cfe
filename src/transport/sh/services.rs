//! Services through the host's init system, and processes by name: found, signalled, frozen.

use super::{argv, detached, quote};

/// Prints `running` or `stopped` (by process name: init scripts may claim success for a
/// daemon that died at once), then `enabled`, `disabled` or `unknown`.
pub fn service_query(init: &str, service: &str, process: &str) -> String {
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
    format!(
        "if pgrep -x {} >/dev/null 2>&1; then echo running; else echo stopped; fi; {enabled}",
        quote(process)
    )
}

/// `action` is start, stop, restart or reload.
pub fn service_action(init: &str, service: &str, action: &str) -> String {
    if init == "systemd" {
        argv(&["systemctl", action, service])
    } else {
        argv(&["service", service, action])
    }
}

pub fn service_enable(init: &str, service: &str, enable: bool) -> String {
    match (init, enable) {
        ("systemd", true) => argv(&["systemctl", "enable", service]),
        ("systemd", false) => argv(&["systemctl", "disable", service]),
        (_, true) => format!(
            "if command -v update-rc.d >/dev/null; then update-rc.d {s} defaults; else chkconfig {s} on; fi",
            s = quote(service)
        ),
        (_, false) => format!(
            "if command -v update-rc.d >/dev/null; then update-rc.d {s} disable; else chkconfig {s} off; fi",
            s = quote(service)
        ),
    }
}

/// The pids of every process of that name, one per line (none: nothing printed, exit 0).
pub fn process_ids(process: &str) -> String {
    format!("pgrep -x {} || true", quote(process))
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
        "for p in $(pgrep -x {}); do case $(ps -o stat= -p $p) in T*) exit 1;; esac; done; exit 0",
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

    #[test]
    fn the_service_query_runs_on_this_machine() {
        let (_, out) = sh(&service_query("sysv", "lvslab-none", "lvslab-none"));
        assert_eq!(out, "stopped\nunknown\n");
    }
}
