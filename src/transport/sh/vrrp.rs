//! VRRP on the directors: keepalived's state by the VIP, and VRRP blocked on a link.

use super::{ParseError, Read, detached, quote};
use crate::lvs::DirectorState;
use crate::lvs::names::{LOOPBACK, TUNNEL};

/// A director's state (verify, status, a drill's sampling): prints `<keepalived runs> <it is frozen> <holds
/// the VIP>` as 0/1 (the VIP on a device that holds it: [`crate::lvs::names::holds_vip_on`]).
pub fn director_sample(vip: &str) -> Read<DirectorFlags> {
    let line = format!(
        "p=$(pgrep -x keepalived | head -n 1); r=0; f=0; if [ -n \"$p\" ]; then r=1; case $(ps -o stat= -p $p) in T*) f=1;; esac; fi; \
         h=$(ip -o addr show | awk -v ip={} '{{split($4,a,\"/\"); if (a[1]==ip && $2!=\"{LOOPBACK}\" && $2!=\"{TUNNEL}\") print 1}}' | head -n 1); echo \"$r $f ${{h:-0}}\"",
        quote(vip)
    );
    Read::new(line, parse_director_sample)
}

/// What [`director_sample`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirectorFlags {
    pub keepalived_runs: bool,
    /// keepalived is stopped by a signal (SIGSTOP): it runs, and does nothing.
    pub frozen: bool,
    pub holds_vip: bool,
}

impl DirectorFlags {
    /// The director's state these flags make.
    pub fn state(self) -> DirectorState {
        DirectorState::of(self.keepalived_runs, self.frozen, self.holds_vip)
    }
}

fn parse_director_sample(text: &str) -> Result<DirectorFlags, ParseError> {
    let flags: Vec<bool> = text.split_whitespace().map(|w| w == "1").collect();
    match flags[..] {
        [keepalived_runs, frozen, holds_vip] => Ok(DirectorFlags {
            keepalived_runs,
            frozen,
            holds_vip,
        }),
        _ => Err(ParseError::new(
            "not the 3 flags of a director's sample",
            text,
        )),
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
            })
        };
        let table = [
            // No keepalived; the VIP still on eth0 (a keepalived killed before it dropped it).
            ("0 0 1\n", flags(false, false, true)),
            ("1 0 1\n", flags(true, false, true)),
            ("1 1 1\n", flags(true, true, true)),
            // Frozen, and only lo:3 holds it: not held.
            ("1 1 0\n", flags(true, true, false)),
        ];
        for (output, want) in table {
            assert_eq!(
                director_sample("198.18.0.100").parse(output),
                want,
                "{output:?}"
            );
        }
        for bad in ["", "1 0\n"] {
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
        assert_eq!(state("0 0 1\n"), Ok(DirectorState::Stopped));
        assert_eq!(state("1 0 1\n"), Ok(DirectorState::Master));
        assert_eq!(state("1 0 0\n"), Ok(DirectorState::Backup));
        assert_eq!(state("1 1 1\n"), Ok(DirectorState::Frozen));
        assert_eq!(state("1 1 0\n"), Ok(DirectorState::Frozen));
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
}
