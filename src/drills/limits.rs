//! What the protocols promise, computed from the inventory (and the client's own ARP settings):
//! the bound each drill's outage is judged against.

use serde::Serialize;

use crate::lvs::{HealthCheck, Vrrp};
use crate::transport::sh::NeighTimers;

/// Lab timing is not exact: the request interval, the sampling, a loaded or emulated CPU that
/// runs keepalived's timers late. A drill fails when the outage exceeds its limit by more than
/// this, unless `--margin` says otherwise.
pub const DEFAULT_MARGIN_MS: u64 = 1000;

/// A bound, how it was computed, and the lateness forgiven beyond it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Limit {
    pub ms: u64,
    pub why: String,
    pub margin_ms: u64,
}

impl Limit {
    /// A bound with the default margin.
    pub fn new(ms: u64, why: impl Into<String>) -> Limit {
        Limit {
            ms,
            why: why.into(),
            margin_ms: DEFAULT_MARGIN_MS,
        }
    }

    /// The same bound forgiving `margin_ms` of lateness.
    pub fn with_margin(self, margin_ms: u64) -> Limit {
        Limit { margin_ms, ..self }
    }

    /// The bound and its margin: the most a drill may measure and pass.
    pub fn bound_ms(&self) -> u64 {
        self.ms.saturating_add(self.margin_ms)
    }
}

/// VRRP's skew time of a backup: (256 − priority) / 256 s, in ms.
pub fn skew_ms(backup_priority: u8) -> u64 {
    (256 - u64::from(backup_priority)) * 1000 / 256
}

/// Master_Down_Interval = 3 × advert_int + skew: how long a backup waits for a silent MASTER.
pub fn master_down(vrrp: Option<&Vrrp>, backup_priority: u8) -> Limit {
    let advert = vrrp.map_or(1, |v| u64::from(v.advert_int));
    let skew = skew_ms(backup_priority);
    Limit::new(
        3 * advert * 1000 + skew,
        format!(
            "Master_Down_Interval = 3 x advert_int {advert} s + skew (256 - {backup_priority})/256 s = {} ms",
            3 * advert * 1000 + skew
        ),
    )
}

/// A MASTER that stops cleanly sends a priority-0 advert: the backup takes over after its skew.
pub fn clean_stop(backup_priority: u8) -> Limit {
    let skew = skew_ms(backup_priority);
    Limit::new(
        skew,
        format!(
            "a stopping keepalived sends priority 0: the backup waits only its skew (256 - {backup_priority})/256 s = {skew} ms"
        ),
    )
}

/// How long a real server that fails stays in the table: keepalived's check runs every
/// delay_loop and retries `retry` times, `delay_before_retry` apart; an attempt takes up to
/// connect_timeout when the server hangs, nothing when it refuses.
pub fn realserver_removal(hc: &HealthCheck, refused_at_once: bool) -> Limit {
    let secs = hc.removal_limit_secs(refused_at_once);
    Limit::new(
        u64::from(secs) * 1000,
        if refused_at_once {
            format!(
                "{}: delay_loop {} s + retry {} x delay_before_retry {} s (a refused connection fails at once) = {secs} s",
                hc.kind.keepalived_name(),
                hc.delay_loop,
                hc.retry,
                hc.delay_before_retry
            )
        } else {
            format!(
                "{}: delay_loop {} s + connect_timeout {} s + retry {} x (delay_before_retry {} s + connect_timeout {} s) = {secs} s",
                hc.kind.keepalived_name(),
                hc.delay_loop,
                hc.connect_timeout,
                hc.retry,
                hc.delay_before_retry,
                hc.connect_timeout
            )
        },
    )
}

/// The longest a client keeps sending to a MAC that no longer holds the VIP (stale ARP after a
/// split brain heals, when the VIP's holder sends no gratuitous ARP): an entry stays reachable
/// up to 1.5 × base_reachable_time, then waits delay_first_probe_time, then probes
/// ucast_solicit times, retrans_time apart.
pub fn stale_arp(t: &NeighTimers) -> Limit {
    let ms = t.base_reachable_ms * 3 / 2 + t.delay_first_probe_ms + t.ucast_solicit * t.retrans_ms;
    Limit::new(
        ms,
        format!(
            "the client's stale ARP entry: 1.5 x base_reachable_time {} ms + delay_first_probe {} ms + {} probes x {} ms = {ms} ms",
            t.base_reachable_ms, t.delay_first_probe_ms, t.ucast_solicit, t.retrans_ms
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_follow_the_protocols() {
        assert_eq!(skew_ms(50), 804);
        let vrrp = Vrrp {
            virtual_router_id: 51,
            advert_int: 1,
            auth_pass: None,
            unicast: false,
            preempt: true,
            preempt_delay: 0,
            higher_prio_send_advert: false,
            notify: false,
            track_interface: Vec::new(),
            track_script: Vec::new(),
            garp: Default::default(),
            sync_daemon: false,
        };
        assert_eq!(master_down(Some(&vrrp), 50).ms, 3804);
        assert_eq!(clean_stop(50).ms, 804);
        let hc = HealthCheck::default();
        assert_eq!(realserver_removal(&hc, true).ms, 15_000);
        assert_eq!(realserver_removal(&hc, false).ms, 27_000);
        let t = NeighTimers {
            base_reachable_ms: 30_000,
            delay_first_probe_ms: 5_000,
            ucast_solicit: 3,
            retrans_ms: 1_000,
        };
        assert_eq!(stale_arp(&t).ms, 45_000 + 5_000 + 3_000);
    }
}
