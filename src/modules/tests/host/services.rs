//! Services through systemd or init scripts, and processes by name: `sh/services.rs`.

use super::{Answer, Call, State, change, done, read};
use crate::transport::fake::{failed, out};
use crate::transport::sh;

/// A service the init system knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// The name of its daemon's process.
    pub process: String,
    pub enabled: bool,
    /// Its start fails, and says this.
    pub start_fails: Option<String>,
    /// Its start succeeds, but the daemon exits at once.
    pub dies_at_start: bool,
    /// Its stop succeeds, but the daemon runs on (until a signal ends it).
    pub ignores_stop: bool,
    /// How many times it was reloaded.
    pub reloads: u32,
}

impl Service {
    pub fn new(process: &str, enabled: bool) -> Service {
        Service {
            process: process.into(),
            enabled,
            start_fails: None,
            dies_at_start: false,
            ignores_stop: false,
            reloads: 0,
        }
    }
}

const VERBS: [&str; 4] = ["start", "stop", "restart", "reload"];

pub(super) fn answer(s: &mut State, call: &Call) -> Option<Answer> {
    processes(s, call).or_else(|| services(s, call))
}

fn services(s: &mut State, call: &Call) -> Option<Answer> {
    let init = s.init.clone();
    let process = call.after("-x").unwrap_or_default();
    let named = if init == "systemd" {
        call.after("--quiet")
    } else {
        call.words
            .iter()
            .find_map(|w| w.strip_prefix("/etc/init.d/"))
    }
    .unwrap_or_default();
    if call.is(sh::service_query(&init, named, process).line()) {
        let running = if !s.runs(process) {
            "stopped"
        } else if s.frozen.contains(process) {
            "frozen"
        } else {
            "running"
        };
        let enabled = match s.services.get(named) {
            Some(service) if service.enabled => "enabled",
            Some(_) => "disabled",
            None if init == "systemd" => "disabled",
            None => "unknown",
        };
        return read(out(0, &format!("{running}\n{enabled}\n")));
    }
    // `systemctl VERB NAME` or `service NAME VERB`.
    let (verb, name) = if init == "systemd" {
        (call.word(1), call.word(2))
    } else {
        (call.word(2), call.word(1))
    };
    let (verb, name) = (verb.unwrap_or_default(), name.unwrap_or_default());
    if VERBS.contains(&verb) && call.is(sh::service_action(&init, name, verb)) {
        return action(s, name, verb);
    }
    // `systemctl enable --no-reload NAME`, or update-rc.d's line.
    let mut names = call.all_after("update-rc.d");
    names.extend(call.word(3));
    for named in names {
        for enable in [true, false] {
            if call.is(sh::service_enable(&init, named, enable)) {
                return enable_at_boot(s, named, enable);
            }
        }
    }
    None
}

fn action(s: &mut State, name: &str, verb: &str) -> Option<Answer> {
    let systemd = s.init == "systemd";
    let Some(service) = s.services.get(name).cloned() else {
        return change(if systemd {
            failed(
                5,
                &format!("Failed to {verb} {name}.service: Unit {name}.service not found.\n"),
            )
        } else {
            failed(1, &format!("{name}: unrecognized service\n"))
        });
    };
    if s.unprivileged {
        return change(failed(
            1,
            &format!("Failed to {verb} {name}.service: Interactive authentication required.\n"),
        ));
    }
    let start = |s: &mut State| {
        if let Some(said) = &service.start_fails {
            return Some(failed(1, said));
        }
        if !s.runs(&service.process) && !service.dies_at_start {
            s.start(&service.process);
        }
        None
    };
    let refused = match verb {
        "start" => start(s),
        "stop" => {
            if !service.ignores_stop {
                s.end(&service.process);
            }
            None
        }
        "restart" => {
            s.end(&service.process);
            start(s)
        }
        _ => {
            if let Some(service) = s.services.get_mut(name) {
                service.reloads += 1;
            }
            None
        }
    };
    match refused {
        Some(said) => change(said),
        None => done(),
    }
}

fn enable_at_boot(s: &mut State, name: &str, enable: bool) -> Option<Answer> {
    if s.unprivileged {
        return change(failed(
            1,
            "Failed to enable unit: Interactive authentication required.\n",
        ));
    }
    let systemd = s.init == "systemd";
    let Some(service) = s.services.get_mut(name) else {
        return change(failed(
            1,
            &if systemd {
                format!("Failed to enable unit: Unit file {name}.service does not exist.\n")
            } else {
                format!("update-rc.d: error: unable to read /etc/init.d/{name}\n")
            },
        ));
    };
    service.enabled = enable;
    done()
}

fn processes(s: &mut State, call: &Call) -> Option<Answer> {
    // `pkill -CONT -x NAME || true`
    if let Some(name) = call.word(3)
        && call.is(sh::thaw(name))
    {
        s.frozen.remove(name);
        return done();
    }
    // keepalived asked for its state: its processes, then its dump (or none, or silence).
    if call.is(sh::keepalived_live(None).line()) {
        let Some(pid) = s.processes.get("keepalived").and_then(|p| p.first()) else {
            return read(out(0, "none\n"));
        };
        let stat = if s.frozen.contains("keepalived") {
            "T"
        } else {
            "Ss"
        };
        let dump = if s.hung.contains("keepalived") || s.frozen.contains("keepalived") {
            "dump silent\n".to_string()
        } else {
            let json = r#"[{"data":{"iname":"VI_1","state":2,"effective_priority":100,"last_transition":1.0},"stats":{"advert_rcvd":0,"advert_sent":3}}]"#;
            format!("dump\n{json}\n")
        };
        return read(out(0, &format!("process {pid} {stat}\n{dump}")));
    }
    // `pgrep -x NAME ...`
    let name = call.word(2).unwrap_or_default();
    if call.is(sh::process_running(name)) {
        return read(out(if s.runs(name) { 0 } else { 1 }, ""));
    }
    if call.is(sh::process_ids(name).line()) {
        let pids: String = s
            .processes
            .get(name)
            .into_iter()
            .flatten()
            .map(|p| format!("{p}\n"))
            .collect();
        return read(out(0, &pids));
    }
    // `pkill -SIGNAL -x NAME`
    let name = call.word(3).unwrap_or_default();
    let signal = call
        .word(1)
        .and_then(|w| w.strip_prefix('-'))
        .unwrap_or_default();
    if call.is(sh::process_signal(name, signal)) {
        if !s.runs(name) {
            return change(out(1, ""));
        }
        if s.unprivileged {
            return change(failed(
                1,
                &format!(
                    "pkill: killing pid {}: Operation not permitted\n",
                    s.processes[name][0]
                ),
            ));
        }
        if signal == "TERM" || signal == "KILL" {
            s.end(name);
        }
        return done();
    }
    None
}
