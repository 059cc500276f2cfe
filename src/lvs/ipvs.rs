//! The IPVS table as typed data: read from `ipvsadm -S -n`, compared with a [`VirtualService`],
//! and changed by [`Rule`]s that know their own `ipvsadm` arguments and how to say what they do.

use std::fmt;

use serde::Serialize;

use super::{Endpoint, Forwarding, Persistence, Protocol, SchedFlag, Scheduler, VirtualService};

/// How a virtual service is addressed: protocol and endpoint, or a firewall mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceKey {
    Address {
        protocol: Protocol,
        endpoint: Endpoint,
    },
    Fwmark(u32),
}

impl ServiceKey {
    fn argv(&self) -> [String; 2] {
        match self {
            ServiceKey::Address { protocol, endpoint } => {
                [protocol.ipvsadm_flag().into(), endpoint.to_string()]
            }
            ServiceKey::Fwmark(m) => ["-f".into(), m.to_string()],
        }
    }
}

impl ServiceKey {
    /// The endpoint alone (`198.18.0.100:80`), or `fwmark N`.
    pub fn endpoint_text(&self) -> String {
        match self {
            ServiceKey::Address { endpoint, .. } => endpoint.to_string(),
            ServiceKey::Fwmark(m) => format!("fwmark {m}"),
        }
    }
}

impl fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServiceKey::Address { protocol, endpoint } => write!(f, "{protocol} {endpoint}"),
            ServiceKey::Fwmark(m) => write!(f, "fwmark {m}"),
        }
    }
}

/// The IPVS table of one host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Table {
    pub services: Vec<Service>,
}

/// A virtual service as the kernel holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Service {
    pub key: ServiceKey,
    pub scheduler: Scheduler,
    /// `-b FLAG,...`: the scheduler's flags lvslab knows, in [`SchedFlag`]'s order.
    pub flags: Vec<SchedFlag>,
    /// `-p TIMEOUT` (and `-M NETMASK`).
    pub persistence: Option<Persistence>,
    /// Options after the scheduler that lvslab does not manage, kept as written (flags it
    /// does not know, such as another scheduler's `flag-1`, among them).
    pub extra: Vec<String>,
    pub real_servers: Vec<Server>,
}

/// A real server of a service as the kernel holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Server {
    pub endpoint: Endpoint,
    pub forwarding: Forwarding,
    pub weight: u16,
}

impl Table {
    /// Parses `ipvsadm -S -n`.
    pub fn parse(text: &str) -> Result<Table, String> {
        let mut table = Table::default();
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let words: Vec<&str> = line.split_whitespace().collect();
            let unexpected = || format!("unexpected line from ipvsadm -S: {line}");
            let value = |flag: &str| {
                words
                    .iter()
                    .position(|w| *w == flag)
                    .and_then(|i| words.get(i + 1))
                    .copied()
            };
            let key = key_of(&words).ok_or_else(unexpected)?;
            match words.first() {
                Some(&"-A") => {
                    let mut extra = Vec::new();
                    let mut flags: Vec<SchedFlag> = Vec::new();
                    let mut i = 3;
                    while i < words.len() {
                        if ["-s", "-p", "-M"].contains(&words[i]) {
                            i += 2;
                            continue;
                        }
                        if words[i] == "-b"
                            && let Some(Ok(known)) = words.get(i + 1).map(|list| {
                                list.split(',')
                                    .map(str::parse)
                                    .collect::<Result<Vec<SchedFlag>, String>>()
                            })
                        {
                            flags = known;
                            flags.sort();
                            i += 2;
                            continue;
                        }
                        extra.push(words[i].to_string());
                        i += 1;
                    }
                    let scheduler = match value("-s") {
                        Some(s) => s.parse().map_err(|e| format!("{e} in: {line}"))?,
                        // ipvsadm's default.
                        None => Scheduler::Wlc,
                    };
                    let persistence =
                        match value("-p") {
                            None => None,
                            Some(t) => Some(Persistence {
                                timeout: t
                                    .parse()
                                    .map_err(|_| format!("bad persistence timeout in: {line}"))?,
                                granularity: match value("-M") {
                                    None => None,
                                    Some(m) => Some(m.parse().map_err(|_| {
                                        format!("bad persistence netmask in: {line}")
                                    })?)
                                    .filter(|m| *m != Persistence::ONE_ADDRESS),
                                },
                            }),
                        };
                    table.services.push(Service {
                        key,
                        scheduler,
                        flags,
                        persistence,
                        extra,
                        real_servers: Vec::new(),
                    });
                }
                Some(&"-a") => {
                    let endpoint = value("-r")
                        .ok_or_else(|| format!("no -r in: {line}"))?
                        .parse()?;
                    let forwarding = words
                        .iter()
                        .find_map(|w| Forwarding::from_ipvsadm_flag(w))
                        .unwrap_or(Forwarding::Dr);
                    let weight = match value("-w") {
                        Some(w) => w.parse().map_err(|_| format!("bad weight in: {line}"))?,
                        None => 1,
                    };
                    let Some(service) = table.services.iter_mut().find(|s| s.key == key) else {
                        return Err(format!("real server before its service: {line}"));
                    };
                    service.real_servers.push(Server {
                        endpoint,
                        forwarding,
                        weight,
                    });
                }
                _ => return Err(unexpected()),
            }
        }
        Ok(table)
    }

    pub fn service(&self, key: &ServiceKey) -> Option<&Service> {
        self.services.iter().find(|s| &s.key == key)
    }
}

/// One entry of the kernel's IPVS connection table (`ipvsadm -L -n -c`): a client's connection
/// and the real server IPVS chose for it. While the entry lives, a new connection from the same
/// client address and port is matched to it instead of being scheduled: in DR and TUN an entry
/// stays in FIN_WAIT for 2 minutes after the client's FIN (the director never sees the server's
/// half), and `conn_reuse_mode`'s default reschedules only entries in TIME_WAIT or CLOSE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub protocol: String,
    pub state: String,
    pub client: Endpoint,
    pub virtual_address: Endpoint,
    pub server: Endpoint,
}

impl Connection {
    /// Parses `ipvsadm -L -n -c`; header lines and lines it does not know are skipped.
    pub fn parse_all(text: &str) -> Vec<Connection> {
        text.lines()
            .filter_map(|line| {
                let words: Vec<&str> = line.split_whitespace().collect();
                let [protocol, _expire, state, client, virtual_address, server] = words[..] else {
                    return None;
                };
                Some(Connection {
                    protocol: protocol.to_string(),
                    state: state.to_string(),
                    client: client.parse().ok()?,
                    virtual_address: virtual_address.parse().ok()?,
                    server: server.parse().ok()?,
                })
            })
            .collect()
    }
}

/// How long a synced connection may take to reach the BACKUP's table: the kernel's master sync
/// thread sends a buffer once it is full or 2 s old, and looks every second.
pub const SYNC_FLUSH: std::time::Duration = std::time::Duration::from_secs(3);

/// An IPVS connection-sync daemon that runs (`ipvsadm -L --daemon`): the master sends the
/// director's connections, the backup keeps what it hears.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncDaemon {
    /// `master` or `backup`.
    pub role: String,
    /// The interface it sends or listens on (ipvsadm's `mcast=`).
    pub interface: String,
    pub syncid: Option<u32>,
}

impl SyncDaemon {
    /// Parses `ipvsadm -L --daemon`: a line per daemon, `master sync daemon (mcast=eth0,
    /// syncid=51, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)`; nothing when none runs.
    pub fn parse_all(text: &str) -> Vec<SyncDaemon> {
        text.lines()
            .filter_map(|line| {
                let (role, rest) = line.trim().split_once(" sync daemon")?;
                let settings = rest.trim().trim_start_matches('(').trim_end_matches(')');
                let value = |name: &str| {
                    settings.split(',').find_map(|kv| {
                        kv.trim()
                            .strip_prefix(name)
                            .and_then(|v| v.strip_prefix('='))
                            .map(str::to_string)
                    })
                };
                Some(SyncDaemon {
                    role: role.to_string(),
                    interface: value("mcast")?,
                    syncid: value("syncid").and_then(|s| s.parse().ok()),
                })
            })
            .collect()
    }
}

fn key_of(words: &[&str]) -> Option<ServiceKey> {
    let at = words.iter().position(|w| ["-t", "-u", "-f"].contains(w))?;
    let value = words.get(at + 1)?;
    match words[at] {
        "-f" => value.parse().ok().map(ServiceKey::Fwmark),
        flag => Some(ServiceKey::Address {
            protocol: Protocol::from_ipvsadm_flag(flag)?,
            endpoint: value.parse().ok()?,
        }),
    }
}

impl VirtualService {
    pub fn key(&self) -> ServiceKey {
        match self.fwmark {
            Some(mark) => ServiceKey::Fwmark(mark),
            None => ServiceKey::Address {
                protocol: self.protocol,
                endpoint: self.endpoint(),
            },
        }
    }

    /// This service as the kernel should hold it.
    pub fn desired(&self) -> Service {
        Service {
            key: self.key(),
            scheduler: self.scheduler,
            flags: self.scheduler_flags.clone(),
            persistence: self.persistence,
            extra: Vec::new(),
            real_servers: self
                .real_servers
                .iter()
                .map(|m| Server {
                    endpoint: m.endpoint(),
                    forwarding: self.forwarding,
                    weight: m.weight,
                })
                .collect(),
        }
    }
}

impl Service {
    /// The real servers in a stable order, for comparing two services.
    pub fn sorted_servers(&self) -> Vec<&Server> {
        let mut v: Vec<&Server> = self.real_servers.iter().collect();
        v.sort_by_key(|s| s.endpoint);
        v
    }

    /// The scheduler, its flags and persistence, in words ([`scheduling`]).
    pub fn scheduling(&self) -> String {
        scheduling(self.scheduler, &self.flags, &self.persistence)
    }

    /// One line per real server, for diffs and evidence.
    pub fn text(&self) -> String {
        let mut out = format!("{} {}\n", self.key, self.scheduling());
        for rs in &self.real_servers {
            out.push_str(&format!(
                "  -> {} {} w{}\n",
                rs.endpoint, rs.forwarding, rs.weight
            ));
        }
        out
    }
}

/// One change to an IPVS table: one `ipvsadm` call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    AddService {
        key: ServiceKey,
        scheduler: Scheduler,
        flags: Vec<SchedFlag>,
        persistence: Option<Persistence>,
    },
    /// Changes the scheduler, its flags or the persistence (`ipvsadm -E` sets each anew: a
    /// flag not given is cleared); the options lvslab does not manage are given again as they
    /// were.
    EditService {
        key: ServiceKey,
        scheduler: Scheduler,
        flags: Vec<SchedFlag>,
        persistence: Option<Persistence>,
        extra: Vec<String>,
    },
    DeleteService {
        key: ServiceKey,
    },
    AddServer {
        key: ServiceKey,
        server: Server,
    },
    EditServer {
        key: ServiceKey,
        server: Server,
    },
    DeleteServer {
        key: ServiceKey,
        endpoint: Endpoint,
    },
    Clear,
}

impl Rule {
    /// `ipvsadm`'s arguments (without the program name).
    pub fn argv(&self) -> Vec<String> {
        let server = |op: &str, key: &ServiceKey, s: &Server| {
            let mut v = vec![op.to_string()];
            v.extend(key.argv());
            v.extend([
                "-r".into(),
                s.endpoint.to_string(),
                s.forwarding.ipvsadm_flag().into(),
                "-w".into(),
                s.weight.to_string(),
            ]);
            v
        };
        let flagged = |v: &mut Vec<String>, flags: &[SchedFlag]| {
            if !flags.is_empty() {
                v.extend(["-b".into(), SchedFlag::list(flags)]);
            }
        };
        let persistent = |v: &mut Vec<String>, p: &Option<Persistence>| {
            if let Some(p) = p {
                v.extend(["-p".into(), p.timeout.to_string()]);
                if let Some(m) = p.granularity {
                    v.extend(["-M".into(), m.to_string()]);
                }
            }
        };
        match self {
            Rule::AddService {
                key,
                scheduler,
                flags,
                persistence,
            } => {
                let mut v = vec!["-A".to_string()];
                v.extend(key.argv());
                v.extend(["-s".into(), scheduler.as_str().into()]);
                flagged(&mut v, flags);
                persistent(&mut v, persistence);
                v
            }
            Rule::EditService {
                key,
                scheduler,
                flags,
                persistence,
                extra,
            } => {
                let mut v = vec!["-E".to_string()];
                v.extend(key.argv());
                v.extend(["-s".into(), scheduler.as_str().into()]);
                flagged(&mut v, flags);
                persistent(&mut v, persistence);
                v.extend(extra.iter().cloned());
                v
            }
            Rule::DeleteService { key } => {
                let mut v = vec!["-D".to_string()];
                v.extend(key.argv());
                v
            }
            Rule::AddServer { key, server: s } => server("-a", key, s),
            Rule::EditServer { key, server: s } => server("-e", key, s),
            Rule::DeleteServer { key, endpoint } => {
                let mut v = vec!["-d".to_string()];
                v.extend(key.argv());
                v.extend(["-r".into(), endpoint.to_string()]);
                v
            }
            Rule::Clear => vec!["-C".into()],
        }
    }

    /// The service this rule changes (`None`: the whole table).
    pub fn key(&self) -> Option<ServiceKey> {
        match self {
            Rule::AddService { key, .. }
            | Rule::EditService { key, .. }
            | Rule::DeleteService { key }
            | Rule::AddServer { key, .. }
            | Rule::EditServer { key, .. }
            | Rule::DeleteServer { key, .. } => Some(*key),
            Rule::Clear => None,
        }
    }

    /// The real server this rule puts in service, if it does: one it adds with a weight, or
    /// one whose weight it raises from 0 (in `current`, the service as the table has it).
    pub fn puts_in_service(&self, current: Option<&Service>) -> Option<&Server> {
        match self {
            Rule::AddServer { server, .. } => Some(server),
            Rule::EditServer { server, .. } if server.weight > 0 => current
                .and_then(|c| {
                    c.real_servers
                        .iter()
                        .find(|s| s.endpoint == server.endpoint)
                })
                .filter(|before| before.weight == 0)
                .map(|_| server),
            _ => None,
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rule::AddService {
                key,
                scheduler,
                flags,
                persistence,
            } => write!(
                f,
                "add service {key} ({})",
                scheduling(*scheduler, flags, persistence)
            ),
            Rule::EditService {
                key,
                scheduler,
                flags,
                persistence,
                ..
            } => write!(
                f,
                "scheduling of {key} -> {}",
                scheduling(*scheduler, flags, persistence)
            ),
            Rule::DeleteService { key } => write!(f, "delete service {key}"),
            Rule::AddServer { server, .. } => write!(
                f,
                "add real server {} ({}, weight {})",
                server.endpoint, server.forwarding, server.weight
            ),
            Rule::EditServer { server, .. } => write!(
                f,
                "edit real server {} ({}, weight {})",
                server.endpoint, server.forwarding, server.weight
            ),
            Rule::DeleteServer { endpoint, .. } => write!(f, "remove real server {endpoint}"),
            Rule::Clear => f.write_str("clear the IPVS table"),
        }
    }
}

/// How a service schedules, in words: `rr`, `wlc persistent 300 s`, `rr persistent 60 s per
/// 255.255.255.0`, `sh (sh-fallback,sh-port)` (the flags as `ipvsadm -L` lists them).
pub fn scheduling(
    scheduler: Scheduler,
    flags: &[SchedFlag],
    persistence: &Option<Persistence>,
) -> String {
    let mut s = scheduler.to_string();
    if !flags.is_empty() {
        s.push_str(&format!(" ({})", SchedFlag::list(flags)));
    }
    if let Some(p) = persistence {
        s.push_str(&format!(" persistent {} s", p.timeout));
        if let Some(m) = p.granularity {
            s.push_str(&format!(" per {m}"));
        }
    }
    s
}

/// The rules that turn `current` into `desired`: only the difference.
pub fn plan(current: Option<&Service>, desired: &Service) -> Vec<Rule> {
    let key = desired.key;
    let mut rules = Vec::new();
    let Some(cur) = current else {
        rules.push(Rule::AddService {
            key,
            scheduler: desired.scheduler,
            flags: desired.flags.clone(),
            persistence: desired.persistence,
        });
        rules.extend(desired.real_servers.iter().map(|s| Rule::AddServer {
            key,
            server: s.clone(),
        }));
        return rules;
    };
    if cur.scheduler != desired.scheduler
        || cur.flags != desired.flags
        || cur.persistence != desired.persistence
    {
        rules.push(Rule::EditService {
            key,
            scheduler: desired.scheduler,
            flags: desired.flags.clone(),
            persistence: desired.persistence,
            extra: cur.extra.clone(),
        });
    }
    for s in &cur.real_servers {
        if !desired
            .real_servers
            .iter()
            .any(|d| d.endpoint == s.endpoint)
        {
            rules.push(Rule::DeleteServer {
                key,
                endpoint: s.endpoint,
            });
        }
    }
    for s in &desired.real_servers {
        match cur.real_servers.iter().find(|c| c.endpoint == s.endpoint) {
            None => rules.push(Rule::AddServer {
                key,
                server: s.clone(),
            }),
            Some(c) if c != s => rules.push(Rule::EditServer {
                key,
                server: s.clone(),
            }),
            Some(_) => {}
        }
    }
    rules
}

#[cfg(test)]
mod sync_tests {
    use super::*;

    #[test]
    fn sync_daemons_are_read_as_ipvsadm_lists_them() {
        let text = "master sync daemon (mcast=eth0, syncid=51, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\n\
                    backup sync daemon (mcast=eth1, syncid=7, maxlen=1472, group=224.0.0.81, port=8848)\n";
        assert_eq!(
            SyncDaemon::parse_all(text),
            [
                SyncDaemon {
                    role: "master".into(),
                    interface: "eth0".into(),
                    syncid: Some(51),
                },
                SyncDaemon {
                    role: "backup".into(),
                    interface: "eth1".into(),
                    syncid: Some(7),
                },
            ]
        );
        assert_eq!(SyncDaemon::parse_all(""), []);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_connection_table_parses_with_ipv4_and_ipv6_and_skips_its_headers() {
        let text = "IPVS connection entries\n\
                    pro expire state       source             virtual            destination\n\
                    TCP 00:56  FIN_WAIT    198.18.0.10:39408  198.18.0.100:80    198.18.0.12:80\n\
                    TCP 14:59  ESTABLISHED [2001:db8::10]:5000 [2001:db8::100]:80 [2001:db8::12]:80\n";
        let all = super::Connection::parse_all(text);
        assert_eq!(all.len(), 2, "{all:?}");
        assert_eq!(all[0].state, "FIN_WAIT");
        assert_eq!(all[0].client.port, 39408);
        assert_eq!(all[0].server.to_string(), "198.18.0.12:80");
        assert_eq!(all[1].client.address.to_string(), "2001:db8::10");
        assert_eq!(all[1].virtual_address.port, 80);
    }

    use super::*;

    const SAVED: &str = "-A -t 198.18.0.100:80 -s rr\n-a -t 198.18.0.100:80 -r 198.18.0.12:80 -g -w 1\n-a -t 198.18.0.100:80 -r 198.18.0.13:80 -g -w 1\n";

    fn server(a: &str, w: u16) -> Server {
        Server {
            endpoint: a.parse().unwrap(),
            forwarding: Forwarding::Dr,
            weight: w,
        }
    }

    fn key() -> ServiceKey {
        ServiceKey::Address {
            protocol: Protocol::Tcp,
            endpoint: "198.18.0.100:80".parse().unwrap(),
        }
    }

    fn want(scheduler: Scheduler, servers: Vec<Server>) -> Service {
        Service {
            key: key(),
            scheduler,
            flags: vec![],
            persistence: None,
            extra: vec![],
            real_servers: servers,
        }
    }

    #[test]
    fn parses_ipvsadm_save() {
        let t = Table::parse(SAVED).unwrap();
        assert_eq!(t.services.len(), 1);
        assert_eq!(t.services[0].real_servers[1], server("198.18.0.13:80", 1));
        let p = Table::parse("-A -t 1.2.3.4:80 -s wrr -p 300 -o\n").unwrap();
        assert_eq!(p.services[0].scheduling(), "wrr persistent 300 s");
        assert_eq!(p.services[0].extra, vec!["-o"]);
        let six = Table::parse(
            "-A -t [2001:db8::1]:80 -s rr\n-a -t [2001:db8::1]:80 -r [2001:db8::12]:80 -i -w 0\n",
        )
        .unwrap();
        assert_eq!(six.services[0].real_servers[0].forwarding, Forwarding::Tun);
        assert_eq!(six.services[0].real_servers[0].weight, 0);
        let fw = Table::parse("-A -f 7 -s rr\n-a -f 7 -r 10.0.0.1:0 -m -w 2\n").unwrap();
        assert_eq!(fw.services[0].key, ServiceKey::Fwmark(7));
        assert!(Table::parse("garbage\n").is_err());
        assert!(Table::parse("-A -t 1.2.3.4:80 -s fastest\n").is_err());
    }

    #[test]
    fn plans_only_the_difference() {
        let t = Table::parse(SAVED).unwrap();
        let cur = t.service(&key());
        let same = want(
            Scheduler::Rr,
            vec![server("198.18.0.12:80", 1), server("198.18.0.13:80", 1)],
        );
        assert!(plan(cur, &same).is_empty());
        // scheduler changed, one removed, one added, one re-weighted
        let rules = plan(
            cur,
            &want(
                Scheduler::Wrr,
                vec![server("198.18.0.13:80", 3), server("198.18.0.15:80", 1)],
            ),
        );
        let ops: Vec<String> = rules.iter().map(|r| r.argv()[0].clone()).collect();
        assert_eq!(ops, vec!["-E", "-d", "-e", "-a"]);
        assert_eq!(rules[1].to_string(), "remove real server 198.18.0.12:80");
        let fresh = plan(
            None,
            &want(Scheduler::Rr, vec![server("198.18.0.12:80", 1)]),
        );
        assert_eq!(
            fresh[0].argv(),
            vec!["-A", "-t", "198.18.0.100:80", "-s", "rr"]
        );
        assert_eq!(
            fresh[1].argv(),
            vec![
                "-a",
                "-t",
                "198.18.0.100:80",
                "-r",
                "198.18.0.12:80",
                "-g",
                "-w",
                "1"
            ]
        );
        assert_eq!(
            fresh[1].to_string(),
            "add real server 198.18.0.12:80 (dr, weight 1)"
        );
    }
}
