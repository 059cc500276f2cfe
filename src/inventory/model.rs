//! The inventory file as written: serde types that refuse unknown keys and wrong types.

use std::path::PathBuf;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

use super::Vars;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InventoryFile {
    #[serde(default)]
    pub connection: ConnectionSettings,
    pub lvs: Option<LvsSettings>,
    #[serde(default)]
    pub vars: Vars,
    /// Like `vars`, but every value is masked wherever lvslab prints.
    #[serde(default)]
    pub secrets: IndexMap<String, String>,
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
    pub port: Option<u16>,
    pub user: Option<Spanned<String>>,
    pub identity_file: Option<PathBuf>,
    pub known_hosts: Option<PathBuf>,
    /// Reach the host through this SSH server first: `[user@]host[:port]`, like OpenSSH's
    /// ProxyJump (one hop). Same key and known_hosts as the host itself.
    pub jump: Option<Spanned<String>>,
    #[serde(rename = "become")]
    pub become_root: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LvsSettings {
    pub vip: Spanned<String>,
    #[serde(default = "default_vip_prefix")]
    pub vip_prefix: Spanned<u8>,
    #[serde(default = "default_port")]
    pub port: u16,
    #[serde(default)]
    pub protocol: Protocol,
    #[serde(default)]
    pub scheduler: Scheduler,
    #[serde(default)]
    pub forwarding: Forwarding,
    pub vrrp: Option<VrrpSettings>,
    #[serde(default)]
    pub health_check: HealthCheck,
}

fn default_vip_prefix() -> Spanned<u8> {
    Spanned {
        value: 24,
        referenced: serde_saphyr::Location::UNKNOWN,
        defined: serde_saphyr::Location::UNKNOWN,
    }
}

fn default_port() -> u16 {
    80
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VrrpSettings {
    pub virtual_router_id: Spanned<u32>,
    #[serde(default = "default_advert_int")]
    pub advert_int: u32,
    pub auth_pass: Option<Spanned<String>>,
}

fn default_advert_int() -> u32 {
    1
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    #[default]
    Tcp,
    Udp,
}

/// IPVS scheduling algorithms (`ipvsadm -s`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheduler {
    #[default]
    Rr,
    Wrr,
    Lc,
    Wlc,
    Lblc,
    Lblcr,
    Dh,
    Sh,
    Sed,
    Nq,
    Fo,
    Ovf,
    Mh,
}

impl Scheduler {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheduler::Rr => "rr",
            Scheduler::Wrr => "wrr",
            Scheduler::Lc => "lc",
            Scheduler::Wlc => "wlc",
            Scheduler::Lblc => "lblc",
            Scheduler::Lblcr => "lblcr",
            Scheduler::Dh => "dh",
            Scheduler::Sh => "sh",
            Scheduler::Sed => "sed",
            Scheduler::Nq => "nq",
            Scheduler::Fo => "fo",
            Scheduler::Ovf => "ovf",
            Scheduler::Mh => "mh",
        }
    }
}

/// LVS forwarding methods.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Forwarding {
    /// Direct routing (`-g`, keepalived `DR`): the seed's choice.
    #[default]
    Dr,
    /// Masquerading (`-m`, `NAT`).
    Nat,
    /// IP-in-IP tunnelling (`-i`, `TUN`).
    Tun,
}

impl Forwarding {
    pub fn ipvsadm_flag(self) -> &'static str {
        match self {
            Forwarding::Dr => "-g",
            Forwarding::Nat => "-m",
            Forwarding::Tun => "-i",
        }
    }
}

/// keepalived's HTTP_GET check of each real server.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HealthCheck {
    pub path: String,
    pub status_code: u16,
    pub connect_timeout: u32,
    pub retry: u32,
    pub delay_before_retry: u32,
    pub delay_loop: u32,
}

impl Default for HealthCheck {
    fn default() -> Self {
        HealthCheck {
            path: "/".into(),
            status_code: 200,
            connect_timeout: 3,
            retry: 3,
            delay_before_retry: 3,
            delay_loop: 6,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostEntry {
    pub address: Spanned<String>,
    pub interface: Option<Spanned<String>>,
    pub weight: Option<u32>,
    pub vrrp: Option<HostVrrpEntry>,
    #[serde(default)]
    pub connection: ConnectionSettings,
    #[serde(default)]
    pub vars: Vars,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostVrrpEntry {
    pub state: VrrpState,
    pub priority: Spanned<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum VrrpState {
    Master,
    Backup,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupEntry {
    #[serde(default)]
    pub hosts: Vec<Spanned<String>>,
    #[serde(default)]
    pub vars: Vars,
}
