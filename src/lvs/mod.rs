//! The LVS domain model: what the load balancer is, built once from the inventory and read by
//! everything else (templates, the `ipvs` module's desired state, verify, status, drills, `down`).
//!
//! Each fact of the LVS world is defined here once: the effective weight of a real server, the
//! group names, the address labels, the forwarding methods and their flags, how an endpoint is
//! written, which web server package a real server runs.

pub mod ipvs;
pub mod marks;
pub mod names;
pub mod net;
pub mod web;

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

pub use net::{Cidr, Endpoint};

/// IPVS scheduling algorithms (`ipvsadm -s`, keepalived `lb_algo`): every one the kernel has.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize, Serialize)]
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
    Twos,
}

impl Scheduler {
    pub const ALL: [Scheduler; 14] = [
        Scheduler::Rr,
        Scheduler::Wrr,
        Scheduler::Lc,
        Scheduler::Wlc,
        Scheduler::Lblc,
        Scheduler::Lblcr,
        Scheduler::Dh,
        Scheduler::Sh,
        Scheduler::Sed,
        Scheduler::Nq,
        Scheduler::Fo,
        Scheduler::Ovf,
        Scheduler::Mh,
        Scheduler::Twos,
    ];

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
            Scheduler::Twos => "twos",
        }
    }

    /// How one client's short requests, one after another, spread over the real servers with
    /// a weight (verify's expectation): what each scheduler decides by, for that load.
    pub fn spread(self) -> Spread {
        match self {
            Scheduler::Rr => Spread::Even,
            // Least connections: each request has ended before the next, so the servers'
            // counts of ended connections (InActConn) decide, and stay level.
            Scheduler::Lc => Spread::Even,
            Scheduler::Wrr | Scheduler::Wlc => Spread::ByWeight,
            Scheduler::Sh => Spread::One("the source address's hash picks one real server"),
            Scheduler::Mh => Spread::One("the source address's Maglev hash picks one real server"),
            Scheduler::Dh => Spread::One("the destination address's hash picks one real server"),
            Scheduler::Lblc | Scheduler::Lblcr => Spread::One(
                "the destination address keeps its real server until that one is overloaded",
            ),
            Scheduler::Sed | Scheduler::Nq => Spread::One(
                "no connection is active when the next one comes, so the first of the highest weight is chosen each time",
            ),
            Scheduler::Fo => {
                Spread::One("the available real server with the highest weight takes all")
            }
            Scheduler::Ovf => Spread::One(
                "the real server with the highest weight takes all until its active connections exceed its weight",
            ),
            Scheduler::Twos => Spread::Random,
        }
    }

    /// The flags this scheduler takes (`ipvsadm -b`, keepalived's keywords of the same names).
    pub fn flags(self) -> &'static [SchedFlag] {
        match self {
            Scheduler::Sh => &[SchedFlag::ShFallback, SchedFlag::ShPort],
            Scheduler::Mh => &[SchedFlag::MhFallback, SchedFlag::MhPort],
            _ => &[],
        }
    }
}

/// How one client's requests spread over a service's real servers (see
/// [`Scheduler::spread`], [`VirtualService::spread`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spread {
    /// Evenly over the real servers with a weight above 0.
    Even,
    /// In proportion to the weights.
    ByWeight,
    /// All to one real server, for the reason given.
    One(&'static str),
    /// Every real server with a weight may answer, in no set proportion (a hash of the client's
    /// port, a random choice): each is expected to answer, the shares are not judged.
    Every(&'static str),
    /// Chosen at random by weight (twos: the better of two random picks): not judged.
    Random,
}

/// A scheduler's flag (`ipvsadm -b`): what `sh` and `mh` hash, and whether they pass over an
/// unavailable real server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
pub enum SchedFlag {
    /// `sh-fallback`: a real server that is unavailable (weight 0, overloaded) passes the
    /// client to the next one instead of dropping it.
    #[serde(rename = "sh-fallback")]
    ShFallback,
    /// `sh-port`: the client's port is hashed too, so one client's connections spread.
    #[serde(rename = "sh-port")]
    ShPort,
    #[serde(rename = "mh-fallback")]
    MhFallback,
    #[serde(rename = "mh-port")]
    MhPort,
}

impl SchedFlag {
    pub const ALL: [SchedFlag; 4] = [
        SchedFlag::ShFallback,
        SchedFlag::ShPort,
        SchedFlag::MhFallback,
        SchedFlag::MhPort,
    ];

    /// ipvsadm's and keepalived's word.
    pub fn as_str(self) -> &'static str {
        match self {
            SchedFlag::ShFallback => "sh-fallback",
            SchedFlag::ShPort => "sh-port",
            SchedFlag::MhFallback => "mh-fallback",
            SchedFlag::MhPort => "mh-port",
        }
    }

    /// The scheduler it belongs to.
    pub fn scheduler(self) -> Scheduler {
        match self {
            SchedFlag::ShFallback | SchedFlag::ShPort => Scheduler::Sh,
            SchedFlag::MhFallback | SchedFlag::MhPort => Scheduler::Mh,
        }
    }

    /// Whether it hashes the client's port as well as its address.
    pub fn hashes_port(self) -> bool {
        matches!(self, SchedFlag::ShPort | SchedFlag::MhPort)
    }

    /// `sh-fallback,sh-port` as `ipvsadm -b` and its listing write a set of flags.
    pub fn list(flags: &[SchedFlag]) -> String {
        flags
            .iter()
            .map(|f| f.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }
}

impl fmt::Display for SchedFlag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for SchedFlag {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        SchedFlag::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| format!("scheduler flag `{s}`"))
    }
}

impl fmt::Display for Scheduler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Scheduler {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Scheduler::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| {
                let all: Vec<&str> = Scheduler::ALL.iter().map(|s| s.as_str()).collect();
                format!("scheduler `{s}`: use one of {}", all.join(", "))
            })
    }
}

/// How the director sends a packet to a real server: the three models of the seed notes.
/// The CLI's `--forwarding` takes it as it is (its values complete in a shell).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize, Serialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Forwarding {
    /// Direct routing (`-g`, keepalived `DR`): the destination MAC is rewritten; real servers
    /// hold the VIP on `lo` and answer the client themselves. The seed's choice.
    #[default]
    Dr,
    /// Masquerading (`-m`, `NAT`): the director rewrites VIP→RIP and back, so every answer
    /// returns through it.
    Nat,
    /// IP-in-IP tunnelling (`-i`, `TUN`): the director wraps the packet; real servers unwrap it
    /// on `tunl0` and answer the client themselves.
    Tun,
}

impl Forwarding {
    pub const ALL: [Forwarding; 3] = [Forwarding::Dr, Forwarding::Nat, Forwarding::Tun];

    /// The inventory's word: `dr`, `nat`, `tun`.
    pub fn as_str(self) -> &'static str {
        match self {
            Forwarding::Dr => "dr",
            Forwarding::Nat => "nat",
            Forwarding::Tun => "tun",
        }
    }

    /// Where a real server holds the VIP as a /32, and its label there: `lo` (DR, with the
    /// tutorial's label) or `tunl0` (TUN); none with NAT.
    pub fn real_server_vip_device(self) -> Option<(&'static str, Option<&'static str>)> {
        match self {
            Forwarding::Dr => Some((names::LOOPBACK, Some(names::REAL_SERVER_LO_LABEL))),
            Forwarding::Tun => Some((names::TUNNEL, None)),
            Forwarding::Nat => None,
        }
    }

    /// `ipvsadm`'s flag for a real server.
    pub fn ipvsadm_flag(self) -> &'static str {
        match self {
            Forwarding::Dr => "-g",
            Forwarding::Nat => "-m",
            Forwarding::Tun => "-i",
        }
    }

    /// The method of an `ipvsadm -S` flag.
    pub fn from_ipvsadm_flag(flag: &str) -> Option<Forwarding> {
        Forwarding::ALL
            .into_iter()
            .find(|f| f.ipvsadm_flag() == flag)
    }

    /// keepalived's `lb_kind`.
    pub fn keepalived_kind(self) -> &'static str {
        match self {
            Forwarding::Dr => "DR",
            Forwarding::Nat => "NAT",
            Forwarding::Tun => "TUN",
        }
    }
}

impl fmt::Display for Forwarding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Forwarding {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Forwarding::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| format!("forwarding `{s}`: use dr, nat or tun"))
    }
}

/// The transport protocol of a virtual service.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, Serialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    #[default]
    Tcp,
    Udp,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }

    /// `ipvsadm`'s service flag.
    pub fn ipvsadm_flag(self) -> &'static str {
        match self {
            Protocol::Tcp => "-t",
            Protocol::Udp => "-u",
        }
    }

    pub fn from_ipvsadm_flag(flag: &str) -> Option<Protocol> {
        [Protocol::Tcp, Protocol::Udp]
            .into_iter()
            .find(|p| p.ipvsadm_flag() == flag)
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who owns the VIP and the IPVS table: keepalived (the seed's section 8, the default) or
/// lvslab by hand on the first director (section 7).
/// The CLI's `--mode` takes it as it is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Management {
    /// keepalived owns the VIP and drives IPVS (seed, section 8).
    #[default]
    Keepalived,
    /// VIP alias and ipvsadm rules by hand (seed, section 7).
    Manual,
}

impl Management {
    pub fn as_str(self) -> &'static str {
        match self {
            Management::Keepalived => "keepalived",
            Management::Manual => "manual",
        }
    }
}

/// A real server's weight when the inventory gives none (the seed's `-w 1`).
pub const DEFAULT_WEIGHT: u16 = 1;

/// The firewall marks of the path checks ([`Lvs::path_services`]) follow this one: 10001 for
/// the first real server, 10002 for the second, ... (a service's own `fwmark` must not be one).
pub const PATH_MARK_BASE: u32 = 10_000;

/// The path checks' marks of `real_servers` real servers, in their order.
pub fn path_marks(real_servers: usize) -> std::ops::RangeInclusive<u32> {
    let count = u32::try_from(real_servers).unwrap_or(u32::MAX - PATH_MARK_BASE);
    PATH_MARK_BASE + 1..=PATH_MARK_BASE.saturating_add(count)
}

/// The weight IPVS uses for a real server: the inventory's, else [`DEFAULT_WEIGHT`]. 0 means
/// 0: the server is in the table but gets no new connections (quiesced).
pub fn effective_weight(configured: Option<u16>) -> u16 {
    configured.unwrap_or(DEFAULT_WEIGHT)
}

/// A VRRP state a director starts in (the inventory's `state:`); what it is in now is a
/// [`DirectorState`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum VrrpState {
    Master,
    Backup,
}

/// What a director is doing now, as read from the host: keepalived's VRRP state, or why it
/// takes no part in VRRP. verify and status read it from keepalived itself (its state dump);
/// a drill's fast sampling infers MASTER and BACKUP from the VIP ([`DirectorState::of`]).
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum DirectorState {
    /// keepalived runs and this director holds the VIP.
    Master,
    /// keepalived runs, no VIP here.
    Backup,
    /// keepalived says BACKUP but heard no advert from a MASTER while it was watched: the
    /// MASTER's adverts do not reach it.
    Deaf,
    /// keepalived says FAULT: an interface or something it tracks is down.
    Fault,
    /// keepalived is starting (INIT).
    Init,
    /// keepalived runs but does not answer (no state dump in time): a hung daemon.
    Hung,
    /// keepalived is stopped by a signal (SIGSTOP, state T): it sends no adverts and takes
    /// nothing over, whether or not it holds the VIP.
    Frozen,
    /// No keepalived (stopped, or killed).
    Stopped,
    /// The director did not answer.
    Unreachable,
}

impl DirectorState {
    /// From what the host showed: keepalived runs, it is frozen, the VIP is held here (on a
    /// device that holds it: [`names::holds_vip_on`]).
    pub fn of(keepalived_runs: bool, frozen: bool, holds_vip: bool) -> Self {
        match (keepalived_runs, frozen, holds_vip) {
            (false, _, _) => DirectorState::Stopped,
            (true, true, _) => DirectorState::Frozen,
            (true, false, true) => DirectorState::Master,
            (true, false, false) => DirectorState::Backup,
        }
    }

    /// keepalived's own words for its states; lvslab's for the others.
    pub fn word(self) -> &'static str {
        match self {
            DirectorState::Master => "MASTER",
            DirectorState::Backup | DirectorState::Deaf => "BACKUP",
            DirectorState::Fault => "FAULT",
            DirectorState::Init => "INIT",
            DirectorState::Hung => "HUNG",
            DirectorState::Frozen => "FROZEN",
            DirectorState::Stopped => "STOPPED",
            DirectorState::Unreachable => "unreachable",
        }
    }

    /// Whether the director takes part in VRRP (can hold or take over the VIP).
    pub fn in_vrrp(self) -> bool {
        matches!(self, DirectorState::Master | DirectorState::Backup)
    }

    /// What a state outside VRRP means for the pair, for a verdict's evidence.
    pub fn meaning(self) -> Option<&'static str> {
        match self {
            DirectorState::Master | DirectorState::Backup => None,
            DirectorState::Frozen => {
                Some("keepalived stopped by a signal (state T): no failover from or to it")
            }
            DirectorState::Stopped => Some("no keepalived: no failover from or to it"),
            DirectorState::Deaf => Some(
                "it heard no advert from a MASTER while watched: the MASTER's adverts do not reach it",
            ),
            DirectorState::Fault => Some(
                "keepalived is in FAULT (an interface or a tracked check is down): no failover to it",
            ),
            DirectorState::Init => Some("keepalived is starting: not in VRRP yet"),
            DirectorState::Hung => Some(
                "keepalived does not answer (no state dump when asked): no failover from or to it",
            ),
            DirectorState::Unreachable => Some("its state could not be read"),
        }
    }
}

/// The load balancer.
#[derive(Debug, Clone, Serialize)]
pub struct Lvs {
    /// The virtual services, all on one VIP, in inventory order (at least one).
    pub services: Vec<VirtualService>,
    /// The directors in inventory order.
    pub directors: Vec<Director>,
    /// The real servers in inventory order.
    pub real_servers: Vec<RealServer>,
    pub vrrp: Option<Vrrp>,
    pub health_check: HealthCheck,
    /// The inside network of a NAT setup (`lvs.nat`), if the inventory has one.
    pub nat: Option<NatNetwork>,
    /// The IPVS kernel settings the inventory gives, for every director.
    pub ipvs_sysctls: Vec<Sysctl>,
}

/// A kernel setting and its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Sysctl {
    pub key: String,
    pub value: String,
}

/// The IPVS settings the inventory may give (`lvs.ipvs_settings`), their sysctl under
/// `net.ipv4.vs.`, and the values each takes.
pub const IPVS_SETTINGS: &[(&str, std::ops::RangeInclusive<i64>)] = &[
    // Bit 1: a new connection from a client port still in the table (TIME_WAIT, CLOSE) is
    // scheduled anew; bit 2 also in FIN_WAIT, which is where DR and TUN leave them.
    ("conn_reuse_mode", 0..=3),
    // 1: a connection to a real server that was removed is dropped at its next packet (the
    // client's retry is then scheduled), instead of hanging until it times out.
    ("expire_nodest_conn", 0..=1),
    // 1: a persistence template to a real server of weight 0 expires, so a persistent client
    // moves on when the server is drained (keepalived's inhibit_on_failure).
    ("expire_quiescent_template", 0..=1),
    // 1: a connection that IPVS did not see start (after a failover without sync) is taken
    // up from any packet: with the mh scheduler, the new director sends it where the old did.
    ("sloppy_tcp", 0..=1),
];

/// The sysctl of an IPVS setting.
pub fn ipvs_sysctl(setting: &str) -> String {
    format!("net.ipv4.vs.{setting}")
}

/// One virtual service: a VIP and port (or a firewall mark that groups ports of the VIP), and
/// where its connections go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VirtualService {
    pub vip: IpAddr,
    /// The VIP's prefix on the directors' interface (the real servers use a host route).
    #[serde(default = "host_prefix")]
    pub vip_prefix: u8,
    /// The port clients connect to; a firewall-mark service: its first port (the one its
    /// health checks ask, [`VirtualService::check_endpoint`]).
    pub port: u16,
    #[serde(default)]
    pub protocol: Protocol,
    /// A firewall-mark service (`ipvsadm -f`, keepalived `virtual_server fwmark`): the
    /// directors mark the packets to the VIP on [`VirtualService::ports`] with it, and IPVS
    /// schedules them as one service (a client persistent on 80 stays on the same real server
    /// on 443).
    #[serde(default)]
    pub fwmark: Option<u32>,
    /// The ports clients connect to: `[port]`, or a firewall-mark service's ports.
    #[serde(default)]
    pub ports: Vec<u16>,
    #[serde(default)]
    pub scheduler: Scheduler,
    /// The scheduler's flags (`ipvsadm -b`), in [`SchedFlag`]'s order, each one of
    /// [`Scheduler::flags`].
    #[serde(default)]
    pub scheduler_flags: Vec<SchedFlag>,
    #[serde(default)]
    pub forwarding: Forwarding,
    /// Keep a client on one real server (`ipvsadm -p`, keepalived `persistence_timeout`).
    #[serde(default)]
    pub persistence: Option<Persistence>,
    /// Who answers when every real server is out (keepalived `sorry_server`).
    #[serde(default)]
    pub sorry_server: Option<SorryServer>,
    /// Served with TLS on its ports (the web servers' lvslab certificate); keepalived checks it
    /// with SSL_GET where the check is `http`.
    #[serde(default)]
    pub tls: bool,
    /// What keepalived does with its real servers when checks fail.
    #[serde(default)]
    pub on_failure: OnFailure,
    /// Where connections go, with the weight IPVS uses.
    #[serde(default)]
    pub real_servers: Vec<Member>,
}

/// What keepalived does with a service's real servers when their checks fail (keepalived.conf's
/// `virtual_server` keys of the same names; manual mode has no continuous checks).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnFailure {
    /// A failed real server gets weight 0 instead of leaving the table: no new connection goes
    /// to it, and the ones it has keep their entry (with `expire_nodest_conn` a removed server's
    /// are dropped at their next packet).
    #[serde(default)]
    pub inhibit_on_failure: bool,
    /// The sorry server stays in the table at weight 0 while real servers serve (keepalived adds
    /// it so at start), and gets its weight when they are all out; without it keepalived adds
    /// it then and removes it after.
    #[serde(default)]
    pub sorry_server_inhibit: bool,
    /// Every real server starts failed and joins when its first check passes (after a start or
    /// a reload that adds it): no request goes to a server nobody has checked.
    #[serde(default)]
    pub alpha: bool,
    /// The least total weight of the real servers in service; below it keepalived takes them
    /// all out and puts the sorry server in (without a sorry server it only runs scripts,
    /// which lvslab does not configure).
    #[serde(default)]
    pub quorum: Option<u32>,
    /// How far below (to lose) or above (to regain) the quorum the weight must go: a flap
    /// damper.
    #[serde(default)]
    pub hysteresis: Option<u32>,
}

/// Persistence: connections of one client (or of one client network, with a granularity)
/// go to the real server its first went to, while they keep coming within `timeout` seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Persistence {
    pub timeout: u32,
    /// The client netmask that counts as one client (`ipvsadm -M`, keepalived
    /// `persistence_granularity`); `None`: one address (255.255.255.255).
    #[serde(default)]
    pub granularity: Option<std::net::Ipv4Addr>,
}

/// keepalived's sorry server: added to the table when every real server of the service is out,
/// removed when one is back. Health checks (keepalived) decide it: manual mode has none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SorryServer {
    /// Each director answers itself (ldirectord's `fallback`): IPVS delivers to a local
    /// address as it came (LOCALNODE), so the director's own web server, on the service's
    /// port, serves a sorry page.
    Local,
    /// Another host, set up to answer for the VIP as the forwarding method needs.
    At(Endpoint),
}

impl Persistence {
    /// The granularity every client address has alone, which ipvsadm does not print.
    pub const ONE_ADDRESS: std::net::Ipv4Addr = std::net::Ipv4Addr::BROADCAST;
}

fn host_prefix() -> u8 {
    32
}

/// A real server as a member of a virtual service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Member {
    /// The inventory host name, when it is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub address: IpAddr,
    pub port: u16,
    pub weight: u16,
}

impl Member {
    pub fn endpoint(&self) -> Endpoint {
        Endpoint::new(self.address, self.port)
    }
}

impl VirtualService {
    pub fn endpoint(&self) -> Endpoint {
        Endpoint::new(self.vip, self.port)
    }

    /// The URL a client asks through the VIP.
    pub fn url(&self) -> String {
        self.endpoint().http_url("/")
    }

    /// The URLs a client asks through the VIP, one per port (`https://` for a TLS service).
    pub fn urls(&self) -> Vec<String> {
        self.ports
            .iter()
            .map(|p| self.url_of(Endpoint::new(self.vip, *p), "/"))
            .collect()
    }

    /// The URL of `path` at `endpoint` as this service is served: `http://`, or `https://`
    /// with `tls`.
    pub fn url_of(&self, endpoint: Endpoint, path: &str) -> String {
        let plain = endpoint.http_url(path);
        if self.tls {
            plain.replacen("http://", "https://", 1)
        } else {
            plain
        }
    }

    /// Where the health check of the real server at `address` connects: its port in this
    /// service, or a firewall-mark service's first port (its real servers have no port: the
    /// packets keep theirs).
    pub fn check_endpoint(&self, address: IpAddr) -> Endpoint {
        Endpoint::new(address, self.port)
    }

    /// The sorry server of this service on the director at `director` (a local one is that
    /// director's own address, on the service's port).
    pub fn sorry_endpoint(&self, director: IpAddr) -> Option<Endpoint> {
        self.sorry_server.map(|s| match s {
            SorryServer::Local => Endpoint::new(director, self.port),
            SorryServer::At(e) => e,
        })
    }

    /// How one client's requests to this service spread over its real servers: persistence
    /// keeps them on one; a flag that hashes the port spreads a hashing scheduler's.
    pub fn spread(&self) -> Spread {
        if self.persistence.is_some() {
            return Spread::One("persistence keeps a client on the real server it was given");
        }
        if self.scheduler_flags.iter().any(|f| f.hashes_port()) {
            return Spread::Every("the client's port is hashed with its address");
        }
        self.scheduler.spread()
    }

    /// How lvslab names it: `tcp 198.18.0.100:80`, `fwmark 1 (tcp 198.18.0.100:8081,8082)`.
    pub fn name(&self) -> String {
        match self.fwmark {
            None => self.key().to_string(),
            Some(m) => {
                let ports: Vec<String> = self.ports.iter().map(u16::to_string).collect();
                format!(
                    "fwmark {m} ({} {}:{})",
                    self.protocol,
                    self.vip,
                    ports.join(",")
                )
            }
        }
    }
}

/// A director: it holds the VIP (by hand or through keepalived) and the IPVS table.
#[derive(Debug, Clone, Serialize)]
pub struct Director {
    pub name: String,
    pub address: IpAddr,
    /// The interface that holds the VIP and speaks VRRP.
    pub interface: String,
    /// NAT: the interface on the real servers' network, which holds the floating gateway.
    pub inside_interface: Option<String>,
    pub vrrp: Option<VrrpRole>,
    /// The address labels lvslab gives the VIP (and the NAT gateway) on this director.
    pub labels: DirectorLabels,
    /// Its web server, for a local sorry server.
    pub web: web::WebServer,
}

#[derive(Debug, Clone, Serialize)]
pub struct VrrpRole {
    pub state: VrrpState,
    pub priority: u8,
}

/// Labels of the addresses lvslab puts on a director: the seed's `ens32:2` for the VIP set by
/// hand and `ens32:3` for keepalived's, and the same numbers on the inside interface for NAT's
/// gateway.
#[derive(Debug, Clone, Serialize)]
pub struct DirectorLabels {
    pub manual: String,
    pub keepalived: String,
    pub gateway_manual: Option<String>,
    pub gateway_keepalived: Option<String>,
}

/// A real server: a host that answers for the VIP.
#[derive(Debug, Clone, Serialize)]
pub struct RealServer {
    pub name: String,
    pub address: IpAddr,
    pub interface: String,
    /// The weight IPVS uses: [`effective_weight`], or 0 when drained.
    pub weight: u16,
    /// Taken out of service by `lvslab drain` (the inventory's `drained: true`).
    pub drained: bool,
    pub web: web::WebServer,
}

/// VRRP settings shared by the directors.
#[derive(Debug, Clone, Serialize)]
pub struct Vrrp {
    pub virtual_router_id: u8,
    pub advert_int: u8,
    pub auth_pass: Option<String>,
    /// Adverts go to the other directors' addresses (`unicast_peer`), not to 224.0.0.18.
    pub unicast: bool,
    /// A recovered higher priority takes the VIP back (keepalived's default); `false` is
    /// `nopreempt`: the VIP stays where it is until its holder fails.
    pub preempt: bool,
    /// Seconds a recovered higher priority waits before it takes the VIP back (0: at once).
    pub preempt_delay: u32,
    /// A MASTER that hears a higher priority sends an advert before it steps down (the winner
    /// then sends its gratuitous ARPs again).
    pub higher_prio_send_advert: bool,
    /// Each transition appended to [`names::NOTIFY_LOG`] on the director.
    pub notify: bool,
    /// Interfaces besides the VRRP one whose loss puts a director in FAULT.
    pub track_interface: Vec<String>,
    /// Commands whose failure lowers a director's priority (or puts it in FAULT).
    pub track_script: Vec<TrackScript>,
    pub garp: Garp,
    /// IPVS connection sync between the directors (keepalived's `lvs_sync_daemon`): the MASTER
    /// sends, the BACKUP keeps the entries, and established connections survive a failover.
    pub sync_daemon: bool,
}

/// keepalived's `vrrp_script`: `script` every `interval` s (killed after `timeout`); after
/// `fall` failures in a row the director's priority drops by `weight` (weight 0: FAULT),
/// after `rise` successes it is back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrackScript {
    pub name: String,
    pub script: String,
    pub interval: u32,
    pub timeout: u32,
    pub weight: i32,
    pub fall: u32,
    pub rise: u32,
}

impl TrackScript {
    /// What its failure does, in words.
    pub fn effect(&self) -> String {
        let when = if self.fall == 1 {
            "when it fails".to_string()
        } else {
            format!("after {} failures in a row", self.fall)
        };
        match self.weight {
            0 => format!("FAULT, giving up the VIP, {when}"),
            w if w < 0 => format!("priority {w} {when}"),
            w => format!("priority +{w} while it succeeds"),
        }
    }
}

impl Vrrp {
    /// Whether every director starts in state BACKUP: keepalived clears `nopreempt` and
    /// `preempt_delay` on an instance that starts MASTER (with a configuration error that
    /// `keepalived -t` reports), so with either the inventory's MASTER starts BACKUP too; the
    /// highest priority still wins the first election.
    pub fn all_start_backup(&self) -> bool {
        all_start_backup(self.preempt, self.preempt_delay)
    }

    /// How the pair hands the VIP back after a failure, in words, when it is not keepalived's
    /// default (the highest priority takes it back at once): verify says it.
    pub fn preemption_words(&self) -> Option<String> {
        match (self.preempt, self.preempt_delay) {
            (false, _) => Some("nopreempt: the VIP stays with its holder until that fails".into()),
            (true, 0) => None,
            (true, s) => Some(format!(
                "preemption after {s} s: the highest priority takes the VIP back {s} s after it hears a lower one"
            )),
        }
    }
}

/// [`Vrrp::all_start_backup`] from the inventory's `preempt` and `preempt_delay`.
pub fn all_start_backup(preempt: bool, preempt_delay: u32) -> bool {
    !preempt || preempt_delay > 0
}

/// keepalived's gratuitous ARPs after a director becomes MASTER; `None` leaves keepalived's
/// default (5 s, 5 at a time, no refresh, 1 at a time).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Garp {
    pub master_delay: Option<u32>,
    pub master_repeat: Option<u32>,
    pub master_refresh: Option<u32>,
    pub master_refresh_repeat: Option<u32>,
}

/// keepalived's HTTP_GET check of each real server (its names and defaults as the seed has
/// them).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HealthCheck {
    /// Which keepalived checker: HTTP_GET (the seed's) or TCP_CHECK.
    #[serde(rename = "type")]
    pub kind: CheckKind,
    pub path: String,
    pub status_code: u16,
    pub connect_timeout: u32,
    pub retry: u32,
    pub delay_before_retry: u32,
    pub delay_loop: u32,
    /// `type: misc`: the command keepalived runs for each real server (`{address}` and
    /// `{port}` in it replaced by the real server's), success by its exit status 0.
    pub script: Option<String>,
    /// Ask each real server the clients' way (DR, TUN): to the VIP, through a firewall-mark
    /// service that holds that one real server ([`Lvs::path_services`]), so a real server that
    /// lost the VIP (or its tunnel) fails its check. Without it keepalived asks the real
    /// server's own address, which still answers while every client request to it is dropped.
    pub via_vip: bool,
}

impl Default for HealthCheck {
    fn default() -> Self {
        HealthCheck {
            kind: CheckKind::Http,
            path: "/".into(),
            status_code: 200,
            connect_timeout: 3,
            retry: 3,
            delay_before_retry: 3,
            delay_loop: 6,
            script: None,
            via_vip: false,
        }
    }
}

/// keepalived's checker of a real server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckKind {
    /// `HTTP_GET`: a GET of `path` must answer `status_code` within connect_timeout.
    Http,
    /// `TCP_CHECK`: a TCP connection must open within connect_timeout. Cheaper, and blind to a
    /// server that accepts and never answers (a frozen web server: its kernel completes the
    /// handshake).
    Tcp,
    /// `MISC_CHECK`: a command of the operator's on the director (`script`) must exit 0 within
    /// connect_timeout (keepalived's misc_timeout): any check a program can make.
    Misc,
}

impl CheckKind {
    /// The inventory's word for it (`type:`).
    pub fn word(self) -> &'static str {
        match self {
            CheckKind::Http => "http",
            CheckKind::Tcp => "tcp",
            CheckKind::Misc => "misc",
        }
    }

    /// keepalived's name of the checker.
    pub fn keepalived_name(self) -> &'static str {
        match self {
            CheckKind::Http => "HTTP_GET",
            CheckKind::Tcp => "TCP_CHECK",
            CheckKind::Misc => "MISC_CHECK",
        }
    }
}

/// Whether `command` is one keepalived's script security runs and keepalived.conf can hold in
/// double quotes: its program by absolute path first, no `"`, `\` or new line.
pub fn script_command_ok(command: &str) -> bool {
    let c = command.trim();
    c.starts_with('/') && !c.contains(['"', '\n', '\\'])
}

impl HealthCheck {
    /// The MISC_CHECK command for the real server at `address`, asked on `port`.
    pub fn script_for(&self, address: IpAddr, port: u16) -> Option<String> {
        self.script.as_ref().map(|s| {
            s.replace("{address}", &address.to_string())
                .replace("{port}", &port.to_string())
        })
    }

    /// The longest a failed real server can stay in the table: the check runs every
    /// `delay_loop`; a failed check is retried `retry` times, `delay_before_retry` apart, each
    /// attempt taking up to `connect_timeout` (a refused connection fails at once).
    pub fn removal_limit_secs(&self, refused_at_once: bool) -> u32 {
        let attempt = if refused_at_once {
            0
        } else {
            self.connect_timeout
        };
        self.delay_loop + attempt + self.retry * (self.delay_before_retry + attempt)
    }
}

/// NAT's inside network: the real servers' side, where the directors' floating gateway lives.
#[derive(Debug, Clone, Serialize)]
pub struct NatNetwork {
    /// The real servers' network.
    pub inside: Cidr,
    /// Its prefix length (the gateway's, on the directors' inside interface).
    pub prefix: u8,
    /// The real servers' default route: an address that moves with the VIP (VRRP MASTER).
    pub gateway: IpAddr,
}

impl Lvs {
    /// Why requests that reused a client port of a connection to a real server out of the
    /// table still failed, by what the inventory sets (`expire_nodest_conn`), with the remedy
    /// when it is not set: one phrase, for the drills.
    pub fn stale_entries_why(&self) -> &'static str {
        let expires = self
            .ipvs_sysctls
            .iter()
            .any(|s| s.key == ipvs_sysctl("expire_nodest_conn") && s.value == "1");
        if expires {
            "expire_nodest_conn=1 drops such an entry at its first packet, so the packet that              met it was lost and the client's retry is scheduled anew"
        } else {
            "IPVS drops their packets while net.ipv4.vs.expire_nodest_conn=0, the kernel's              default (`lvs.ipvs_settings: { expire_nodest_conn: 1 }` drops the entry instead)"
        }
    }

    pub fn director(&self, name: &str) -> Option<&Director> {
        self.directors.iter().find(|d| d.name == name)
    }

    pub fn real_server(&self, name: &str) -> Option<&RealServer> {
        self.real_servers.iter().find(|r| r.name == name)
    }

    /// The first virtual service (the inventory's short form describes only it; verify's
    /// path proof and the drills' load use it).
    pub fn service(&self) -> &VirtualService {
        // The loader never builds an Lvs without a service.
        &self.services[0]
    }

    /// The forwarding method of the (first) service.
    pub fn forwarding(&self) -> Forwarding {
        self.service().forwarding
    }

    /// Every port clients connect to on the VIP, ascending (the real servers' web server
    /// listens on each).
    pub fn ports(&self) -> Vec<u16> {
        self.ports_of(|_| true)
    }

    /// The ports of the services served with TLS, ascending.
    pub fn tls_ports(&self) -> Vec<u16> {
        self.ports_of(|s| s.tls)
    }

    /// The ports of the services `which` picks, ascending, each once.
    fn ports_of(&self, which: impl Fn(&VirtualService) -> bool) -> Vec<u16> {
        let mut v: Vec<u16> = self
            .services
            .iter()
            .filter(|s| which(s))
            .flat_map(|s| s.ports.clone())
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// With `health_check.via_vip`, one firewall-mark service per real server that holds that
    /// real server alone (weight 1, no check of its own): keepalived's check of the real server
    /// carries its mark (the checker's `fwmark`) and is sent to the VIP from the director's own
    /// address, so IPVS forwards it exactly as it forwards a client's packet (in DR to the real
    /// server's MAC, in TUN through the tunnel), and the answer comes from the VIP. Marks
    /// [`PATH_MARK_BASE`] + 1, + 2, ... in the real servers' order. Empty without `via_vip`.
    pub fn path_services(&self) -> Vec<VirtualService> {
        if !self.health_check.via_vip {
            return Vec::new();
        }
        let first = self.service();
        self.real_servers
            .iter()
            .zip(path_marks(self.real_servers.len()))
            .map(|(r, mark)| VirtualService {
                vip: first.vip,
                vip_prefix: first.vip_prefix,
                port: first.port,
                protocol: Protocol::Tcp,
                fwmark: Some(mark),
                ports: vec![first.port],
                scheduler: Scheduler::default(),
                scheduler_flags: Vec::new(),
                forwarding: first.forwarding,
                persistence: None,
                sorry_server: None,
                tls: false,
                on_failure: OnFailure::default(),
                real_servers: vec![Member {
                    name: Some(r.name.clone()),
                    address: r.address,
                    port: 0,
                    weight: 1,
                }],
            })
            .collect()
    }

    /// The services of `table` that clients use: all but the path checks
    /// ([`Lvs::path_services`]), where a real server stays whatever its checks say.
    pub fn client_services<'t>(
        &self,
        table: &'t ipvs::Table,
    ) -> impl Iterator<Item = &'t ipvs::Service> + use<'t> {
        let paths: Vec<ipvs::ServiceKey> = self
            .path_services()
            .iter()
            .map(VirtualService::key)
            .collect();
        table
            .services
            .iter()
            .filter(move |s| !paths.contains(&s.key))
    }

    /// The director that holds the VIP in manual mode (the seed's node1): the first one.
    pub fn manual_director(&self) -> Option<&Director> {
        self.directors.first()
    }

    /// The director keepalived should elect: the highest priority (preemption).
    /// The addresses `director` sends its adverts to with `unicast`: every other director's
    /// (none without unicast).
    pub fn unicast_peers(&self, director: &Director) -> Vec<IpAddr> {
        if !self.vrrp.as_ref().is_some_and(|v| v.unicast) {
            return Vec::new();
        }
        self.directors
            .iter()
            .filter(|d| d.name != director.name && d.vrrp.is_some())
            .map(|d| d.address)
            .collect()
    }

    /// Whether the VIP must be on the highest priority when every director is well (false
    /// with `nopreempt`: any one holder is right).
    pub fn preempts(&self) -> bool {
        self.vrrp.as_ref().is_none_or(|v| v.preempt)
    }

    pub fn expected_master(&self) -> Option<&Director> {
        self.directors
            .iter()
            .filter(|d| d.vrrp.is_some())
            .max_by_key(|d| d.vrrp.as_ref().map(|v| v.priority))
    }
}

/// Template values: what playbooks and templates see of the model.
impl Lvs {
    /// The `lvs` variable: the whole model, plus the first service's fields at the top
    /// (`lvs.vip`, `lvs.port`, `lvs.scheduler`, ...), `lvs.service` itself (the `ipvs`
    /// module's `service:`), `lvs.marks` (the `fwmark` module's), `lvs.ports` (every
    /// port of every service), `lvs.path_services` and `lvs.path_marks` (each real server's
    /// path-check mark by its address; both empty without `health_check.via_vip`) and
    /// `lvs.check_scripts` (`type: misc`: each real server's command, by `ADDRESS PORT`).
    pub fn template_value(&self) -> serde_json::Value {
        let mut v = match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(m)) => m,
            _ => serde_json::Map::new(),
        };
        let s = self.service();
        if let Ok(serde_json::Value::Object(first)) = serde_json::to_value(s) {
            for (k, val) in first {
                if k != "real_servers" {
                    v.insert(k, val);
                }
            }
        }
        v.insert(
            "service".into(),
            serde_json::to_value(s).unwrap_or_default(),
        );
        v.insert("url".into(), s.url().into());
        v.insert(
            "marks".into(),
            serde_json::to_value(self.marks()).unwrap_or_default(),
        );
        v.insert("ports".into(), self.ports().into());
        // The path checks: the services, and each real server's mark by its address.
        let paths = self.path_services();
        let path_marks: serde_json::Map<String, serde_json::Value> = paths
            .iter()
            .flat_map(|s| {
                s.real_servers
                    .iter()
                    .map(|m| (m.address.to_string(), s.fwmark.unwrap_or(0).into()))
            })
            .collect();
        v.insert(
            "path_services".into(),
            serde_json::to_value(&paths).unwrap_or_default(),
        );
        v.insert("path_marks".into(), path_marks.into());
        // `type: misc`: each real server's command, by `ADDRESS PORT` (the port its check asks).
        let scripts: serde_json::Map<String, serde_json::Value> = self
            .services
            .iter()
            .flat_map(|s| {
                s.real_servers.iter().filter_map(|m| {
                    let e = s.check_endpoint(m.address);
                    self.health_check
                        .script_for(e.address, e.port)
                        .map(|c| (format!("{} {}", e.address, e.port), c.into()))
                })
            })
            .collect();
        v.insert("check_scripts".into(), scripts.into());
        v.insert("notify_script".into(), names::NOTIFY_SCRIPT.into());
        v.insert("notify_log".into(), names::NOTIFY_LOG.into());
        v.insert(
            "manual_director".into(),
            self.manual_director()
                .map(|d| serde_json::Value::String(d.name.clone()))
                .unwrap_or_default(),
        );
        serde_json::Value::Object(v)
    }

    /// The per-host variables of `host`: `director` (its [`Director`] record, with `sorry`:
    /// each service's sorry server here, and `sorry_local`) or `real_server` (its
    /// [`RealServer`] record, with `web` as installed on a host of `family`, the label of the
    /// VIP on its loopback, and the devices that take the VIP: `loopback` for DR, `tunnel` for
    /// TUN); and `web_host`, the web server it runs for lvslab and the ports it must add.
    pub fn host_values(
        &self,
        host: &str,
        family: &str,
    ) -> serde_json::Map<String, serde_json::Value> {
        let mut out = serde_json::Map::new();
        if let Some(d) = self.director(host)
            && let Ok(serde_json::Value::Object(mut m)) = serde_json::to_value(d)
        {
            // Per service: its sorry server here (`ADDRESS PORT`, keepalived's words) or null.
            let sorry: Vec<Option<String>> = self
                .services
                .iter()
                .map(|s| {
                    s.sorry_endpoint(d.address)
                        .map(|e| format!("{} {}", e.address, e.port))
                })
                .collect();
            let local = self.ports_of(|s| s.sorry_server == Some(SorryServer::Local));
            let local_tls = self.ports_of(|s| s.sorry_server == Some(SorryServer::Local) && s.tls);
            m.insert("sorry".into(), sorry.into());
            m.insert("sorry_local".into(), (!local.is_empty()).into());
            let peers: Vec<String> = self
                .unicast_peers(d)
                .iter()
                .map(IpAddr::to_string)
                .collect();
            m.insert("peers".into(), peers.into());
            out.insert("director".into(), serde_json::Value::Object(m));
            out.insert(
                "web_host".into(),
                web_host(d.web, family, &local, &local_tls),
            );
        }
        if let Some(r) = self.real_server(host)
            && let Ok(serde_json::Value::Object(mut m)) = serde_json::to_value(r)
        {
            m.insert(
                "web_server".into(),
                serde_json::to_value(r.web).unwrap_or_default(),
            );
            m.insert(
                "web".into(),
                serde_json::to_value(r.web.on(family)).unwrap_or_default(),
            );
            m.insert("vip_label".into(), names::REAL_SERVER_LO_LABEL.into());
            m.insert("loopback".into(), names::LOOPBACK.into());
            m.insert("tunnel".into(), names::TUNNEL.into());
            out.insert("real_server".into(), serde_json::Value::Object(m));
            out.insert(
                "web_host".into(),
                web_host(r.web, family, &self.ports(), &self.tls_ports()),
            );
        }
        out
    }
}

/// `web_host`: a host's web server (`web_server`, as installed on `family`: `web`) and
/// `ports`, the ones of `serving` its default site does not listen on (web-ports.conf.j2),
/// `tls_ports` those of them served with TLS, and `tls`, where its certificate and key are.
fn web_host(
    web: web::WebServer,
    family: &str,
    serving: &[u16],
    tls_ports: &[u16],
) -> serde_json::Value {
    let mut ports: Vec<u16> = serving
        .iter()
        .copied()
        .filter(|p| *p != web::DEFAULT_PORT)
        .collect();
    ports.sort_unstable();
    ports.dedup();
    serde_json::json!({
        "web_server": web,
        "web": web.on(family),
        "ports": ports,
        "tls_ports": tls_ports,
        "tls": { "dir": web::TLS_DIR, "cert": web::TLS_CERT, "key": web::TLS_KEY },
        "default_port": web::DEFAULT_PORT,
    })
}

impl DirectorLabels {
    pub fn new(interface: &str, inside: Option<&str>) -> Self {
        DirectorLabels {
            manual: names::alias(interface, names::MANUAL_ALIAS),
            keepalived: names::alias(interface, names::KEEPALIVED_ALIAS),
            gateway_manual: inside.map(|i| names::alias(i, names::MANUAL_ALIAS)),
            gateway_keepalived: inside.map(|i| names::alias(i, names::KEEPALIVED_ALIAS)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_and_flags_round_trip() {
        for s in Scheduler::ALL {
            assert_eq!(s.as_str().parse::<Scheduler>().unwrap(), s);
        }
        assert!(
            "fastest"
                .parse::<Scheduler>()
                .unwrap_err()
                .contains("rr, wrr")
        );
        for f in Forwarding::ALL {
            assert_eq!(Forwarding::from_ipvsadm_flag(f.ipvsadm_flag()), Some(f));
        }
        assert_eq!(Forwarding::Tun.keepalived_kind(), "TUN");
        assert_eq!(Protocol::from_ipvsadm_flag("-u"), Some(Protocol::Udp));
    }

    #[test]
    fn weight_zero_stays_zero() {
        assert_eq!(effective_weight(None), 1);
        assert_eq!(effective_weight(Some(0)), 0);
        assert_eq!(effective_weight(Some(7)), 7);
    }

    #[test]
    fn removal_limit_follows_the_check() {
        let hc = HealthCheck::default();
        assert_eq!(hc.removal_limit_secs(true), 6 + 3 * 3);
        assert_eq!(hc.removal_limit_secs(false), 6 + 3 + 3 * (3 + 3));
    }
}
