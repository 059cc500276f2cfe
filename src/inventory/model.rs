//! The inventory file as written: serde types that refuse unknown keys and wrong types, with
//! spans kept wherever a later check needs to point at a line.

use std::path::PathBuf;

use indexmap::IndexMap;
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::Vars;
use crate::lvs::{Forwarding, Protocol, SchedFlag, Scheduler, VrrpState};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InventoryFile {
    #[serde(default)]
    pub connection: ConnectionSettings,
    pub lvs: Option<Spanned<LvsSettings>>,
    #[serde(default)]
    pub vars: Vars,
    /// Like `vars`, but every value is masked wherever lvslab prints.
    #[serde(default)]
    pub secrets: IndexMap<String, Spanned<String>>,
    pub hosts: Spanned<IndexMap<String, Spanned<HostEntry>>>,
    #[serde(default)]
    pub groups: IndexMap<String, Spanned<GroupEntry>>,
}

/// Connection settings; all optional so a host can override only some.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionSettings {
    /// Connect here instead of the host's `address` (a name or another address).
    pub host: Option<Spanned<String>>,
    pub port: Option<Spanned<u16>>,
    pub user: Option<Spanned<String>>,
    pub identity_file: Option<PathBuf>,
    pub known_hosts: Option<PathBuf>,
    /// Reach the host through this SSH server first: `[user@]host[:port]`, like OpenSSH's
    /// ProxyJump (one hop).
    pub jump: Option<Spanned<String>>,
    #[serde(rename = "become")]
    pub become_root: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LvsSettings {
    pub vip: Spanned<String>,
    pub vip_prefix: Option<Spanned<u8>>,
    pub port: Option<Spanned<u32>>,
    #[serde(default)]
    pub protocol: Protocol,
    #[serde(default)]
    pub scheduler: Scheduler,
    /// The scheduler's flags (`sh-port`, `sh-fallback`, `mh-port`, `mh-fallback`); with
    /// `services:`, the default of those that use the same scheduler.
    pub scheduler_flags: Option<Spanned<Vec<Spanned<SchedFlag>>>>,
    pub forwarding: Option<Spanned<Forwarding>>,
    /// Short form: the one service's persistence; with `services:`, their default.
    pub persistence_timeout: Option<Spanned<u32>>,
    pub persistence_granularity: Option<Spanned<String>>,
    /// Who answers when every real server is out: `local` or `ADDRESS:PORT` (a default, with
    /// `services:`).
    pub sorry_server: Option<Spanned<String>>,
    /// The sorry server kept in the table at weight 0 while it is not needed (keepalived's
    /// `sorry_server_inhibit`).
    pub sorry_server_inhibit: Option<Spanned<bool>>,
    /// What keepalived does when checks fail (defaults for `services:`): see
    /// [`crate::lvs::OnFailure`].
    pub inhibit_on_failure: Option<Spanned<bool>>,
    pub alpha: Option<Spanned<bool>>,
    pub quorum: Option<Spanned<u32>>,
    pub hysteresis: Option<Spanned<u32>>,
    /// The IPVS kernel settings of the directors (`net.ipv4.vs.*`); what is not given stays
    /// as the kernel has it.
    pub ipvs_settings: Option<Spanned<IpvsSettings>>,
    /// Several virtual services on the VIP (instead of `port:`); `protocol`, `scheduler` and
    /// the persistence above are their defaults.
    pub services: Option<Spanned<Vec<Spanned<ServiceSettings>>>>,
    pub vrrp: Option<VrrpSettings>,
    pub health_check: Option<Spanned<HealthCheckSettings>>,
    /// NAT's inside network (the real servers' side).
    pub nat: Option<Spanned<NatSettings>>,
}

/// `lvs.ipvs_settings`: the IPVS sysctls that decide what clients see when a real server goes
/// or comes back (the kernel's documentation, ipvs-sysctl, says what each value does).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IpvsSettings {
    pub conn_reuse_mode: Option<Spanned<u32>>,
    pub expire_nodest_conn: Option<Spanned<u32>>,
    pub expire_quiescent_template: Option<Spanned<u32>>,
    pub sloppy_tcp: Option<Spanned<u32>>,
}

/// One virtual service of `lvs.services`: a port, or a firewall mark over several ports.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSettings {
    /// Only the lab's one VIP (`lvs.vip`) for now.
    pub vip: Option<Spanned<String>>,
    pub port: Option<Spanned<u32>>,
    pub fwmark: Option<Spanned<u32>>,
    /// A firewall-mark service's ports (the packets to the VIP on them get the mark).
    pub ports: Option<Spanned<Vec<Spanned<u32>>>>,
    pub protocol: Option<Protocol>,
    pub scheduler: Option<Scheduler>,
    pub scheduler_flags: Option<Spanned<Vec<Spanned<SchedFlag>>>>,
    pub persistence_timeout: Option<Spanned<u32>>,
    pub persistence_granularity: Option<Spanned<String>>,
    pub sorry_server: Option<Spanned<String>>,
    pub sorry_server_inhibit: Option<Spanned<bool>>,
    /// Served with TLS (a certificate lvslab makes on each web server; keepalived's check is
    /// then SSL_GET).
    pub tls: Option<Spanned<bool>>,
    pub inhibit_on_failure: Option<Spanned<bool>>,
    pub alpha: Option<Spanned<bool>>,
    pub quorum: Option<Spanned<u32>>,
    pub hysteresis: Option<Spanned<u32>>,
    /// The real servers of this service, by name (default: the whole `real_servers` group).
    pub real_servers: Option<Spanned<Vec<Spanned<String>>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VrrpSettings {
    pub virtual_router_id: Spanned<u32>,
    pub advert_int: Option<Spanned<u32>>,
    pub auth_pass: Option<Spanned<String>>,
    /// Adverts sent to the other directors' addresses instead of the multicast group.
    pub unicast: Option<Spanned<bool>>,
    /// `false`: keepalived's `nopreempt` (a recovered higher priority does not take the VIP
    /// back).
    pub preempt: Option<Spanned<bool>>,
    /// Seconds a recovered higher priority waits before it takes the VIP back.
    pub preempt_delay: Option<Spanned<u32>>,
    /// A MASTER that hears a higher priority's advert sends one of its own before it steps
    /// down, so the winner sends its gratuitous ARPs again (after two MASTERs).
    pub higher_prio_send_advert: Option<Spanned<bool>>,
    /// Each VRRP transition appended to a log on the director (`lvslab status` shows them).
    pub notify: Option<Spanned<bool>>,
    /// Interfaces besides the VRRP one whose loss puts a director in FAULT (it gives up the
    /// VIP); the same names on every director.
    pub track_interface: Option<Spanned<Vec<Spanned<String>>>>,
    /// Commands each director runs every `interval` s: a failing one lowers its priority by
    /// `weight` (or, with weight 0, puts it in FAULT): the VIP moves when the director cannot
    /// serve although keepalived runs.
    pub track_script: Option<Spanned<Vec<Spanned<TrackScriptEntry>>>>,
    /// Gratuitous ARPs after becoming MASTER: a second burst `garp_master_delay` s later
    /// (0: none), `garp_master_repeat` at a time, and every `garp_master_refresh` s while
    /// MASTER (0: never), `garp_master_refresh_repeat` at a time.
    pub garp_master_delay: Option<Spanned<u32>>,
    pub garp_master_repeat: Option<Spanned<u32>>,
    pub garp_master_refresh: Option<Spanned<u32>>,
    pub garp_master_refresh_repeat: Option<Spanned<u32>>,
    /// IPVS connection sync (keepalived's `lvs_sync_daemon` on the directors' interface): the
    /// MASTER sends its connections' entries, the BACKUP keeps them, so connections established
    /// through the VIP survive a failover.
    pub sync_daemon: Option<Spanned<bool>>,
}

/// One of `track_script`: keepalived's `vrrp_script`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrackScriptEntry {
    pub name: Option<Spanned<String>>,
    pub script: Spanned<String>,
    pub interval: Option<Spanned<u32>>,
    pub timeout: Option<Spanned<u32>>,
    pub weight: Option<Spanned<i64>>,
    pub fall: Option<Spanned<u32>>,
    pub rise: Option<Spanned<u32>>,
}

impl VrrpSettings {
    /// `preempt`, keepalived's default (preemption) when it is not given.
    pub fn preempt(&self) -> bool {
        self.preempt.as_ref().is_none_or(|p| p.value)
    }
}

/// keepalived's check of each real server (HTTP_GET unless `type: tcp`); what is not given
/// takes the seed's value.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthCheckSettings {
    #[serde(rename = "type")]
    pub kind: Option<Spanned<crate::lvs::CheckKind>>,
    pub path: Option<Spanned<String>>,
    pub status_code: Option<Spanned<u32>>,
    pub connect_timeout: Option<Spanned<u32>>,
    pub retry: Option<Spanned<u32>>,
    pub delay_before_retry: Option<Spanned<u32>>,
    pub delay_loop: Option<Spanned<u32>>,
    /// `type: misc`: the command to run for each real server.
    pub script: Option<Spanned<String>>,
    pub via_vip: Option<Spanned<bool>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatSettings {
    /// The real servers' network, e.g. `198.18.1.0/24`.
    pub inside: Spanned<String>,
    /// The floating inside address the real servers route through (moves with the VIP).
    pub gateway: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostEntry {
    pub address: Spanned<String>,
    pub interface: Option<Spanned<String>>,
    /// NAT: a director's interface on the real servers' network.
    pub inside_interface: Option<Spanned<String>>,
    pub weight: Option<Spanned<i64>>,
    /// A real server taken out of service (`lvslab drain`): weight 0 wherever it serves, its
    /// `weight:` kept for `lvslab undrain`.
    pub drained: Option<Spanned<bool>>,
    pub vrrp: Option<HostVrrpEntry>,
    #[serde(default)]
    pub connection: ConnectionSettings,
    #[serde(default)]
    pub vars: Vars,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostVrrpEntry {
    pub state: Spanned<VrrpState>,
    pub priority: Spanned<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupEntry {
    #[serde(default)]
    pub hosts: Vec<Spanned<String>>,
    #[serde(default)]
    pub vars: Vars,
}
