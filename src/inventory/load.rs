//! Reading and checking an inventory file: every problem is reported with file:line:column
//! before any host is contacted, and the load balancer ([`Lvs`]) is built once from it.
//!
//! Every value that ends up in keepalived.conf, a sysctl, a route or a command line is checked
//! here for the grammar of the place it goes to, so a value that could add a line or a directive
//! never reaches a host.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde_saphyr::{Location, Spanned};

use super::model::{
    ConnectionSettings, HealthCheckSettings, HostEntry, InventoryFile, LvsSettings,
};
use super::{Connection, Group, Host, Inventory, home};
use crate::diagnostic::{Source, SourceError};
use crate::lvs::{
    self, Cidr, Director, DirectorLabels, Forwarding, HealthCheck, Lvs, NatNetwork, RealServer,
    VirtualService, Vrrp, VrrpRole, names, net::same_network, web,
};
use crate::secrets::{self, Secrets};

/// keepalived reads at most 8 characters of a PASS authentication.
const AUTH_PASS_MAX: usize = 8;

/// Load and check an inventory. Warnings (not errors) come back beside it.
pub fn load(path: &Path) -> Result<(Inventory, Vec<String>), miette::Report> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        miette::miette!(
            help = "give the inventory with -i FILE or LVSLAB_INVENTORY; `lvslab lab up` writes one for a local lab",
            "cannot read inventory {}: {e}",
            path.display()
        )
    })?;
    load_str(path, text).map_err(|e| miette::Report::new(*e))
}

pub fn load_str(path: &Path, text: String) -> Result<(Inventory, Vec<String>), Box<SourceError>> {
    // Errors quote the file's lines: its secrets are masked there, found by their keys first
    // (the file may not even parse), then exactly once it does.
    let mut src = Source::new(path, text);
    src.mask(&Secrets::new(secrets::values_by_key(&src.text)));
    let file: InventoryFile =
        serde_saphyr::from_str(&src.text).map_err(|e| Box::new(src.yaml_error(&e)))?;
    let secrets = declared_secrets(&file);
    src.mask(&Secrets::new(secrets.clone()));
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    Checker {
        src: &src,
        base,
        errors: Vec::new(),
        warnings: Vec::new(),
    }
    .check(file, path, secrets)
}

/// auth_pass and every value of `secrets:`.
fn declared_secrets(file: &InventoryFile) -> Vec<String> {
    let mut out: Vec<String> = file.secrets.values().map(|s| s.value.clone()).collect();
    if let Some(pass) = file
        .lvs
        .as_ref()
        .and_then(|l| l.value.vrrp.as_ref())
        .and_then(|v| v.auth_pass.as_ref())
    {
        out.push(pass.value.clone());
    }
    out
}

struct Checker<'a> {
    src: &'a Source,
    base: PathBuf,
    errors: Vec<SourceError>,
    warnings: Vec<String>,
}

/// A value that must be inside `range`, else an error at its place.
fn in_range<T: Copy + Into<i64>>(
    c: &mut Checker<'_>,
    at: &Spanned<T>,
    range: std::ops::RangeInclusive<i64>,
    what: &str,
) -> bool {
    let v: i64 = at.value.into();
    if range.contains(&v) {
        true
    } else {
        c.fail(
            at,
            format!("{what} {v} is outside {}-{}", range.start(), range.end()),
        );
        false
    }
}

impl Checker<'_> {
    fn fail<T>(&mut self, at: &Spanned<T>, message: String) {
        self.fail_at(&at.referenced, message);
    }

    fn fail_at(&mut self, at: &Location, message: String) {
        self.errors.push(self.src.error_at(at, message));
    }

    fn check(
        mut self,
        file: InventoryFile,
        path: &Path,
        secrets: Vec<String>,
    ) -> Result<(Inventory, Vec<String>), Box<SourceError>> {
        if file.hosts.value.is_empty() {
            self.fail(&file.hosts, "the inventory has no hosts".into());
        }
        for (name, value) in &file.secrets {
            if value.value.is_empty() {
                self.fail(value, format!("secret `{name}` is empty"));
            }
        }
        let mut hosts = Vec::new();
        for (name, entry) in &file.hosts.value {
            if let Some(host) = self.host(name, entry, &file.connection) {
                hosts.push(host);
            }
        }
        resolve_jumps(&mut hosts);
        let groups = self.groups(&file);
        self.check_roles(&file, &hosts);
        let mut vars = file.vars.clone();
        for (k, v) in &file.secrets {
            vars.insert(k.clone(), serde_json::Value::String(v.value.clone()));
        }
        let mut inventory = Inventory {
            path: path.to_path_buf(),
            lvs: None,
            hosts,
            groups,
            vars,
            secrets: Secrets::new(secrets),
        };
        if let Some(l) = &file.lvs {
            inventory.lvs = self.lvs(l, &file, &inventory);
        }
        for s in inventory.secrets.values() {
            if s.chars().count() < secrets::MIN_DISTINCT_LEN {
                self.warnings.push(format!(
                    "a secret of {} characters is short: output masks it only where it stands as a word of its own, and it is easy to guess",
                    s.chars().count()
                ));
            }
        }
        if let Some(err) = SourceError::join(self.errors) {
            return Err(Box::new(err));
        }
        Ok((inventory, self.warnings))
    }

    fn host(
        &mut self,
        name: &str,
        entry: &Spanned<HostEntry>,
        global: &ConnectionSettings,
    ) -> Option<Host> {
        if !valid_name(name) {
            self.fail(
                entry,
                format!("host name `{name}`: use letters, digits, `-`, `_` and `.`"),
            );
        }
        let e = &entry.value;
        let address = match e.address.value.parse::<IpAddr>() {
            Ok(a) => a,
            Err(_) => {
                self.fail(
                    &e.address,
                    format!("`{}` is not an IP address (host {name})", e.address.value),
                );
                return None;
            }
        };
        for iface in [&e.interface, &e.inside_interface].into_iter().flatten() {
            if !names::valid_interface(&iface.value) {
                self.fail(
                    iface,
                    format!(
                        "`{}` is not an interface name (letters, digits, `_.@-`, at most {} bytes; VLANs like eth0.100 are fine)",
                        iface.value,
                        names::IFNAMSIZ_MAX
                    ),
                );
            }
        }
        if let Some(w) = &e.weight {
            in_range(self, w, 0..=65535, "weight");
        }
        if let Some(v) = &e.vrrp {
            in_range(self, &v.priority, 1..=254, "VRRP priority");
        }
        let connection = self.connection(global, &e.connection, address);
        Some(Host {
            name: name.to_string(),
            address,
            interface: e.interface.as_ref().map(|i| i.value.clone()),
            connection,
            vars: e.vars.clone(),
        })
    }

    fn groups(&mut self, file: &InventoryFile) -> IndexMap<String, Group> {
        let mut groups = IndexMap::new();
        for (gname, group) in &file.groups {
            if gname == names::ALL {
                self.fail(
                    group,
                    "`all` is implicit (every host); name the group otherwise".into(),
                );
                continue;
            }
            if file.hosts.value.contains_key(gname) {
                self.fail(group, format!("`{gname}` is both a host and a group"));
            }
            let mut members = Vec::new();
            for member in &group.value.hosts {
                if !file.hosts.value.contains_key(&member.value) {
                    self.fail(
                        member,
                        format!(
                            "group `{gname}` names `{}`, which is not under `hosts:`",
                            member.value
                        ),
                    );
                } else if members.contains(&member.value) {
                    self.fail(
                        member,
                        format!("`{}` is listed twice in group `{gname}`", member.value),
                    );
                } else {
                    members.push(member.value.clone());
                }
            }
            groups.insert(
                gname.clone(),
                Group {
                    hosts: members,
                    vars: group.value.vars.clone(),
                },
            );
        }
        groups
    }

    /// Directors and real servers: disjoint, with what their role needs.
    fn check_roles(&mut self, file: &InventoryFile, hosts: &[Host]) {
        let (Some(directors), Some(real_servers)) = (
            file.groups.get(names::DIRECTORS),
            file.groups.get(names::REAL_SERVERS),
        ) else {
            return;
        };
        for rs in &real_servers.value.hosts {
            if directors.value.hosts.iter().any(|d| d.value == rs.value) {
                self.fail(
                    rs,
                    format!(
                        "`{}` is both a director and a real server; a host is one or the other",
                        rs.value
                    ),
                );
            }
        }
        let mut priorities: Vec<(u32, &str)> = Vec::new();
        for d in &directors.value.hosts {
            let Some(entry) = file.hosts.value.get(&d.value) else {
                continue;
            };
            if !hosts.iter().any(|h| h.name == d.value) {
                continue;
            }
            if let Some(v) = &entry.value.vrrp {
                if let Some((_, other)) = priorities.iter().find(|(p, _)| *p == v.priority.value) {
                    self.warnings.push(format!(
                        "directors `{other}` and `{}` have the same VRRP priority {}: keepalived breaks the tie by the higher address",
                        d.value, v.priority.value
                    ));
                }
                priorities.push((v.priority.value, &d.value));
            }
        }
    }

    /// The load balancer: the virtual service, its directors and real servers, VRRP and the
    /// health check, each value checked for the place it goes to.
    fn lvs(
        &mut self,
        settings: &Spanned<LvsSettings>,
        file: &InventoryFile,
        inv: &Inventory,
    ) -> Option<Lvs> {
        let l = &settings.value;
        let vip = match l.vip.value.parse::<IpAddr>() {
            Ok(v) => v,
            Err(_) => {
                self.fail(
                    &l.vip,
                    format!("VIP `{}` is not an IP address", l.vip.value),
                );
                return None;
            }
        };
        if vip.is_ipv6() {
            self.fail(
                &l.vip,
                format!(
                    "VIP {vip} is IPv6: lvslab's LVS setup is IPv4 only (the real servers' ARP settings and keepalived's VRRPv2 instance)"
                ),
            );
        }
        let vip_prefix = l.vip_prefix.as_ref().map_or(24, |p| p.value);
        if let Some(p) = &l.vip_prefix {
            in_range(self, p, 1..=32, "vip_prefix");
        }
        let port = match &l.port {
            None => 80,
            Some(p) if in_range(self, p, 1..=65535, "port") => p.value as u16,
            Some(_) => 80,
        };
        if inv.hosts.iter().any(|h| h.address == vip) {
            self.fail(&l.vip, format!("VIP {vip} is also a host's address"));
        }
        let forwarding = l.forwarding.as_ref().map_or(Forwarding::Dr, |f| f.value);
        let directors = self.directors(file, inv);
        let real_servers = self.real_servers(file, inv);
        self.addresses_are_ipv4(file, inv);

        if !directors.is_empty()
            && !directors
                .iter()
                .any(|d| same_network(d.address, vip, vip_prefix))
        {
            let list: Vec<String> = directors
                .iter()
                .map(|d| format!("{} {}/{vip_prefix}", d.name, d.address))
                .collect();
            self.fail(
                &l.vip,
                format!(
                    "VIP {vip} is inside no director's subnet ({})",
                    list.join(", ")
                ),
            );
        }
        let vrrp = l.vrrp.as_ref().map(|v| {
            in_range(self, &v.virtual_router_id, 1..=255, "virtual_router_id");
            let advert_int = match &v.advert_int {
                None => 1,
                Some(a) if in_range(self, a, 1..=255, "advert_int") => a.value as u8,
                Some(_) => 1,
            };
            if let Some(pass) = &v.auth_pass {
                if pass.value.is_empty() {
                    self.fail(pass, "auth_pass is empty".into());
                } else if pass.value.chars().count() > AUTH_PASS_MAX {
                    self.fail(pass, format!("auth_pass is longer than {AUTH_PASS_MAX} characters; keepalived would silently use only the first {AUTH_PASS_MAX}"));
                } else if !keepalived_word(&pass.value) {
                    self.fail(pass, format!("auth_pass may hold letters, digits and {KEEPALIVED_WORD_PUNCTUATION} only: another character could end the word or start a comment in keepalived.conf"));
                }
            }
            Vrrp {
                virtual_router_id: v.virtual_router_id.value.clamp(1, 255) as u8,
                advert_int,
                auth_pass: v.auth_pass.as_ref().map(|p| p.value.clone()),
            }
        });
        if vrrp.is_some() {
            for d in &directors {
                if d.vrrp.is_none() {
                    self.fail_at(
                        &self.member_location(file, names::DIRECTORS, &d.name),
                        format!(
                            "director `{}` has no `vrrp: {{state, priority}}`, which keepalived needs",
                            d.name
                        ),
                    );
                }
            }
        }
        let health_check = self.health_check(l.health_check.as_ref());
        let nat = self.nat(
            settings,
            forwarding,
            vip,
            inv,
            &directors,
            &real_servers,
            file,
        );
        let members = real_servers
            .iter()
            .map(|r| lvs::Member {
                name: Some(r.name.clone()),
                address: r.address,
                port,
                weight: r.weight,
            })
            .collect();
        Some(Lvs {
            services: vec![VirtualService {
                vip,
                vip_prefix,
                port,
                protocol: l.protocol,
                scheduler: l.scheduler,
                forwarding,
                real_servers: members,
            }],
            directors,
            real_servers,
            vrrp,
            health_check,
            nat,
        })
    }

    /// Where `host` is listed in `group` (for errors about its role).
    fn member_location(&self, file: &InventoryFile, group: &str, host: &str) -> Location {
        file.groups
            .get(group)
            .and_then(|g| g.value.hosts.iter().find(|m| m.value == host))
            .map(|m| m.referenced)
            .unwrap_or(Location::UNKNOWN)
    }

    fn directors(&mut self, file: &InventoryFile, inv: &Inventory) -> Vec<Director> {
        let mut out = Vec::new();
        for host in inv.group_members(names::DIRECTORS).unwrap_or_default() {
            let Some(entry) = file.hosts.value.get(&host.name) else {
                continue;
            };
            let e = &entry.value;
            let Some(interface) = &e.interface else {
                self.fail_at(
                    &self.member_location(file, names::DIRECTORS, &host.name),
                    format!("director `{}` has no `interface:` for the VIP", host.name),
                );
                continue;
            };
            for iface in [Some(interface), e.inside_interface.as_ref()]
                .into_iter()
                .flatten()
            {
                let label = names::alias(&iface.value, names::KEEPALIVED_ALIAS);
                if names::valid_interface(&iface.value) && !names::valid_label(&label) {
                    self.fail(
                        iface,
                        format!(
                            "interface `{}` leaves no room for the VIP's label `{label}` ({} bytes at most)",
                            iface.value,
                            names::IFNAMSIZ_MAX
                        ),
                    );
                }
            }
            out.push(Director {
                name: host.name.clone(),
                address: host.address,
                interface: interface.value.clone(),
                inside_interface: e.inside_interface.as_ref().map(|i| i.value.clone()),
                vrrp: e.vrrp.as_ref().map(|v| VrrpRole {
                    state: v.state,
                    priority: v.priority.value.clamp(1, 254) as u8,
                }),
                labels: DirectorLabels::new(
                    &interface.value,
                    e.inside_interface.as_ref().map(|i| i.value.as_str()),
                ),
            });
        }
        out
    }

    fn real_servers(&mut self, file: &InventoryFile, inv: &Inventory) -> Vec<RealServer> {
        let mut out = Vec::new();
        for host in inv.group_members(names::REAL_SERVERS).unwrap_or_default() {
            let Some(entry) = file.hosts.value.get(&host.name) else {
                continue;
            };
            let e = &entry.value;
            let Some(interface) = &e.interface else {
                self.fail_at(
                    &self.member_location(file, names::REAL_SERVERS, &host.name),
                    format!(
                        "real server `{}` has no `interface:` (the one that faces the directors, for its ARP settings)",
                        host.name
                    ),
                );
                continue;
            };
            let vars = inv.host_vars(host);
            let web = match vars.get(web::VARIABLE) {
                None => web::WebServer::default(),
                Some(v) => match v.as_str().and_then(web::WebServer::parse) {
                    Some(w) => w,
                    None => {
                        self.fail(
                            entry,
                            format!(
                                "host `{}`: {} `{}`: use httpd or nginx",
                                host.name,
                                web::VARIABLE,
                                v.as_str().map_or_else(|| v.to_string(), str::to_string)
                            ),
                        );
                        web::WebServer::default()
                    }
                },
            };
            let weight = e
                .weight
                .as_ref()
                .map(|w| u16::try_from(w.value).unwrap_or(lvs::DEFAULT_WEIGHT));
            out.push(RealServer {
                name: host.name.clone(),
                address: host.address,
                interface: interface.value.clone(),
                weight: lvs::effective_weight(weight),
                web,
            });
        }
        out
    }

    /// Directors, real servers and clients take part in an IPv4 setup.
    fn addresses_are_ipv4(&mut self, file: &InventoryFile, inv: &Inventory) {
        for group in [names::DIRECTORS, names::REAL_SERVERS, names::CLIENTS] {
            for host in inv.group_members(group).unwrap_or_default() {
                if host.address.is_ipv6()
                    && let Some(entry) = file.hosts.value.get(&host.name)
                {
                    self.fail(
                        &entry.value.address,
                        format!(
                            "`{}` is IPv6: lvslab's LVS setup is IPv4 only (ARP settings, VRRPv2); host {} is in `{group}`",
                            host.address, host.name
                        ),
                    );
                }
            }
        }
    }

    fn health_check(&mut self, settings: Option<&Spanned<HealthCheckSettings>>) -> HealthCheck {
        let mut hc = HealthCheck::default();
        let Some(s) = settings else { return hc };
        let s = &s.value;
        if let Some(p) = &s.path {
            if valid_url_path(&p.value) {
                hc.path = p.value.clone();
            } else {
                self.fail(
                    p,
                    format!(
                        "health check path `{}`: write an absolute URL path (`/`, `/health?x=1`) of letters, digits and {URL_PATH_PUNCTUATION}",
                        p.value.escape_debug()
                    ),
                );
            }
        }
        if let Some(c) = &s.status_code
            && in_range(self, c, 100..=599, "status_code")
        {
            hc.status_code = c.value as u16;
        }
        let seconds: [(&Option<Spanned<u32>>, &mut u32, &str, i64); 4] = [
            (
                &s.connect_timeout,
                &mut hc.connect_timeout,
                "connect_timeout",
                1,
            ),
            (&s.retry, &mut hc.retry, "retry", 0),
            (
                &s.delay_before_retry,
                &mut hc.delay_before_retry,
                "delay_before_retry",
                0,
            ),
            (&s.delay_loop, &mut hc.delay_loop, "delay_loop", 1),
        ];
        for (given, slot, what, min) in seconds {
            if let Some(v) = given
                && in_range(self, v, min..=86_400, what)
            {
                *slot = v.value;
            }
        }
        hc
    }

    /// NAT's inside network: required with `forwarding: nat`; the real servers live in it, the
    /// VIP and the clients do not (on one network a real server would answer the client
    /// directly and the connection would break).
    #[allow(clippy::too_many_arguments)]
    fn nat(
        &mut self,
        settings: &Spanned<LvsSettings>,
        forwarding: Forwarding,
        vip: IpAddr,
        inv: &Inventory,
        directors: &[Director],
        real_servers: &[RealServer],
        file: &InventoryFile,
    ) -> Option<NatNetwork> {
        let l = &settings.value;
        let Some(nat) = &l.nat else {
            if forwarding == Forwarding::Nat {
                let at = l
                    .forwarding
                    .as_ref()
                    .map_or(settings.referenced, |f| f.referenced);
                self.fail_at(
                    &at,
                    "forwarding: nat needs `nat: { inside: NETWORK/PREFIX, gateway: ADDRESS }`: the real servers' network and the floating address they route through".into(),
                );
            }
            return None;
        };
        let inside: Cidr = match nat.value.inside.value.parse() {
            Ok(c) => c,
            Err(e) => {
                self.fail(&nat.value.inside, e);
                return None;
            }
        };
        let gateway: IpAddr = match nat.value.gateway.value.parse() {
            Ok(g) => g,
            Err(_) => {
                self.fail(
                    &nat.value.gateway,
                    format!("`{}` is not an IP address", nat.value.gateway.value),
                );
                return None;
            }
        };
        if !inside.contains(gateway) {
            self.fail(
                &nat.value.gateway,
                format!("gateway {gateway} is not inside {inside}"),
            );
        }
        if inv.hosts.iter().any(|h| h.address == gateway) || gateway == vip {
            self.fail(
                &nat.value.gateway,
                format!("gateway {gateway} is already a host's address or the VIP; it must be an address of its own that floats between the directors"),
            );
        }
        if inside.contains(vip) {
            self.fail(
                &l.vip,
                format!("VIP {vip} is inside the real servers' network {inside}: with NAT the VIP is on the outside"),
            );
        }
        if forwarding == Forwarding::Nat {
            for rs in real_servers {
                if !inside.contains(rs.address)
                    && let Some(e) = file.hosts.value.get(&rs.name)
                {
                    self.fail(
                        &e.value.address,
                        format!(
                            "real server {} ({}) is not inside the NAT network {inside}",
                            rs.name, rs.address
                        ),
                    );
                }
            }
            for d in directors {
                if d.inside_interface.is_none() {
                    self.fail_at(
                        &self.member_location(file, names::DIRECTORS, &d.name),
                        format!(
                            "director `{}` has no `inside_interface:` (its interface on the real servers' network {inside}, for the gateway)",
                            d.name
                        ),
                    );
                }
            }
            for client in inv.group_members(names::CLIENTS).unwrap_or_default() {
                if inside.contains(client.address)
                    && let Some(e) = file.hosts.value.get(&client.name)
                {
                    self.fail(
                        &e.value.address,
                        format!(
                            "client {} ({}) shares the real servers' network {inside}: with NAT a real server would answer it directly, not through the director, and the connection breaks; put clients on the outside network",
                            client.name, client.address
                        ),
                    );
                }
            }
        }
        Some(NatNetwork {
            inside,
            prefix: inside.prefix,
            gateway,
        })
    }

    fn connection(
        &mut self,
        global: &ConnectionSettings,
        host: &ConnectionSettings,
        address: IpAddr,
    ) -> Connection {
        let target = host.host.as_ref().or(global.host.as_ref());
        if let Some(t) = target
            && !valid_name(&t.value)
        {
            self.fail(t, format!("`{}` is not a host name or address", t.value));
        }
        let user = host.user.as_ref().or(global.user.as_ref());
        if let Some(u) = user
            && !valid_user(&u.value)
        {
            self.fail(u, format!("`{}` is not a user name", u.value));
        }
        let port = host.port.as_ref().or(global.port.as_ref());
        if let Some(p) = port {
            in_range(self, p, 1..=65535, "SSH port");
        }
        let user = user.map_or_else(|| "root".to_string(), |u| u.value.clone());
        let identity = host
            .identity_file
            .as_ref()
            .or(global.identity_file.as_ref())
            .map(|p| self.resolve(p));
        let known_hosts = host
            .known_hosts
            .as_ref()
            .or(global.known_hosts.as_ref())
            .map_or_else(|| home().join(".ssh/known_hosts"), |p| self.resolve(p));
        // The jump host's own settings: the inventory-wide ones (an inventory host it names
        // gets that host's, in `resolve_jumps`).
        let jump_identity = global.identity_file.as_ref().map(|p| self.resolve(p));
        let jump_known_hosts = global
            .known_hosts
            .as_ref()
            .map_or_else(|| home().join(".ssh/known_hosts"), |p| self.resolve(p));
        let jump = host.jump.as_ref().or(global.jump.as_ref()).and_then(|j| {
            match parse_jump(&j.value, &user, jump_identity, jump_known_hosts) {
                Ok(jump) => Some(jump),
                Err(why) => {
                    self.fail(j, why);
                    None
                }
            }
        });
        Connection {
            target: target.map_or_else(|| address.to_string(), |t| t.value.clone()),
            port: port.map_or(22, |p| p.value.max(1)),
            become_root: host
                .become_root
                .or(global.become_root)
                .unwrap_or(user != "root"),
            user,
            identity_file: identity,
            known_hosts,
            jump,
        }
    }

    /// `~/x` from $HOME; relative paths from the inventory's directory.
    fn resolve(&self, p: &Path) -> PathBuf {
        if let Ok(rest) = p.strip_prefix("~") {
            return home().join(rest);
        }
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base.join(p)
        }
    }
}

/// Host and group names, and SSH targets: safe in commands and file names.
fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && !s.starts_with('-')
}

/// Punctuation a keepalived.conf word may hold besides letters and digits: no white space,
/// quotes, `#`/`!` (comments), `$` (keepalived's definitions), braces or backslashes.
const KEEPALIVED_WORD_PUNCTUATION: &str = "._-+=@%^*~/:,";

fn keepalived_word(s: &str) -> bool {
    s.chars()
        .all(|c| c.is_ascii_alphanumeric() || KEEPALIVED_WORD_PUNCTUATION.contains(c))
}

/// Punctuation an HTTP check's path may hold (RFC 3986's path and query characters, without
/// what keepalived.conf reads as syntax).
const URL_PATH_PUNCTUATION: &str = "/-._~%?&=+,;:@*()";

fn valid_url_path(s: &str) -> bool {
    s.starts_with('/')
        && s.len() <= 1024
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || URL_PATH_PUNCTUATION.contains(c))
}

/// `[user@]host[:port]`; the user defaults to the host's login user, the port to 22.
fn parse_jump(
    text: &str,
    default_user: &str,
    identity_file: Option<PathBuf>,
    known_hosts: PathBuf,
) -> Result<crate::inventory::Jump, String> {
    let (user, rest) = match text.split_once('@') {
        Some((user, rest)) => (user, rest),
        None => (default_user, text),
    };
    let (target, port) = match rest.rsplit_once(':') {
        Some((target, port)) => (
            target,
            port.parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| format!("jump host `{text}`: `{port}` is not a port"))?,
        ),
        None => (rest, 22),
    };
    if !valid_user(user) {
        return Err(format!("jump host `{text}`: `{user}` is not a user name"));
    }
    if !valid_name(target) {
        return Err(format!(
            "jump host `{text}`: `{target}` is not a host name or address (write [user@]host[:port])"
        ));
    }
    Ok(crate::inventory::Jump {
        user: user.to_string(),
        target: target.to_string(),
        port,
        identity_file,
        known_hosts,
    })
}

/// A jump host that is an inventory host (by name) is reached at that host's address and port,
/// with its identity and known_hosts.
fn resolve_jumps(hosts: &mut [Host]) {
    let named: Vec<(String, Connection)> = hosts
        .iter()
        .map(|h| (h.name.clone(), h.connection.clone()))
        .collect();
    for h in hosts.iter_mut() {
        if let Some(jump) = &mut h.connection.jump
            && let Some((_, c)) = named.iter().find(|(n, _)| *n == jump.target)
        {
            jump.target = c.target.clone();
            jump.port = c.port;
            jump.identity_file = c.identity_file.clone();
            jump.known_hosts = c.known_hosts.clone();
        }
    }
}

fn valid_user(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 32
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && !s.starts_with('-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(yaml: &str) -> Result<(Inventory, Vec<String>), Box<SourceError>> {
        load_str(Path::new("inv.yml"), yaml.to_string())
    }

    const GOOD: &str = "\
lvs:
  vip: 10.0.0.100
  vrrp: { virtual_router_id: 51, auth_pass: \"pw1111ab\" }
hosts:
  d1: { address: 10.0.0.11, interface: eth0, vrrp: { state: MASTER, priority: 100 } }
  d2: { address: 10.0.0.14, interface: eth0, vrrp: { state: BACKUP, priority: 50 } }
  r1: { address: 10.0.0.12, interface: eth0, weight: 2 }
groups:
  directors: { hosts: [d1, d2] }
  real_servers: { hosts: [r1] }
";

    #[test]
    fn example_inventory_is_valid() {
        let text = include_str!("../../inventory.example.yml");
        let (inv, warnings) = check(text).unwrap();
        assert_eq!(inv.hosts.len(), 4);
        let lvs = inv.lvs.unwrap();
        assert_eq!(lvs.vrrp.unwrap().virtual_router_id, 51);
        assert_eq!(lvs.directors[0].labels.manual, "ens32:2");
        assert_eq!(lvs.real_servers[1].weight, 1);
        // The seed's auth_pass is 4 characters: a warning says what that means for masking.
        assert!(
            warnings.iter().all(|w| w.contains("is short")),
            "{warnings:?}"
        );
    }

    #[test]
    fn good_inventory_builds_the_load_balancer() {
        let (inv, warnings) = check(GOOD).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(inv.select("directors").unwrap().len(), 2);
        assert_eq!(
            inv.select("r1,d1").unwrap()[0].name,
            "d1",
            "inventory order"
        );
        assert_eq!(inv.select("nope").unwrap_err(), "nope");
        assert_eq!(inv.secrets.values(), ["pw1111ab".to_string()]);
        assert_eq!(inv.hosts[0].connection.user, "root");
        let lvs = inv.lvs.unwrap();
        let svc = lvs.service();
        assert_eq!(svc.endpoint().to_string(), "10.0.0.100:80");
        assert_eq!(svc.real_servers[0].weight, 2);
        assert_eq!(lvs.expected_master().unwrap().name, "d1");
        assert_eq!(lvs.directors[1].labels.keepalived, "eth0:3");
    }

    #[test]
    fn weight_zero_is_zero_and_missing_is_one() {
        let zero = GOOD.replace("weight: 2", "weight: 0");
        assert_eq!(
            check(&zero).unwrap().0.lvs.unwrap().real_servers[0].weight,
            0
        );
        let none = GOOD.replace(", weight: 2", "");
        assert_eq!(
            check(&none).unwrap().0.lvs.unwrap().real_servers[0].weight,
            1
        );
    }

    fn error_of(yaml: &str) -> String {
        match check(yaml) {
            Ok(_) => panic!("accepted: {yaml}"),
            Err(e) => {
                let mut all = vec![e.to_string()];
                all.extend(e.more.iter().map(|m| m.to_string()));
                all.join("\n")
            }
        }
    }

    #[test]
    fn jump_hosts_are_parsed_and_checked() {
        let with_jump = GOOD.replacen(
            "lvs:",
            "connection: { user: ops, jump: bastion.example:2222 }\nlvs:",
            1,
        );
        let (inv, _) = check(&with_jump).unwrap();
        let jump = inv.hosts[0].connection.jump.clone().unwrap();
        assert_eq!(
            (jump.user.as_str(), jump.target.as_str(), jump.port),
            ("ops", "bastion.example", 2222)
        );
        let per_host = GOOD.replace(
            "r1: { address: 10.0.0.12, interface: eth0, weight: 2 }",
            "r1: { address: 10.0.0.12, interface: eth0, weight: 2, connection: { jump: root@10.0.0.11 } }",
        );
        let (inv, _) = check(&per_host).unwrap();
        assert!(inv.hosts[0].connection.jump.is_none());
        let jump = inv.host("r1").unwrap().connection.jump.clone().unwrap();
        assert_eq!(
            (jump.user.as_str(), jump.target.as_str(), jump.port),
            ("root", "10.0.0.11", 22)
        );
        // The jump host logs in with the inventory-wide identity, not the first host's own.
        let own_key = GOOD.replacen(
            "lvs:",
            "connection: { identity_file: /k/global, jump: bastion }\nlvs:",
            1,
        )
        .replace(
            "r1: { address: 10.0.0.12, interface: eth0, weight: 2 }",
            "r1: { address: 10.0.0.12, interface: eth0, weight: 2, connection: { identity_file: /k/r1 } }",
        );
        let (inv, _) = check(&own_key).unwrap();
        let r1 = &inv.host("r1").unwrap().connection;
        assert_eq!(r1.identity_file.as_deref(), Some(Path::new("/k/r1")));
        let jump = r1.jump.clone().unwrap();
        assert_eq!(jump.identity_file.as_deref(), Some(Path::new("/k/global")));
        assert_eq!(
            jump,
            inv.host("d1").unwrap().connection.jump.clone().unwrap()
        );
        // A jump host named like an inventory host is that host.
        let by_name = GOOD.replacen("lvs:", "connection: { jump: d2 }\nlvs:", 1);
        let (inv, _) = check(&by_name).unwrap();
        let jump = inv.host("r1").unwrap().connection.jump.clone().unwrap();
        assert_eq!((jump.target.as_str(), jump.port), ("10.0.0.14", 22));
        let e = error_of(&GOOD.replacen("lvs:", "connection: { jump: \"b; reboot\" }\nlvs:", 1));
        assert!(
            e.starts_with("inv.yml:1:") && e.contains("not a host name"),
            "{e}"
        );
        let e = error_of(&GOOD.replacen("lvs:", "connection: { jump: \"b:0\" }\nlvs:", 1));
        assert!(e.contains("`0` is not a port"), "{e}");
    }

    #[test]
    fn unknown_key_is_refused_with_line_and_column() {
        let e = error_of("hosts:\n  a:\n    adress: 10.0.0.1\n");
        assert!(e.starts_with("inv.yml:3:5"), "{e}");
        assert!(e.contains("adress"), "{e}");
    }

    #[test]
    fn duplicate_host_is_refused() {
        let e = error_of("hosts:\n  a: { address: 10.0.0.1 }\n  a: { address: 10.0.0.2 }\n");
        assert!(e.contains("inv.yml:3:"), "{e}");
        assert!(e.to_lowercase().contains("duplicate"), "{e}");
    }

    #[test]
    fn wrong_type_and_bad_address_are_refused() {
        let e = error_of("hosts:\n  a: { address: 10.0.0.1, weight: many }\n");
        assert!(e.contains("inv.yml:2:"), "{e}");
        let e = error_of("hosts:\n  a: { address: 10.0.0.300 }\n");
        assert!(
            e.contains("inv.yml:2:") && e.contains("not an IP address"),
            "{e}"
        );
    }

    #[test]
    fn lvs_rules_are_checked() {
        let e = error_of(&GOOD.replace("10.0.0.100", "10.9.0.100"));
        assert!(e.contains("inside no director's subnet"), "{e}");
        let e = error_of(&GOOD.replace("virtual_router_id: 51", "virtual_router_id: 300"));
        assert!(
            e.contains("inv.yml:3:") && e.contains("outside 1-255"),
            "{e}"
        );
        let e = error_of(&GOOD.replace("\"pw1111ab\"", "\"123456789\""));
        assert!(e.contains("longer than 8"), "{e}");
        let e = error_of(&GOOD.replace("hosts: [r1]", "hosts: [r1, d1]"));
        assert!(e.contains("both a director and a real server"), "{e}");
        let e = error_of(&GOOD.replace("hosts: [r1]", "hosts: [r9]"));
        assert!(e.contains("`r9`, which is not under `hosts:`"), "{e}");
        let e = error_of(&GOOD.replace("vip: 10.0.0.100", "vip: not-an-ip"));
        assert!(
            e.contains("inv.yml:2:") && e.contains("not an IP address"),
            "{e}"
        );
    }

    #[test]
    fn values_that_reach_config_files_or_commands_are_checked_for_their_place() {
        let bad = [
            (
                GOOD.replace("auth_pass: \"pw1111ab\"", "auth_pass: \"pw1 #x\""),
                "inv.yml:3:",
                "auth_pass may hold",
            ),
            (
                GOOD.replace(
                    "vip: 10.0.0.100",
                    "vip: 10.0.0.100\n  health_check: { path: \"/ }\\n virtual_server\" }",
                ),
                "inv.yml:3:",
                "health check path",
            ),
            (
                GOOD.replace(
                    "vip: 10.0.0.100",
                    "vip: 10.0.0.100\n  health_check: { path: health }",
                ),
                "inv.yml:3:",
                "absolute URL path",
            ),
            (
                GOOD.replace("weight: 2", "weight: 70000"),
                "inv.yml:7:",
                "weight 70000 is outside 0-65535",
            ),
            (
                GOOD.replace("weight: 2", "weight: -1"),
                "inv.yml:7:",
                "weight -1 is outside 0-65535",
            ),
            (
                GOOD.replace("vip: 10.0.0.100", "vip: 10.0.0.100\n  port: 0"),
                "inv.yml:3:",
                "port 0 is outside 1-65535",
            ),
            (
                GOOD.replace(
                    "virtual_router_id: 51",
                    "virtual_router_id: 51, advert_int: 0",
                ),
                "inv.yml:3:",
                "advert_int 0 is outside 1-255",
            ),
            (
                GOOD.replace("priority: 100", "priority: 255"),
                "inv.yml:5:",
                "VRRP priority 255 is outside 1-254",
            ),
            (
                GOOD.replace(
                    "vip: 10.0.0.100",
                    "vip: 10.0.0.100\n  health_check: { status_code: 99 }",
                ),
                "inv.yml:3:",
                "status_code 99",
            ),
            (
                GOOD.replace("vip: 10.0.0.100", "vip: \"2001:db8::100\""),
                "inv.yml:2:",
                "IPv4 only",
            ),
            (
                GOOD.replace("address: 10.0.0.12,", "address: \"2001:db8::12\","),
                "inv.yml:7:",
                "is IPv6",
            ),
            (
                GOOD.replace(
                    "interface: eth0, vrrp: { state: MASTER",
                    "interface: \"eth0\\nx\", vrrp: { state: MASTER",
                ),
                "inv.yml:5:",
                "not an interface name",
            ),
            (
                GOOD.replace(
                    "interface: eth0, vrrp: { state: MASTER",
                    "interface: abcdefghijklmn, vrrp: { state: MASTER",
                ),
                "inv.yml:5:",
                "no room for the VIP's label",
            ),
            (
                GOOD.replacen("lvs:", "connection: { port: 0 }\nlvs:", 1),
                "inv.yml:1:",
                "SSH port 0",
            ),
        ];
        for (yaml, place, what) in bad {
            let e = error_of(&yaml);
            assert!(
                e.contains(place) && e.contains(what),
                "want {place} {what}:\n{e}"
            );
        }
        // A VLAN interface is an interface name.
        let vlan = GOOD.replace(
            "interface: eth0, vrrp: { state: MASTER",
            "interface: eth0.100, vrrp: { state: MASTER",
        );
        let (inv, _) = check(&vlan).unwrap();
        assert_eq!(
            inv.lvs.unwrap().directors[0].labels.keepalived,
            "eth0.100:3"
        );
    }

    #[test]
    fn nat_needs_an_inside_network_that_holds_the_real_servers_and_no_client() {
        let nat = "\
lvs:
  vip: 198.18.0.100
  forwarding: nat
  nat: { inside: 198.18.1.0/24, gateway: 198.18.1.254 }
hosts:
  d1: { address: 198.18.0.11, interface: eth0, inside_interface: eth1 }
  r1: { address: 198.18.1.12, interface: eth0 }
  c1: { address: 198.18.0.10, interface: eth0 }
groups:
  directors: { hosts: [d1] }
  real_servers: { hosts: [r1] }
  clients: { hosts: [c1] }
";
        let (inv, _) = check(nat).unwrap();
        let lvs = inv.lvs.unwrap();
        assert_eq!(lvs.nat.unwrap().gateway.to_string(), "198.18.1.254");
        assert_eq!(
            lvs.directors[0].labels.gateway_keepalived.as_deref(),
            Some("eth1:3")
        );
        let e = error_of(&nat.replace("c1: { address: 198.18.0.10", "c1: { address: 198.18.1.10"));
        assert!(
            e.contains("inv.yml:8:") && e.contains("shares the real servers' network"),
            "{e}"
        );
        let e = error_of(&nat.replace(
            "  nat: { inside: 198.18.1.0/24, gateway: 198.18.1.254 }\n",
            "",
        ));
        assert!(
            e.contains("inv.yml:3:") && e.contains("forwarding: nat needs"),
            "{e}"
        );
        let e = error_of(&nat.replace(", inside_interface: eth1", ""));
        assert!(e.contains("no `inside_interface:`"), "{e}");
        let e = error_of(&nat.replace("gateway: 198.18.1.254", "gateway: 198.18.2.254"));
        assert!(e.contains("not inside 198.18.1.0/24"), "{e}");
        let e = error_of(&nat.replace("r1: { address: 198.18.1.12", "r1: { address: 198.18.0.12"));
        assert!(e.contains("not inside the NAT network"), "{e}");
    }

    #[test]
    fn secrets_are_masked_in_the_lines_an_error_quotes() {
        let text = GOOD.replace("weight: 2", "weight: many");
        let e = check(&text).err().unwrap();
        let rendered = format!("{:?}", miette::Report::new(*e));
        assert!(!rendered.contains("pw1111ab"), "{rendered}");
        // Also when the file does not parse at all.
        let broken = format!("{GOOD}secrets:\n  db: hunter22secret\n  [broken\n");
        let e = check(&broken).err().unwrap();
        let rendered = format!("{:?}", miette::Report::new(*e));
        assert!(
            !rendered.contains("hunter22secret") && !rendered.contains("pw1111ab"),
            "{rendered}"
        );
    }

    #[test]
    fn same_priority_is_a_warning() {
        let (_, warnings) = check(&GOOD.replace("priority: 50", "priority: 100")).unwrap();
        assert!(warnings[0].contains("same VRRP priority"), "{warnings:?}");
    }

    #[test]
    fn shell_metacharacters_in_names_are_refused() {
        let e = error_of("hosts:\n  a: { address: 10.0.0.1, interface: \"eth0; rm -rf /\" }\n");
        assert!(e.contains("not an interface name"), "{e}");
        let e =
            error_of("connection: { user: \"root$(id)\" }\nhosts:\n  a: { address: 10.0.0.1 }\n");
        assert!(e.contains("not a user name"), "{e}");
    }
}

#[cfg(test)]
mod fuzz {
    //! The parsers never panic, whatever the input: random text, and valid files cut or
    //! spliced at random places.
    use super::*;
    use proptest::prelude::*;

    const EXAMPLE: &str = include_str!("../../inventory.example.yml");

    proptest! {
        #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

        #[test]
        fn inventory_parser_never_panics(text in "\\PC{0,300}") {
            let _ = load_str(Path::new("f.yml"), text);
        }

        #[test]
        fn inventory_parser_survives_mangled_examples(cut in 0usize..2000, insert in "[ :\\-\\[\\]{}\"'#&*!|>0-9a-z\n]{0,12}") {
            let mut s = EXAMPLE.to_string();
            let mut at = cut.min(s.len());
            while !s.is_char_boundary(at) {
                at -= 1;
            }
            s.insert_str(at, &insert);
            let _ = load_str(Path::new("f.yml"), s);
        }
    }
}
