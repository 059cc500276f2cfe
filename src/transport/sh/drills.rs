//! A drill's long-running loops (requests, ARP, the kernel's VIP events), its clock, the
//! reboot it asks for, and the undo a fault leaves on its host in case the drill dies.

use super::neighbours::neigh_lladdr_line;
use super::{ParseError, Read, STATE_DIR, detached, quote};

/// This host's clock, in ms since the epoch.
pub fn epoch_ms() -> Read<i64> {
    Read::new("date +%s%3N", |text| {
        text.trim()
            .parse()
            .map_err(|_| ParseError::new("not a time in ms", text))
    })
}

/// A drill's requests: one GET of `url` every `interval_ms`, each in the background (a slow one
/// does not hold up the next), until the file `stop` exists or `max_secs` have passed; one line
/// per request, `<start ms> <http code> <who> <end ms>` (who: the first word of the page).
pub fn drill_http_load(
    url: &str,
    interval_ms: u32,
    timeout_secs: u64,
    max_secs: u32,
    stop: &str,
) -> Read<Vec<LoadRequest>> {
    drill_load(
        &format!(
            "b=$(curl -s -m {timeout_secs} -w '\\n%{{http_code}}' {} 2>/dev/null); c=$(printf '%s' \"$b\" | tail -n 1); w=$(printf '%s' \"$b\" | head -n 1 | cut -d' ' -f1)",
            quote(url)
        ),
        interval_ms,
        max_secs,
        stop,
    )
}

/// The same with an ICMP echo to `vip` (code 200 when answered, `-` as who).
pub fn drill_ping_load(
    vip: &str,
    interval_ms: u32,
    max_secs: u32,
    stop: &str,
) -> Read<Vec<LoadRequest>> {
    drill_load(
        &format!(
            "if ping -n -c 1 -W 1 {} >/dev/null 2>&1; then c=200; else c=000; fi; w=-",
            quote(vip)
        ),
        interval_ms,
        max_secs,
        stop,
    )
}

fn drill_load(
    request: &str,
    interval_ms: u32,
    max_secs: u32,
    stop: &str,
) -> Read<Vec<LoadRequest>> {
    let line = format!(
        "end=$(( $(date +%s%3N) + {ms} )); while [ ! -e {s} ] && [ $(date +%s%3N) -lt $end ]; do \
         t=$(date +%s%3N); ( {request}; echo \"$t ${{c:-000}} ${{w:--}} $(date +%s%3N)\" ) & \
         sleep {}.{:03}; done; wait",
        interval_ms / 1000,
        interval_ms % 1000,
        ms = u64::from(max_secs) * 1000,
        s = quote(stop),
    );
    Read::new(line, |text| {
        Ok(text.lines().filter_map(load_request).collect())
    })
}

/// One request of a drill's load, on the clock of the host that sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadRequest {
    pub start_ms: i64,
    /// The HTTP status, `000` when there was no answer (a ping: 200 or 000).
    pub code: String,
    /// The first word of the page (`None`: no page, or a ping).
    pub who: Option<String>,
    pub end_ms: i64,
}

/// A line of the load; a line cut short (the loop ended while a request was printing) is none,
/// its end missing is its start.
fn load_request(line: &str) -> Option<LoadRequest> {
    let mut w = line.split_whitespace();
    let start_ms: i64 = w.next()?.parse().ok()?;
    let code = w.next()?.to_string();
    let who = w.next().filter(|w| *w != "-").map(str::to_string);
    let end_ms = w.next().and_then(|e| e.parse().ok()).unwrap_or(start_ms);
    Some(LoadRequest {
        start_ms,
        code,
        who,
        end_ms,
    })
}

/// The client's view of `vip` until the file `stop` exists or `max_secs` have passed, as lines:
/// `N <ms> <MAC>` (or `-`): what the client's neighbour table holds for the VIP, four times a
/// second; `A <ms> <MAC>...`: the MACs that answered an ARP request for the VIP, about once a
/// second until the file `quiet` exists.
///
/// The requests are sent from `asker`, a macvlan link of its own in a network namespace of its
/// own (ended with the loop), from 0.0.0.0: the answers go to its MAC and nobody learns from
/// the requests, so the client's own entry ages as it would without the drill. The link is
/// made inside that namespace once it exists (never in the client's, where an early move would
/// have left it behind), and goes with it. Where no
/// macvlan can be made, a line `X` says the requests come from the client itself.
pub fn drill_arp_watch(
    iface: &str,
    vip: &str,
    max_secs: u32,
    stop: &str,
    quiet: &str,
    asker: &str,
) -> Read<Vec<ArpSeen>> {
    let ask_loop = |dev: &str, source: &str| {
        format!(
            "while [ ! -e {s} ] && [ ! -e {q} ] && [ $(date +%s%3N) -lt $end ]; do \
             t=$(date +%s%3N); m=$(arping -b -c 2 -w 1 -I {d} {source}{v} 2>/dev/null | sed -n 's/.*\\[\\([0-9A-Fa-f:]*\\)\\].*/\\1/p' | tr A-F a-f | sort -u | tr '\\n' ' '); \
             echo \"A $t $m\"; done",
            d = quote(dev),
            s = quote(stop),
            q = quote(quiet),
            v = quote(vip),
        )
    };
    let a = quote(asker);
    let private = format!(
        "end=$1; while ! ip link show {a} >/dev/null 2>&1; do [ $(date +%s%3N) -lt $end ] || exit 0; sleep 0.05; done; \
         ip link set {a} up; {}",
        ask_loop(asker, "-s 0.0.0.0 ")
    );
    let line = format!(
        "end=$(( $(date +%s%3N) + {ms} )); \
         unshare --net sh -c {private} sh \"$end\" & p=$!; \
         me=$(readlink /proc/self/ns/net); while [ \"$(readlink /proc/$p/ns/net 2>/dev/null)\" = \"$me\" ]; do sleep 0.02; done; \
         if ! ip link add link {i} name {a} netns $p type macvlan mode bridge 2>/dev/null; then \
         kill $p 2>/dev/null; echo X; ( {own} ) & fi; \
         while [ ! -e {s} ] && [ $(date +%s%3N) -lt $end ]; do \
         t=$(date +%s%3N); e=$({entry}); echo \"N $t ${{e:--}}\"; sleep 0.25; done; wait",
        ms = u64::from(max_secs) * 1000,
        private = quote(&private),
        own = ask_loop(iface, ""),
        i = quote(iface),
        s = quote(stop),
        entry = neigh_lladdr_line(vip),
    );
    Read::new(line, |text| Ok(text.lines().filter_map(arp_seen).collect()))
}

/// A line of [`drill_arp_watch`], on the client's clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArpSeen {
    /// `X`: no macvlan could be made, the requests come from the client itself.
    FromClient,
    /// `N`: the MAC the client's neighbour table held for the VIP (`None`: no entry).
    Entry { ms: i64, mac: Option<String> },
    /// `A`: the MACs that answered a request for the VIP (none: nobody answered).
    Answers { ms: i64, macs: Vec<String> },
}

fn arp_seen(line: &str) -> Option<ArpSeen> {
    let mut w = line.split_whitespace();
    let kind = w.next()?;
    if kind == "X" {
        return Some(ArpSeen::FromClient);
    }
    let ms: i64 = w.next()?.parse().ok()?;
    match kind {
        "N" => Some(ArpSeen::Entry {
            ms,
            mac: w.next().filter(|m| *m != "-").map(str::to_string),
        }),
        "A" => Some(ArpSeen::Answers {
            ms,
            macs: w.map(str::to_string).collect(),
        }),
        _ => None,
    }
}

/// The host's kernel adding or removing `vip`, as it happens, until the file `stop` exists or
/// `max_secs` have passed: `<ms> add|del <device>` lines.
pub fn drill_vip_events(vip: &str, max_secs: u32, stop: &str) -> Read<Vec<VipChange>> {
    let line = format!(
        "end=$(( $(date +%s%3N) + {ms} )); \
         ( ip -o monitor address & p=$!; while [ ! -e {s} ] && [ $(date +%s%3N) -lt $end ]; do sleep 0.3; done; kill $p ) 2>/dev/null | \
         while read -r l; do case \"$l\" in *\" inet \"{v}/*) t=$(date +%s%3N); a=add; set -- $l; \
         if [ \"$1\" = Deleted ]; then a=del; shift; fi; echo \"$t $a $2\";; esac; done",
        ms = u64::from(max_secs) * 1000,
        s = quote(stop),
        v = quote(vip),
    );
    Read::new(line, |text| {
        Ok(text.lines().filter_map(vip_change).collect())
    })
}

/// The kernel adding or removing the VIP on a device, on the clock of its host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VipChange {
    pub ms: i64,
    /// Added; else removed.
    pub added: bool,
    pub device: String,
}

fn vip_change(line: &str) -> Option<VipChange> {
    let mut words = line.split_whitespace();
    let ms = words.next()?.parse().ok()?;
    let what = words.next()?;
    let device = words.next()?.to_string();
    Some(VipChange {
        ms,
        added: what == "add",
        device,
    })
}

/// Reboots the host half a second from now (so the command that asks returns first): an lvslab
/// lab node's power cut (SIGUSR1 to its init, see the lab's node init), else systemd's reboot,
/// else the init system's.
pub fn reboot_host() -> String {
    detached(
        "sleep 0.5; if [ -e /run/lvslab-lab-node ]; then kill -USR1 1; \
         elif [ -d /run/systemd/system ]; then systemctl reboot; else reboot; fi",
    )
}

/// A fault's undo, left on the host before the fault: `undo` runs by itself `secs` from now,
/// detached, unless [`undo_cancel`] comes first, so a drill whose controller dies (SIGKILL, a
/// lost connection) leaves nothing broken for longer than the fault was meant to last. `tag`
/// names the undo: its file holds the id of the one undo that may run (written before this
/// returns), so a cancel is never too early and a newer undo of the tag replaces an older one.
pub fn undo_after(tag: &str, secs: u32, undo: &str) -> String {
    let file = undo_file(tag);
    let wake = format!(
        "sleep {secs}; [ \"$(cat {file} 2>/dev/null)\" = \"$1\" ] || exit 0; rm -f {file}; {undo}"
    );
    format!(
        "mkdir -p {STATE_DIR} && id=$$.$(date +%s%N) && echo \"$id\" > {file} && \
         {{ setsid sh -c {} sh \"$id\" </dev/null >/dev/null 2>&1 & }}",
        quote(&wake)
    )
}

/// The undo left by [`undo_after`] for `tag` not run (the drill undoes the fault itself).
pub fn undo_cancel(tag: &str) -> String {
    format!("rm -f {}", undo_file(tag))
}

fn undo_file(tag: &str) -> String {
    let word: String = tag
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{STATE_DIR}/undo-{word}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::sh::tests::sh;

    /// On this machine: the undo runs by itself when its time comes, not when cancelled (even
    /// at once), and only the newest of a tag.
    #[test]
    fn a_fault_s_undo_runs_by_itself_unless_cancelled() {
        let dir = std::env::temp_dir().join(format!("lvslab-undo-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mark = |name: &str| dir.join(name);
        let touch = |name: &str| format!("touch {}", quote(mark(name).to_str().unwrap()));
        let tag = format!("test-{}", std::process::id());
        let (rc, _) = sh(&undo_after(&tag, 1, &touch("ran")));
        assert_eq!(rc, 0);
        let (rc, _) = sh(&undo_after(&format!("{tag}-2"), 1, &touch("cancelled")));
        assert_eq!(rc, 0);
        let (rc, _) = sh(&undo_cancel(&format!("{tag}-2")));
        assert_eq!(rc, 0);
        // A newer undo of a tag replaces the older one.
        for name in ["older", "newer"] {
            let (rc, _) = sh(&undo_after(&format!("{tag}-3"), 1, &touch(name)));
            assert_eq!(rc, 0);
        }
        std::thread::sleep(std::time::Duration::from_millis(1800));
        assert!(mark("ran").exists(), "the undo ran by itself");
        assert!(mark("newer").exists() && !mark("older").exists());
        assert!(
            !mark("cancelled").exists(),
            "the cancelled undo did not run"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_host_s_clock() {
        assert_eq!(epoch_ms().parse("1796562606207\n"), Ok(1_796_562_606_207));
        assert!(epoch_ms().parse("").is_err());
        // A `date` without %N (busybox) prints the letter.
        assert!(epoch_ms().parse("1796562606%3N\n").is_err());
    }

    /// Captured in a network namespace: GETs every 300 ms of a web server stopped during the
    /// load; pings every 500 ms (the unanswered one written in the same format).
    #[test]
    fn a_drill_s_requests() {
        let request = |start_ms, code: &str, who: Option<&str>, end_ms| LoadRequest {
            start_ms,
            code: code.into(),
            who: who.map(str::to_string),
            end_ms,
        };
        let http = drill_http_load("http://198.18.0.100:80/", 300, 1, 2, "/tmp/stop");
        assert_eq!(
            http.parse(
                "1796563327123 200 node2 1796563327137\n\
                 1796563328340 200 node2 1796563328352\n\
                 1796563328643 000 - 1796563328654\n"
            ),
            Ok(vec![
                request(1796563327123, "200", Some("node2"), 1796563327137),
                request(1796563328340, "200", Some("node2"), 1796563328352),
                request(1796563328643, "000", None, 1796563328654),
            ])
        );
        // Cut short when the loop ended: the end missing is the start; a bare time is none.
        assert_eq!(
            http.parse("1796563328947 000 -\n1796563328950\n"),
            Ok(vec![request(1796563328947, "000", None, 1796563328947)])
        );
        let ping = drill_ping_load("198.18.0.100", 500, 2, "/tmp/stop");
        assert_eq!(
            ping.parse("1796563327122 200 - 1796563327127\n1796563327629 000 - 1796563328631\n"),
            Ok(vec![
                request(1796563327122, "200", None, 1796563327127),
                request(1796563327629, "000", None, 1796563328631),
            ])
        );
        assert_eq!(ping.parse(""), Ok(vec![]));
    }

    /// Captured in a network namespace: the client's entry and the answers (from a macvlan
    /// asker); `X` and an empty answer written in the same format.
    #[test]
    fn a_drill_s_arp_watch() {
        let q = drill_arp_watch(
            "eth0",
            "198.18.0.100",
            3,
            "/tmp/stop",
            "/tmp/quiet",
            "lvsarp0001",
        );
        let mac = "7e:6f:31:81:19:81".to_string();
        assert_eq!(
            q.parse(
                "N 1796563334611 7e:6f:31:81:19:81\n\
                 A 1796563334670 7e:6f:31:81:19:81 \n\
                 N 1796563334879 -\n\
                 X\n\
                 A 1796563335685 \n\
                 A 1796563336696 7e:6f:31:81:19:81 52:54:00:12:00:0c \n\
                 N\n"
            ),
            Ok(vec![
                ArpSeen::Entry {
                    ms: 1796563334611,
                    mac: Some(mac.clone())
                },
                ArpSeen::Answers {
                    ms: 1796563334670,
                    macs: vec![mac.clone()]
                },
                ArpSeen::Entry {
                    ms: 1796563334879,
                    mac: None
                },
                ArpSeen::FromClient,
                ArpSeen::Answers {
                    ms: 1796563335685,
                    macs: vec![]
                },
                ArpSeen::Answers {
                    ms: 1796563336696,
                    macs: vec![mac, "52:54:00:12:00:0c".to_string()]
                },
            ])
        );
    }

    /// Captured in a network namespace: the VIP added on eth0 as eth0:3, removed, then added
    /// on eth1 (`ip -o monitor address`, read by the loop).
    #[test]
    fn a_director_s_vip_events() {
        let change = |ms, added, device: &str| VipChange {
            ms,
            added,
            device: device.into(),
        };
        let q = drill_vip_events("198.18.0.100", 4, "/tmp/stop");
        assert_eq!(
            q.parse("1796563327919 add eth0\n1796563328323 del eth0\n1796563328629 add eth1\n"),
            Ok(vec![
                change(1796563327919, true, "eth0"),
                change(1796563328323, false, "eth0"),
                change(1796563328629, true, "eth1"),
            ])
        );
        assert_eq!(q.parse(""), Ok(vec![]));
        assert_eq!(q.parse("1796563327919 add\n"), Ok(vec![]));
    }
}
