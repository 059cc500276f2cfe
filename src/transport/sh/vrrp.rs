//! VRRP on the directors: keepalived's state by the VIP, and VRRP blocked on a link.

use super::services::STATE_OF_P;
use super::{ParseError, Read, detached, quote};
use crate::lvs::DirectorState;
use crate::lvs::names::{LOOPBACK, TUNNEL};

/// A director's state (verify, status, a drill's sampling): prints `<keepalived runs> <it is frozen> <holds
/// the VIP>` as 0/1 (the VIP on a device that holds it: [`crate::lvs::names::holds_vip_on`]),
/// then the host's clock when it looked, in ms (a busy connection can answer seconds later).
/// A drill runs it four times a second on each director: it costs few processes (keepalived's
/// pid file and /proc read by the shell itself, `pgrep` only when the pid file names no live
/// keepalived; `ip` asked for the VIP's address alone), or an emulated host spends its CPU on
/// the sampling instead of on what the drill measures.
pub fn director_sample(vip: &str) -> Read<DirectorFlags> {
    let line = format!(
        "t=$(date +%s%3N); {PARENT}; s=; [ -n \"$p\" ] && {STATE_OF_P}; \
         r=0; f=0; case $s in ''|Z|X) ;; T) r=1; f=1;; *) r=1;; esac; \
         h=$(ip -o addr show to {} | awk '$2!=\"{LOOPBACK}\" && $2!=\"{TUNNEL}\" {{print 1; exit}}'); echo \"$r $f ${{h:-0}} $t\"",
        quote(vip)
    );
    Read::new(line, parse_director_sample)
}

/// Shell that sets `p` to the pid of keepalived's parent process (empty: none runs): from its
/// pid file (as built for every distribution) when that names a live keepalived, else the
/// oldest process of that name (`pgrep` reads every process of the host: a quarter of a second
/// on an emulated one).
const PARENT: &str = "p=; c=; read -r p 2>/dev/null </run/keepalived.pid; \
     [ -n \"$p\" ] && read -r _ c _ 2>/dev/null </proc/$p/stat; \
     [ \"$c\" = '(keepalived)' ] || p=$(pgrep -o -x keepalived)";

/// What [`director_sample`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirectorFlags {
    pub keepalived_runs: bool,
    /// keepalived is stopped by a signal (SIGSTOP): it runs, and does nothing.
    pub frozen: bool,
    pub holds_vip: bool,
    /// The host's clock when it looked (ms since the epoch).
    pub read_at_ms: i64,
}

impl DirectorFlags {
    /// The director's state these flags make.
    pub fn state(self) -> DirectorState {
        DirectorState::of(self.keepalived_runs, self.frozen, self.holds_vip)
    }
}

fn parse_director_sample(text: &str) -> Result<DirectorFlags, ParseError> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let flag = |w: &str| match w {
        "1" => Some(true),
        "0" => Some(false),
        _ => None,
    };
    let flags = match words[..] {
        [r, f, h, t] => flag(r).zip(flag(f)).zip(flag(h)).zip(t.parse::<i64>().ok()),
        _ => None,
    };
    match flags {
        Some((((keepalived_runs, frozen), holds_vip), read_at_ms)) => Ok(DirectorFlags {
            keepalived_runs,
            frozen,
            holds_vip,
            read_at_ms,
        }),
        None => Err(ParseError::new(
            "not the 3 flags and the time of a director's sample",
            text,
        )),
    }
}

/// Where keepalived writes its JSON dump (its `/tmp`, as built for every distribution).
const KEEPALIVED_JSON: &str = "/tmp/keepalived.json";

/// How long keepalived has to answer a dump request before it counts as hung.
pub const DUMP_WAIT_TENTHS: u32 = 20;

/// keepalived as it is, read from itself (verify, status, the `service` module): its processes
/// (the parent, see [`PARENT`], and its children as /proc lists them) and their states, then
/// its JSON dump (the signal `keepalived --signum=JSON` names, to the parent; the file removed
/// first, so only a dump written now is read), taken again `window_ms` later when given (to see
/// adverts counted meanwhile). Runs as root
/// (the dump is root's alone). Prints `none` (no keepalived), `process PID STAT` lines, then
/// `dump none` (no JSON dump in this build), or per dump `dump` and the JSON on the next line,
/// or `dump silent` (no answer in [`DUMP_WAIT_TENTHS`] tenths of a second).
pub fn keepalived_live(window_ms: Option<u32>) -> Read<KeepalivedLive> {
    let again = window_ms.map_or(String::new(), |ms| {
        format!(" && sleep {}.{:03} && dump", ms / 1000, ms % 1000)
    });
    let line = format!(
        "{PARENT}; if [ -z \"$p\" ]; then echo none; exit 0; fi; \
         c=/proc/$p/task/$p/children; if [ -r $c ]; then k=; read -r k <$c; all=\"$p $k\"; else all=$(pgrep -x keepalived); fi; \
         r=$p; for p in $all; do {STATE_OF_P}; echo \"process $p $s\"; done; p=$r; \
         s=$(keepalived --signum=JSON 2>/dev/null) || s=; \
         case $s in ''|*[!0-9]*) echo 'dump none'; exit 0;; esac; f={KEEPALIVED_JSON}\n\
         dump() {{ rm -f \"$f\"; kill -\"$s\" \"$p\" || return 1; n=0; while [ $n -lt {DUMP_WAIT_TENTHS} ]; do \
         if [ -f \"$f\" ] && [ ! -L \"$f\" ]; then case $(tail -c 2 \"$f\") in *']') echo dump; tr -d '\\n' < \"$f\"; echo; return 0;; esac; fi; \
         sleep 0.1; n=$((n+1)); done; echo 'dump silent'; return 1; }}; dump{again}; true"
    );
    Read::new(line, parse_keepalived_live)
}

/// What [`keepalived_live`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct KeepalivedLive {
    /// Each keepalived process: its pid and state letter (`S`, `R`, `T`, `Z`, ...).
    pub processes: Vec<(u32, String)>,
    /// Whether this keepalived can dump its state as JSON (built with it).
    pub dumps_json: bool,
    /// Each dump asked for, in order: its VRRP instances, or `None` when keepalived did not
    /// answer (no dump is asked for after one that was not answered).
    pub dumps: Vec<Option<Vec<VrrpInstance>>>,
}

/// One VRRP instance as keepalived's dump shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct VrrpInstance {
    pub name: String,
    pub state: VrrpWord,
    pub effective_priority: i64,
    pub adverts_received: u64,
    pub adverts_sent: u64,
    /// Adverts for its VRID that were not the pair's, since keepalived started: another number
    /// of VIPs (another length), another VIP list (or a multicast one to a unicast pair),
    /// another password or auth type (`packet_len_err`, `addr_list_err`, `auth_failure`,
    /// `authtype_mismatch`, `invalid_authtype`): another VRRP router uses the VRID.
    pub foreign_adverts: u64,
    /// Seconds since the epoch, on the host's clock.
    pub last_transition: f64,
    /// The preemption keepalived runs with (`None`: its dump does not say).
    pub nopreempt: Option<bool>,
    pub preempt_delay: Option<u64>,
    /// The gratuitous ARPs it sends as MASTER (`None`: its dump does not say).
    pub garp: Option<GarpRunning>,
    /// The interfaces it tracks besides its own (the dump leaves an empty list out).
    pub tracked: Vec<String>,
    /// The commands of the scripts it tracks, their words one space apart (the dump's
    /// `track_script`, each word in single quotes there).
    pub tracked_scripts: Vec<String>,
}

/// keepalived's gratuitous-ARP settings as it runs them (its dump's `garp_*`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GarpRunning {
    /// Seconds until the second burst after becoming MASTER (0: none).
    pub delay: f64,
    pub repeat: u64,
    /// Seconds between refreshes while MASTER (0: none).
    pub refresh: u64,
    pub refresh_repeat: u64,
}

/// keepalived's own state of an instance (its numbers in the dump).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VrrpWord {
    Init,
    Backup,
    Master,
    Fault,
    /// A number this version of lvslab does not know.
    Other(i64),
}

impl VrrpWord {
    fn of(n: i64) -> Self {
        match n {
            0 => VrrpWord::Init,
            1 => VrrpWord::Backup,
            2 => VrrpWord::Master,
            3 => VrrpWord::Fault,
            n => VrrpWord::Other(n),
        }
    }
}

impl KeepalivedLive {
    /// The instance lvslab reads: the first of the last dump answered.
    pub fn instance(&self) -> Option<&VrrpInstance> {
        self.dumps.iter().rev().flatten().next()?.first()
    }

    /// The director's state as keepalived holds it, or why it has none: no process (or only
    /// zombies) is STOPPED, any process stopped by a signal FROZEN, no answer to a dump HUNG; a
    /// BACKUP whose adverts-received count did not grow between two dumps DEAF. `None`: this
    /// keepalived cannot dump its state (the caller falls back to what the host shows).
    pub fn state(&self) -> Option<DirectorState> {
        let alive: Vec<&str> = self
            .processes
            .iter()
            .map(|(_, stat)| stat.as_str())
            .filter(|stat| !stat.starts_with('Z'))
            .collect();
        if alive.is_empty() {
            return Some(DirectorState::Stopped);
        }
        if alive.iter().any(|stat| stat.starts_with('T')) {
            return Some(DirectorState::Frozen);
        }
        if !self.dumps_json {
            return None;
        }
        if self.dumps.iter().any(Option::is_none) {
            return Some(DirectorState::Hung);
        }
        // Gone between the process list and the dump.
        let Some(now) = self.instance() else {
            return Some(DirectorState::Stopped);
        };
        Some(match now.state {
            VrrpWord::Master => DirectorState::Master,
            VrrpWord::Backup => {
                let first = self.dumps.first().and_then(|d| d.as_ref()?.first());
                match first {
                    Some(before)
                        if self.dumps.len() > 1
                            && before.state == VrrpWord::Backup
                            && before.adverts_received == now.adverts_received =>
                    {
                        DirectorState::Deaf
                    }
                    _ => DirectorState::Backup,
                }
            }
            VrrpWord::Fault => DirectorState::Fault,
            VrrpWord::Init | VrrpWord::Other(_) => DirectorState::Init,
        })
    }
}

fn parse_keepalived_live(text: &str) -> Result<KeepalivedLive, ParseError> {
    let mut live = KeepalivedLive {
        processes: Vec::new(),
        dumps_json: true,
        dumps: Vec::new(),
    };
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    while let Some(line) = lines.next() {
        let mut words = line.split_whitespace();
        match (words.next(), words.next(), words.next()) {
            (Some("none"), None, None) => return Ok(live),
            (Some("process"), Some(pid), stat) => {
                let pid = pid
                    .parse()
                    .map_err(|_| ParseError::new("a process line without a pid", text))?;
                // A process gone between pgrep and ps has no state: left out.
                if let Some(stat) = stat {
                    live.processes.push((pid, stat.to_string()));
                }
            }
            (Some("dump"), Some("none"), None) => live.dumps_json = false,
            (Some("dump"), Some("silent"), None) => live.dumps.push(None),
            (Some("dump"), None, None) => {
                let json = lines
                    .next()
                    .ok_or_else(|| ParseError::new("a dump without its JSON", text))?;
                live.dumps.push(Some(parse_dump(json)?));
            }
            _ => return Err(ParseError::new("not a line of keepalived's state", text)),
        }
    }
    if live.processes.is_empty() {
        return Err(ParseError::new("no keepalived process and no `none`", text));
    }
    Ok(live)
}

/// keepalived's JSON dump: an array of `{"data": {...}, "stats": {...}}`, one per instance.
fn parse_dump(json: &str) -> Result<Vec<VrrpInstance>, ParseError> {
    let value: serde_json::Value = serde_json::from_str(json).map_err(|e| {
        ParseError::new(format!("keepalived's JSON dump does not parse: {e}"), json)
    })?;
    let instances = value
        .as_array()
        .ok_or_else(|| ParseError::new("keepalived's JSON dump is not an array", json))?;
    instances
        .iter()
        .map(|i| {
            let data = &i["data"];
            let stats = &i["stats"];
            let number = |v: &serde_json::Value, key: &str| {
                v[key].as_i64().ok_or_else(|| {
                    ParseError::new(
                        format!("no number {key} in a VRRP instance of the dump"),
                        json,
                    )
                })
            };
            let count = |key: &str| {
                u64::try_from(number(stats, key)?).map_err(|_| {
                    ParseError::new(format!("a negative count {key} in the dump"), json)
                })
            };
            let name = data["iname"]
                .as_str()
                .ok_or_else(|| ParseError::new("a VRRP instance of the dump has no name", json))?;
            Ok(VrrpInstance {
                name: name.to_string(),
                state: VrrpWord::of(number(data, "state")?),
                effective_priority: number(data, "effective_priority")?,
                adverts_received: count("advert_rcvd")?,
                adverts_sent: count("advert_sent")?,
                foreign_adverts: [
                    "packet_len_err",
                    "addr_list_err",
                    "auth_failure",
                    "authtype_mismatch",
                    "invalid_authtype",
                ]
                .iter()
                .map(|key| stats[*key].as_u64().unwrap_or(0))
                .sum(),
                last_transition: data["last_transition"].as_f64().unwrap_or(0.0),
                nopreempt: data["nopreempt"].as_bool(),
                preempt_delay: data["preempt_delay"].as_u64(),
                garp: match (
                    data["garp_delay"].as_f64(),
                    data["garp_rep"].as_u64(),
                    data["garp_refresh"].as_u64(),
                    data["garp_refresh_rep"].as_u64(),
                ) {
                    (Some(delay), Some(repeat), Some(refresh), Some(refresh_repeat)) => {
                        Some(GarpRunning {
                            delay,
                            repeat,
                            refresh,
                            refresh_repeat,
                        })
                    }
                    _ => None,
                },
                tracked: strings(&data["track_ifp"]),
                tracked_scripts: strings(&data["track_script"])
                    .iter()
                    .map(|c| command_words(c))
                    .collect(),
            })
        })
        .collect()
}

/// A command's words one space apart, without the single quotes keepalived's dump puts around
/// each (`'/usr/bin/test' '!' '-e' '/x'`).
pub fn command_words(command: &str) -> String {
    command
        .split_whitespace()
        .map(|w| w.trim_matches('\''))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The strings of a JSON list (none when it is missing: the dump leaves an empty list out).
fn strings(list: &serde_json::Value) -> Vec<String> {
    list.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|i| i.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The multicast group of VRRP adverts (IPv4).
pub const VRRP_GROUP: &str = "224.0.0.18";

/// Whether `iface` has joined [`VRRP_GROUP`] (keepalived joins it for multicast adverts, not
/// for unicast ones): `ip maddr`'s `inet 224.0.0.18` line under the interface.
pub fn vrrp_group_joined(iface: &str) -> Read<bool> {
    let line = format!("ip maddr show dev {}", quote(iface));
    Read::new(line, |text| {
        if !text.lines().any(|l| l.trim_start().starts_with("inet")) {
            return Err(ParseError::new(
                "not ip maddr's list (no inet group, not even 224.0.0.1)",
                text,
            ));
        }
        Ok(text
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["inet", VRRP_GROUP]))
    })
}

/// The last `count` VRRP transitions lvslab's notify script logged on a director
/// ([`crate::lvs::names::NOTIFY_LOG`]), oldest first; none when there is no log.
pub fn vrrp_transitions(count: u32) -> Read<Vec<Transition>> {
    let line = format!(
        "tail -n {count} {} 2>/dev/null; true",
        quote(crate::lvs::names::NOTIFY_LOG)
    );
    Read::new(line, |text| {
        Ok(text.lines().filter_map(Transition::parse).collect())
    })
}

/// One line of the notify log: `TIME KIND NAME STATE PRIORITY`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// UTC, as the director's clock had it (`2026-12-06T23:40:01.123Z`).
    pub at: String,
    pub state: String,
    pub priority: Option<u32>,
}

impl Transition {
    /// A line of another shape (an edit by hand) is left out.
    fn parse(line: &str) -> Option<Transition> {
        let w: Vec<&str> = line.split_whitespace().collect();
        match w.as_slice() {
            [at, _kind, _name, state, priority] if at.ends_with('Z') => Some(Transition {
                at: (*at).to_string(),
                state: (*state).to_string(),
                priority: priority.parse().ok(),
            }),
            _ => None,
        }
    }
}

/// tc's classic BPF (no action module needed): drop IPv4 protocol 112 (VRRP), pass the rest.
const DROP_VRRP: &str = "6,40 0 0 12,21 0 3 2048,48 0 0 23,21 0 1 112,6 0 0 2,6 0 0 0";

/// VRRP arriving on `iface` dropped for `secs` (an ingress filter), then let through again;
/// detached. Everything else still passes: a partition of VRRP alone.
pub fn block_vrrp_for(iface: &str, secs: u32) -> String {
    let i = quote(iface);
    detached(&format!(
        "tc qdisc add dev {i} ingress && tc filter add dev {i} parent ffff: protocol all prio 1 bpf da bytecode '{DROP_VRRP}'; \
         sleep {secs}; tc qdisc del dev {i} ingress"
    ))
}

/// The VRRP filter of [`block_vrrp_for`] removed now.
pub fn unblock_vrrp(iface: &str) -> String {
    format!(
        "tc qdisc del dev {} ingress 2>/dev/null || true",
        quote(iface)
    )
}

/// Whether VRRP is blocked on `iface` now: exit 0 while the ingress filter is there.
pub fn vrrp_blocked(iface: &str) -> String {
    format!(
        "tc qdisc show dev {} ingress | grep -q ingress",
        quote(iface)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::sh::tests::sh;

    /// Captured in a network namespace holding the VIP on eth0:3 and on lo:3; keepalived stood
    /// in for by a process of that name, running, then stopped by SIGSTOP.
    #[test]
    fn a_director_s_state() {
        let flags = |keepalived_runs, frozen, holds_vip| {
            Ok(DirectorFlags {
                keepalived_runs,
                frozen,
                holds_vip,
                read_at_ms: 1796575254989,
            })
        };
        let table = [
            // No keepalived; the VIP still on eth0 (a keepalived killed before it dropped it).
            ("0 0 1 1796575254989\n", flags(false, false, true)),
            ("1 0 1 1796575254989\n", flags(true, false, true)),
            ("1 1 1 1796575254989\n", flags(true, true, true)),
            // Frozen, and only lo:3 holds it: not held.
            ("1 1 0 1796575254989\n", flags(true, true, false)),
        ];
        for (output, want) in table {
            assert_eq!(
                director_sample("198.18.0.100").parse(output),
                want,
                "{output:?}"
            );
        }
        // Without the time, a time that is none, a flag that is none.
        for bad in ["", "1 0\n", "1 0 1\n", "1 0 1 %3N\n", "1 2 1 17\n"] {
            assert!(
                director_sample("198.18.0.100").parse(bad).is_err(),
                "{bad:?}"
            );
        }
        // The state they make: a frozen keepalived is FROZEN whether it holds the VIP or not.
        let state = |output: &str| {
            director_sample("198.18.0.100")
                .parse(output)
                .map(|f| f.state())
        };
        assert_eq!(state("0 0 1 1796575254989\n"), Ok(DirectorState::Stopped));
        assert_eq!(state("1 0 1 1796575254989\n"), Ok(DirectorState::Master));
        assert_eq!(state("1 0 0 1796575254989\n"), Ok(DirectorState::Backup));
        assert_eq!(state("1 1 1 1796575254989\n"), Ok(DirectorState::Frozen));
        assert_eq!(state("1 1 0 1796575254989\n"), Ok(DirectorState::Frozen));
    }

    /// keepalived 2.2.7's JSON dump (Debian 12), captured from a MASTER in a network
    /// namespace; a BACKUP's is the same with state 1 and its own counts.
    const MASTER_DUMP: &str = r#"[{"data":{"iname":"VI_1","dont_track_primary":0,"skip_check_adv_addr":0,"strict_mode":0,"vmac_ifname":"","ifp_ifname":"ka0","master_priority":0,"last_transition":1796575254.989175,"garp_delay":5,"garp_refresh":0,"garp_rep":5,"garp_refresh_rep":1,"garp_lower_prio_delay":5,"garp_lower_prio_rep":5,"lower_prio_no_advert":0,"higher_prio_send_advert":0,"vrid":77,"base_priority":100,"effective_priority":100,"vipset":true,"promote_secondaries":false,"adver_int":1,"master_adver_int":1,"accept":1,"nopreempt":false,"preempt_delay":0,"state":2,"wantstate":2,"version":2,"smtp_alert":false,"notify_deleted":false,"vips":["198.18.9.100\/24 dev ka0 scope global set"],"auth_type":0},"stats":{"advert_rcvd":0,"advert_sent":2,"become_master":1,"release_master":0,"packet_len_err":0,"advert_interval_err":0,"ip_ttl_err":0,"invalid_type_rcvd":0,"addr_list_err":0,"invalid_authtype":0,"authtype_mismatch":0,"auth_failure":0,"pri_zero_rcvd":0,"pri_zero_sent":0}}]"#;

    fn backup_dump(heard: u64) -> String {
        MASTER_DUMP
            .replace("\"state\":2", "\"state\":1")
            .replace("\"effective_priority\":100", "\"effective_priority\":50")
            .replace("\"advert_rcvd\":0", &format!("\"advert_rcvd\":{heard}"))
    }

    #[test]
    fn keepalived_as_it_says_it_is() {
        let q = keepalived_live(Some(1500));
        let state = |output: &str| q.parse(output).map(|l| l.state());
        let procs = "process 7922 Ss\nprocess 7924 S\n";
        // No keepalived; only zombies.
        assert_eq!(state("none\n"), Ok(Some(DirectorState::Stopped)));
        assert_eq!(
            state("process 7922 Z\ndump silent\n"),
            Ok(Some(DirectorState::Stopped))
        );
        // Frozen: any process in state T, whatever the dump.
        assert_eq!(
            state("process 7922 Ss\nprocess 7924 T\ndump silent\n"),
            Ok(Some(DirectorState::Frozen))
        );
        // Runs, does not answer: hung.
        assert_eq!(
            state(&format!("{procs}dump silent\n")),
            Ok(Some(DirectorState::Hung))
        );
        assert_eq!(
            state(&format!("{procs}dump\n{MASTER_DUMP}\ndump silent\n")),
            Ok(Some(DirectorState::Hung))
        );
        // MASTER, as keepalived says.
        let live = q
            .parse(&format!(
                "{procs}dump\n{MASTER_DUMP}\ndump\n{MASTER_DUMP}\n"
            ))
            .unwrap();
        assert_eq!(live.state(), Some(DirectorState::Master));
        let vi = live.instance().unwrap();
        assert_eq!(
            (vi.name.as_str(), vi.effective_priority, vi.adverts_sent),
            ("VI_1", 100, 2)
        );
        assert_eq!((vi.nopreempt, vi.preempt_delay), (Some(false), Some(0)));
        assert_eq!(
            vi.garp,
            Some(GarpRunning {
                delay: 5.0,
                repeat: 5,
                refresh: 0,
                refresh_repeat: 1
            })
        );
        assert!(vi.tracked.is_empty(), "2.2.7 leaves an empty list out");
        let tracking = MASTER_DUMP.replace(
            "\"auth_type\":0",
            "\"track_ifp\":[\"trk0\"],\"track_script\":[\"'/usr/bin/test' '!' '-e' '/etc/m'\"],\"auth_type\":0",
        );
        let live = q.parse(&format!("{procs}dump\n{tracking}\n")).unwrap();
        assert_eq!(live.instance().unwrap().tracked, ["trk0"]);
        // keepalived 2.2.7 dumps a tracked script with each word in single quotes.
        assert_eq!(
            live.instance().unwrap().tracked_scripts,
            ["/usr/bin/test ! -e /etc/m"]
        );
        // A BACKUP that heard adverts meanwhile, and one that heard none.
        let (b1, b2) = (backup_dump(10), backup_dump(11));
        assert_eq!(
            state(&format!("{procs}dump\n{b1}\ndump\n{b2}\n")),
            Ok(Some(DirectorState::Backup))
        );
        assert_eq!(
            state(&format!("{procs}dump\n{b1}\ndump\n{b1}\n")),
            Ok(Some(DirectorState::Deaf))
        );
        // One dump (status): a BACKUP is a BACKUP.
        assert_eq!(
            state(&format!("{procs}dump\n{b1}\n")),
            Ok(Some(DirectorState::Backup))
        );
        // FAULT and INIT.
        let fault = MASTER_DUMP.replace("\"state\":2", "\"state\":3");
        assert_eq!(
            state(&format!("{procs}dump\n{fault}\n")),
            Ok(Some(DirectorState::Fault))
        );
        let init = MASTER_DUMP.replace("\"state\":2", "\"state\":0");
        assert_eq!(
            state(&format!("{procs}dump\n{init}\n")),
            Ok(Some(DirectorState::Init))
        );
        // Built without JSON: the caller reads the host instead.
        assert_eq!(state(&format!("{procs}dump none\n")), Ok(None));
        for bad in [
            "",
            "process x S\n",
            "process 1 S\ndump\n",
            "process 1 S\ndump\n{}\n",
            "what\n",
        ] {
            assert!(q.parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_queries_run_on_this_machine() {
        // An address no host has: held nowhere.
        let (_, out) = sh(director_sample("198.18.255.254").line());
        assert!(
            director_sample("198.18.255.254")
                .parse(&out)
                .is_ok_and(|f| !f.holds_vip),
            "{out}"
        );
    }

    /// `ip maddr show dev eth0` (iproute2 6.1) on a director with keepalived's multicast
    /// adverts, and on one with unicast adverts.
    #[test]
    fn the_vrrp_group_joined_or_not() {
        let q = vrrp_group_joined("eth0");
        let multicast = "2:\teth0\n\tlink  33:33:00:00:00:01\n\tlink  01:00:5e:00:00:01\n\
                         \tlink  01:00:5e:00:00:12\n\tinet  224.0.0.18\n\tinet  224.0.0.1\n\tinet6 ff02::1\n";
        assert_eq!(q.parse(multicast), Ok(true));
        let unicast = "2:\teth0\n\tlink  33:33:00:00:00:01\n\tlink  01:00:5e:00:00:01\n\tinet  224.0.0.1\n\tinet6 ff02::1\n";
        assert_eq!(q.parse(unicast), Ok(false));
        // No such device: ip says so on stderr.
        assert!(q.parse("").is_err());
    }

    #[test]
    fn the_transitions_the_notify_script_logged() {
        let q = vrrp_transitions(5);
        let log = "2026-12-06T23:40:01.123Z INSTANCE VI_1 BACKUP 100\n\
                   2026-12-06T23:40:04.871Z INSTANCE VI_1 MASTER 100\n\
                   by hand\n\
                   2026-12-06T23:41:00.002Z INSTANCE VI_1 STOP -\n";
        let t = q.parse(log).unwrap();
        let at = |at: &str, state: &str, priority| Transition {
            at: at.into(),
            state: state.into(),
            priority,
        };
        assert_eq!(
            t,
            [
                at("2026-12-06T23:40:01.123Z", "BACKUP", Some(100)),
                at("2026-12-06T23:40:04.871Z", "MASTER", Some(100)),
                at("2026-12-06T23:41:00.002Z", "STOP", None),
            ]
        );
        assert_eq!(q.parse(""), Ok(vec![]));
    }
}
