//! The load balancer built from an inventory's `lvs:` section and its groups: the virtual
//! service, the directors and real servers with their roles, VRRP, the health check and NAT,
//! each value checked for the place it goes to (keepalived.conf, a sysctl, a route, a command
//! line) so that nothing can add a line or a directive on a host. The file itself, its hosts,
//! groups and connections are read and checked in `load.rs`.

use std::net::IpAddr;

use serde_saphyr::{Location, Spanned};

use super::load::{Checker, in_range};
use super::model::{HealthCheckSettings, InventoryFile, LvsSettings};
use super::{Host, Inventory};
use crate::lvs::{
    self, Cidr, Director, DirectorLabels, Forwarding, Garp, HealthCheck, Lvs, NatNetwork,
    RealServer, VirtualService, Vrrp, VrrpRole, names, net::same_network, web,
};

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

/// keepalived reads at most 8 characters of a PASS authentication.
const AUTH_PASS_MAX: usize = 8;

/// Where the inventory gives host `name`'s VRRP state.
fn vrrp_state_of<'f>(file: &'f InventoryFile, name: &str) -> Option<&'f Spanned<lvs::VrrpState>> {
    Some(&file.hosts.value.get(name)?.value.vrrp.as_ref()?.state)
}

impl Checker<'_> {
    /// Directors and real servers: disjoint, with what their role needs.
    pub(super) fn check_roles(&mut self, file: &InventoryFile, hosts: &[Host]) {
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
        let mut masters: Vec<&str> = Vec::new();
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
                if v.state.value == lvs::VrrpState::Master {
                    masters.push(&d.value);
                }
            }
        }
        // With nopreempt or a preempt_delay every director starts BACKUP (see `lvs`).
        let all_backup = file
            .lvs
            .as_ref()
            .and_then(|l| l.value.vrrp.as_ref())
            .is_some_and(|v| {
                lvs::all_start_backup(v.preempt(), v.preempt_delay.as_ref().map_or(0, |d| d.value))
            });
        if masters.len() > 1 && !all_backup {
            self.warnings.push(format!(
                "directors {} are all `state: MASTER`: each takes the VIP when it starts, until it hears a higher priority's adverts (two VIP holders meanwhile); make one MASTER and the others BACKUP",
                masters.iter().map(|m| format!("`{m}`")).collect::<Vec<_>>().join(", ")
            ));
        }
    }

    /// The load balancer: the virtual service, its directors and real servers, VRRP and the
    /// health check, each value checked for the place it goes to.
    pub(super) fn lvs(
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
            // keepalived's ranges (keepalived.conf(5)); `None`: keepalived's default.
            let mut seconds = |at: &Option<Spanned<u32>>, range, what| match at {
                Some(a) if in_range(self, a, range, what) => Some(a.value),
                _ => None,
            };
            let preempt_delay = seconds(&v.preempt_delay, 0..=1000, "preempt_delay").unwrap_or(0);
            let garp = Garp {
                master_delay: seconds(&v.garp_master_delay, 0..=1000, "garp_master_delay"),
                master_repeat: seconds(&v.garp_master_repeat, 1..=255, "garp_master_repeat"),
                master_refresh: seconds(&v.garp_master_refresh, 0..=86400, "garp_master_refresh"),
                master_refresh_repeat: seconds(
                    &v.garp_master_refresh_repeat,
                    1..=255,
                    "garp_master_refresh_repeat",
                ),
            };
            let preempt = v.preempt();
            if let (false, Some(delay)) = (preempt, &v.preempt_delay)
                && delay.value > 0
            {
                self.warn(
                    delay,
                    "preempt_delay does nothing with `preempt: false` (keepalived never takes the VIP back then)".into(),
                );
            }
            let sync_daemon = v.sync_daemon.as_ref().is_some_and(|s| s.value);
            if let Some(s) = &v.sync_daemon
                && s.value
                && directors.len() < 2
            {
                self.warn(
                    s,
                    "sync_daemon with one director: there is no BACKUP to keep the connections".into(),
                );
            }
            let unicast = v.unicast.as_ref().is_some_and(|u| u.value);
            if let Some(u) = &v.unicast
                && u.value
                && directors.len() < 2
            {
                self.warn(
                    u,
                    "unicast with one director: it has no peer to send its adverts to".into(),
                );
            }
            Vrrp {
                virtual_router_id: v.virtual_router_id.value.clamp(1, 255) as u8,
                advert_int,
                auth_pass: v.auth_pass.as_ref().map(|p| p.value.clone()),
                unicast,
                preempt,
                preempt_delay,
                higher_prio_send_advert: v.higher_prio_send_advert.as_ref().is_some_and(|h| h.value),
                notify: v.notify.as_ref().is_some_and(|n| n.value),
                track_interface: self.tracked_interfaces(v.track_interface.as_ref()),
                track_script: self.track_scripts(v.track_script.as_ref()),
                garp,
                sync_daemon,
            }
        });
        // keepalived clears nopreempt and preempt_delay on an instance that starts MASTER:
        // with either, every director starts BACKUP (the highest priority still wins the
        // first election), and the inventory's MASTER is named once.
        let mut directors = directors;
        if vrrp.as_ref().is_some_and(Vrrp::all_start_backup) {
            for d in &mut directors {
                if let Some(role) = &mut d.vrrp
                    && role.state == lvs::VrrpState::Master
                {
                    role.state = lvs::VrrpState::Backup;
                    if let Some(state) = vrrp_state_of(file, &d.name) {
                        self.warn(
                            state,
                            format!(
                                "`{}` starts as BACKUP: keepalived ignores `nopreempt` and `preempt_delay` on a MASTER, so lvslab starts every director BACKUP (the highest priority, {}, still wins the first election)",
                                d.name,
                                role.priority
                            ),
                        );
                    }
                }
            }
        }
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
        let health_check = self.health_check(l.health_check.as_ref(), forwarding);
        let nat = self.nat(
            settings,
            forwarding,
            vip,
            inv,
            &directors,
            &real_servers,
            file,
        );
        let services = self.services(settings, vip, vip_prefix, port, forwarding, &real_servers);
        if services.is_empty() {
            return None;
        }
        if let Some(via) = l
            .health_check
            .as_ref()
            .and_then(|h| h.value.via_vip.as_ref())
            && via.value
        {
            let taken = lvs::path_marks(real_servers.len());
            if let Some(m) = services
                .iter()
                .filter_map(|s| s.fwmark)
                .find(|m| taken.contains(m))
            {
                self.fail(
                    via,
                    format!(
                        "via_vip gives each real server's check a firewall mark of its own ({}..={}), and a service has fwmark {m}: give that service a mark below {}",
                        taken.start(),
                        taken.end(),
                        taken.start()
                    ),
                );
            }
        }
        let ipvs_sysctls = self.ipvs_settings(l.ipvs_settings.as_ref());
        Some(Lvs {
            ipvs_sysctls,
            services,
            directors,
            real_servers,
            vrrp,
            health_check,
            nat,
        })
    }

    /// What keepalived does when the checks of `service` fail: its own keys, else the `lvs:`
    /// level's. A quorum above the service's total weight, or without a sorry server, draws a
    /// warning; a hysteresis not below the quorum is refused.
    fn on_failure(
        &mut self,
        defaults: &FailureKeys<'_>,
        own: &FailureKeys<'_>,
        service: &VirtualService,
    ) -> lvs::OnFailure {
        let inhibit = own.inhibit_on_failure.or(defaults.inhibit_on_failure);
        let alpha = own.alpha.or(defaults.alpha);
        let quorum = own.quorum.or(defaults.quorum);
        let hysteresis = own.hysteresis.or(defaults.hysteresis);
        let sorry_inhibit = own.sorry_server_inhibit.or(defaults.sorry_server_inhibit);
        if let Some(i) = sorry_inhibit
            && i.value
            && service.sorry_server.is_none()
        {
            self.fail(
                i,
                format!(
                    "sorry_server_inhibit on {} without a sorry_server: give `sorry_server:` (the server it keeps at weight 0)",
                    service.name()
                ),
            );
        }
        let mut out = lvs::OnFailure {
            inhibit_on_failure: inhibit.is_some_and(|i| i.value),
            sorry_server_inhibit: sorry_inhibit.is_some_and(|i| i.value)
                && service.sorry_server.is_some(),
            alpha: alpha.is_some_and(|a| a.value),
            quorum: None,
            hysteresis: None,
        };
        if let Some(q) = quorum
            && in_range(self, q, 1..=i64::from(u32::MAX), "quorum")
        {
            let total: u32 = service
                .real_servers
                .iter()
                .map(|m| u32::from(m.weight))
                .sum();
            if q.value > total {
                self.warn(
                    q,
                    format!(
                        "quorum {} is above {}'s total weight {total}: keepalived counts it as lost even with every real server up",
                        q.value,
                        service.name()
                    ),
                );
            }
            if service.sorry_server.is_none() {
                self.warn(
                    q,
                    format!(
                        "quorum changes nothing on {} without a sorry_server: keepalived then only runs quorum scripts, and lvslab configures none",
                        service.name()
                    ),
                );
            }
            out.quorum = Some(q.value);
        }
        if let Some(h) = hysteresis {
            match out.quorum {
                Some(q) if h.value < q => out.hysteresis = Some(h.value),
                Some(q) => self.fail(
                    h,
                    format!(
                        "hysteresis {} is not below quorum {q}: the quorum could never be lost",
                        h.value
                    ),
                ),
                None => self.warn(h, "hysteresis does nothing without `quorum`".into()),
            }
        }
        out
    }

    /// The virtual services: `lvs.services`, or the short form's one (`port`, `protocol`,
    /// `scheduler`, persistence), all on the VIP, none shadowing another.
    fn services(
        &mut self,
        settings: &Spanned<LvsSettings>,
        vip: IpAddr,
        vip_prefix: u8,
        port: u16,
        forwarding: Forwarding,
        real_servers: &[RealServer],
    ) -> Vec<VirtualService> {
        let l = &settings.value;
        let default_persistence = self.persistence(
            l.persistence_timeout.as_ref(),
            l.persistence_granularity.as_ref(),
        );
        let default_sorry = self.sorry_server(l.sorry_server.as_ref(), vip);
        let default_flags = self.scheduler_flags(l.scheduler_flags.as_ref(), l.scheduler);
        let lvs_failure = FailureKeys {
            inhibit_on_failure: l.inhibit_on_failure.as_ref(),
            sorry_server_inhibit: l.sorry_server_inhibit.as_ref(),
            alpha: l.alpha.as_ref(),
            quorum: l.quorum.as_ref(),
            hysteresis: l.hysteresis.as_ref(),
        };
        let service = |port: u16,
                       ports: Vec<u16>,
                       fwmark,
                       protocol,
                       (scheduler, scheduler_flags),
                       (persistence, sorry_server),
                       members: &[&RealServer]| {
            VirtualService {
                sorry_server,
                tls: false,
                on_failure: lvs::OnFailure::default(),
                vip,
                vip_prefix,
                port,
                protocol,
                fwmark,
                ports,
                scheduler,
                scheduler_flags,
                forwarding,
                persistence,
                real_servers: members
                    .iter()
                    .map(|r| lvs::Member {
                        name: Some(r.name.clone()),
                        address: r.address,
                        // A firewall mark's real servers have no port (keepalived clears one,
                        // IPVS keeps each packet's own).
                        port: if fwmark.is_some() { 0 } else { port },
                        weight: r.weight,
                    })
                    .collect(),
            }
        };
        let everyone: Vec<&RealServer> = real_servers.iter().collect();
        let Some(list) = &l.services else {
            let mut one = service(
                port,
                vec![port],
                None,
                l.protocol,
                (l.scheduler, default_flags),
                (default_persistence, default_sorry),
                &everyone,
            );
            one.on_failure = self.on_failure(&lvs_failure, &FailureKeys::default(), &one);
            return vec![one];
        };
        if let Some(p) = &l.port {
            self.fail(
                p,
                "`port:` and `services:` both given: with `services:`, each service names its own port".into(),
            );
        }
        if list.value.is_empty() {
            self.fail(
                list,
                "`services:` is empty: list at least one service, or remove it and give `port:`"
                    .into(),
            );
        }
        let mut out: Vec<VirtualService> = Vec::new();
        for entry in &list.value {
            let e = &entry.value;
            if let Some(v) = &e.vip
                && v.value.parse::<IpAddr>().ok() != Some(vip)
            {
                self.fail(
                    v,
                    format!(
                        "vip `{}`: every service uses the load balancer's VIP ({vip}); several VIPs are not supported yet",
                        v.value
                    ),
                );
            }
            let protocol = e.protocol.unwrap_or(l.protocol);
            let scheduler = e.scheduler.unwrap_or(l.scheduler);
            let flags = match &e.scheduler_flags {
                Some(own) => self.scheduler_flags(Some(own), scheduler),
                // The load balancer's flags go with its scheduler.
                None if scheduler == l.scheduler => default_flags.clone(),
                None => Vec::new(),
            };
            let persistence = match (&e.persistence_timeout, &e.persistence_granularity) {
                (None, None) => default_persistence,
                (t, g) => self.persistence(t.as_ref(), g.as_ref()),
            };
            let sorry = match &e.sorry_server {
                None => default_sorry,
                given => self.sorry_server(given.as_ref(), vip),
            };
            let ports_of = |c: &mut Self, ports: &Spanned<Vec<Spanned<u32>>>| -> Vec<u16> {
                let mut out: Vec<u16> = Vec::new();
                for p in &ports.value {
                    if in_range(c, p, 1..=65535, "port") {
                        let p16 = p.value as u16;
                        if out.contains(&p16) {
                            c.fail(p, format!("port {p16} is listed twice"));
                        } else {
                            out.push(p16);
                        }
                    }
                }
                if ports.value.is_empty() {
                    c.fail(
                        ports,
                        "`ports:` is empty: a firewall-mark service needs the ports it groups"
                            .into(),
                    );
                }
                out
            };
            let (fwmark, ports) = match (&e.port, &e.fwmark, &e.ports) {
                (Some(p), None, None) => {
                    if !in_range(self, p, 1..=65535, "port") {
                        continue;
                    }
                    (None, vec![p.value as u16])
                }
                (None, Some(m), Some(ports)) => {
                    if !in_range(self, m, 1..=i64::from(u32::MAX), "fwmark") {
                        continue;
                    }
                    (Some(m.value), ports_of(self, ports))
                }
                (None, Some(m), None) => {
                    self.fail(m, format!("fwmark {} needs `ports: [..]`: the ports of the VIP whose packets get the mark", m.value));
                    continue;
                }
                (Some(p), Some(_), _) | (Some(p), None, Some(_)) => {
                    self.fail(
                        p,
                        "a service has either `port:` or `fwmark:` with `ports:`, not both".into(),
                    );
                    continue;
                }
                (None, None, _) => {
                    self.fail(
                        entry,
                        "a service needs `port:` (or `fwmark:` with `ports:`)".into(),
                    );
                    continue;
                }
            };
            let Some(&first) = ports.first() else {
                continue;
            };
            let members: Vec<&RealServer> = match &e.real_servers {
                None => everyone.clone(),
                Some(names) => {
                    if names.value.is_empty() {
                        self.fail(
                            names,
                            "`real_servers:` is empty: a service needs at least one".into(),
                        );
                    }
                    let mut members = Vec::new();
                    for n in &names.value {
                        match real_servers.iter().find(|r| r.name == n.value) {
                            Some(r) => members.push(r),
                            None => {
                                let all: Vec<&str> =
                                    real_servers.iter().map(|r| r.name.as_str()).collect();
                                self.fail(
                                    n,
                                    format!(
                                        "`{}` is not in the `{}` group ({})",
                                        n.value,
                                        names::REAL_SERVERS,
                                        all.join(", ")
                                    ),
                                );
                            }
                        }
                    }
                    members
                }
            };
            let mut new = service(
                first,
                ports,
                fwmark,
                protocol,
                (scheduler, flags),
                (persistence, sorry),
                &members,
            );
            let own = FailureKeys {
                inhibit_on_failure: e.inhibit_on_failure.as_ref(),
                sorry_server_inhibit: e.sorry_server_inhibit.as_ref(),
                alpha: e.alpha.as_ref(),
                quorum: e.quorum.as_ref(),
                hysteresis: e.hysteresis.as_ref(),
            };
            new.on_failure = self.on_failure(&lvs_failure, &own, &new);
            if let Some(t) = e.tls.as_ref().filter(|t| t.value) {
                new.tls = self.tls_allowed(t, &new, out.is_empty());
            }
            // Two services may not take the same packets: IPVS looks a packet's mark up first,
            // so a port under a mark never reaches a service of its own.
            for old in &out {
                let clash = if new.fwmark.is_some() && new.fwmark == old.fwmark {
                    Some(format!(
                        "fwmark {} is already a service",
                        old.fwmark.unwrap_or(0)
                    ))
                } else {
                    new.ports
                        .iter()
                        .find(|p| old.protocol == new.protocol && old.ports.contains(p))
                        .map(|p| {
                            format!(
                                "{} port {p} is already taken by the service {}",
                                new.protocol,
                                old.name()
                            )
                        })
                };
                if let Some(why) = clash {
                    self.fail(entry, format!("{why}: a packet can go to one service only"));
                }
            }
            out.push(new);
        }
        out
    }

    /// `persistence_timeout` (seconds, at least 1) and `persistence_granularity` (a netmask).
    /// Whether `service` may be served with TLS (`tls: true` at `at`): not the first service
    /// (verify's shares, the drills' load and the web servers' own check ask it over plain
    /// HTTP), not UDP, not on the web servers' default site's port.
    fn tls_allowed(&mut self, at: &Spanned<bool>, service: &VirtualService, first: bool) -> bool {
        let why = if first {
            Some("the first service is the one verify's shares, the drills' load and the web servers' own check ask over plain HTTP: list a plain service first, the TLS one after it".to_string())
        } else if service.protocol == lvs::Protocol::Udp {
            Some("TLS is over TCP: this service is udp".to_string())
        } else if service.ports.contains(&lvs::web::DEFAULT_PORT) {
            Some(format!(
                "port {} is the web servers' plain default site: give the TLS service another port (443, 8443)",
                lvs::web::DEFAULT_PORT
            ))
        } else {
            None
        };
        match why {
            Some(why) => {
                self.fail(at, format!("tls on {}: {why}", service.name()));
                false
            }
            None => true,
        }
    }

    /// A scheduler's flags as given (at `lvs` or in a service), each checked against the
    /// scheduler that uses them.
    fn scheduler_flags(
        &mut self,
        given: Option<&Spanned<Vec<Spanned<lvs::SchedFlag>>>>,
        scheduler: lvs::Scheduler,
    ) -> Vec<lvs::SchedFlag> {
        let mut out: Vec<lvs::SchedFlag> = Vec::new();
        for f in given.map(|g| g.value.as_slice()).unwrap_or_default() {
            let flag = f.value;
            if flag.scheduler() != scheduler {
                let own = scheduler.flags();
                self.fail(
                    f,
                    format!(
                        "`{flag}` is a flag of the `{}` scheduler, and this service schedules with `{scheduler}` ({})",
                        flag.scheduler(),
                        if own.is_empty() {
                            "which takes no flags".to_string()
                        } else {
                            format!("whose flags are {}", lvs::SchedFlag::list(own))
                        }
                    ),
                );
            } else if out.contains(&flag) {
                self.fail(f, format!("`{flag}` is listed twice"));
            } else {
                out.push(flag);
            }
        }
        out.sort();
        out
    }

    fn persistence(
        &mut self,
        timeout: Option<&Spanned<u32>>,
        granularity: Option<&Spanned<String>>,
    ) -> Option<lvs::Persistence> {
        let mask = granularity.and_then(|g| match g.value.parse::<std::net::Ipv4Addr>() {
            Ok(m) if u32::from(m).leading_ones() + u32::from(m).trailing_zeros() == 32 => Some(m),
            _ => {
                self.fail(
                    g,
                    format!(
                        "persistence_granularity `{}`: write a netmask such as 255.255.255.0",
                        g.value
                    ),
                );
                None
            }
        });
        let Some(t) = timeout else {
            if let Some(g) = granularity {
                self.fail(
                    g,
                    "persistence_granularity without persistence_timeout: give the timeout too"
                        .into(),
                );
            }
            return None;
        };
        if !in_range(self, t, 1..=2_678_400, "persistence_timeout") {
            return None;
        }
        Some(lvs::Persistence {
            timeout: t.value,
            granularity: mask.filter(|m| *m != lvs::Persistence::ONE_ADDRESS),
        })
    }

    /// Where `host` is listed in `group` (for errors about its role).
    pub(super) fn member_location(
        &self,
        file: &InventoryFile,
        group: &str,
        host: &str,
    ) -> Location {
        file.groups
            .get(group)
            .and_then(|g| g.value.hosts.iter().find(|m| m.value == host))
            .map(|m| m.referenced)
            .unwrap_or(Location::UNKNOWN)
    }

    pub(super) fn directors(&mut self, file: &InventoryFile, inv: &Inventory) -> Vec<Director> {
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
            let web = self.web_server(inv, host, entry);
            out.push(Director {
                web,
                name: host.name.clone(),
                address: host.address,
                interface: interface.value.clone(),
                inside_interface: e.inside_interface.as_ref().map(|i| i.value.clone()),
                vrrp: e.vrrp.as_ref().map(|v| VrrpRole {
                    state: v.state.value,
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

    /// `track_script`: each a command keepalived.conf can hold in double quotes, run from an
    /// absolute path (script security runs nothing else), with its numbers in keepalived's
    /// ranges; names given or `check_N`, each once.
    fn track_scripts(
        &mut self,
        list: Option<&Spanned<Vec<Spanned<super::model::TrackScriptEntry>>>>,
    ) -> Vec<lvs::TrackScript> {
        let Some(list) = list else { return Vec::new() };
        let mut out: Vec<lvs::TrackScript> = Vec::new();
        for (i, entry) in list.value.iter().enumerate() {
            let e = &entry.value;
            let name = match &e.name {
                Some(n) if names::valid_identifier(&n.value) => n.value.clone(),
                Some(n) => {
                    self.fail(
                        n,
                        format!(
                            "`{}` is not a script name: letters, digits, `_` and `-`",
                            n.value.escape_debug()
                        ),
                    );
                    continue;
                }
                None => format!("check_{}", i + 1),
            };
            if out.iter().any(|t| t.name == name) {
                self.fail(entry, format!("a second track_script named `{name}`"));
                continue;
            }
            let script = e.script.value.trim();
            if !lvs::script_command_ok(script) {
                self.fail(
                    &e.script,
                    format!(
                        "track_script `{}`: write the command with its absolute path first (keepalived's script security runs nothing else), without `\"`, `\\` or a new line",
                        script.escape_debug()
                    ),
                );
                continue;
            }
            let mut number = |v: &Option<Spanned<u32>>,
                              default: u32,
                              range: std::ops::RangeInclusive<i64>,
                              what: &str| {
                match v {
                    Some(v) if in_range(self, v, range, what) => v.value,
                    _ => default,
                }
            };
            let interval = number(&e.interval, 2, 1..=3600, "interval");
            let timeout = number(&e.timeout, interval, 1..=3600, "timeout");
            let fall = number(&e.fall, 1, 1..=1000, "fall");
            let rise = number(&e.rise, 1, 1..=1000, "rise");
            let weight = match &e.weight {
                Some(w) if in_range(self, w, -253..=253, "weight") => w.value as i32,
                _ => 0,
            };
            out.push(lvs::TrackScript {
                name,
                script: script.to_string(),
                interval,
                timeout,
                weight,
                fall,
                rise,
            });
        }
        out
    }

    /// `track_interface`: interface names (each a word keepalived.conf reads as one).
    fn tracked_interfaces(&mut self, list: Option<&Spanned<Vec<Spanned<String>>>>) -> Vec<String> {
        let mut out = Vec::new();
        for name in list.map(|l| l.value.as_slice()).unwrap_or_default() {
            if names::valid_interface(&name.value) {
                out.push(name.value.clone());
            } else {
                self.fail(
                    name,
                    format!(
                        "`{}` is not an interface name (letters, digits and _.-@, at most {} bytes)",
                        name.value,
                        names::IFNAMSIZ_MAX
                    ),
                );
            }
        }
        out
    }

    pub(super) fn real_servers(
        &mut self,
        file: &InventoryFile,
        inv: &Inventory,
    ) -> Vec<RealServer> {
        let mut out = Vec::new();
        let members = inv.group_members(names::REAL_SERVERS).unwrap_or_default();
        for (name, entry) in &file.hosts.value {
            if let Some(drained) = &entry.value.drained
                && !members.iter().any(|h| &h.name == name)
            {
                self.fail(
                    drained,
                    format!(
                        "`drained` is for real servers: `{name}` is not in the `{}` group",
                        names::REAL_SERVERS
                    ),
                );
            }
        }
        for host in members {
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
            let web = self.web_server(inv, host, entry);
            let weight = e
                .weight
                .as_ref()
                .map(|w| u16::try_from(w.value).unwrap_or(lvs::DEFAULT_WEIGHT));
            let drained = e.drained.as_ref().is_some_and(|d| d.value);
            out.push(RealServer {
                name: host.name.clone(),
                address: host.address,
                interface: interface.value.clone(),
                weight: if drained {
                    0
                } else {
                    lvs::effective_weight(weight)
                },
                drained,
                web,
            });
        }
        out
    }

    /// `lvs.ipvs_settings`: each given value in its range, as the sysctl it sets.
    fn ipvs_settings(
        &mut self,
        given: Option<&Spanned<super::model::IpvsSettings>>,
    ) -> Vec<lvs::Sysctl> {
        let Some(g) = given else { return Vec::new() };
        let g = &g.value;
        let values = [
            &g.conn_reuse_mode,
            &g.expire_nodest_conn,
            &g.expire_quiescent_template,
            &g.sloppy_tcp,
        ];
        let mut out = Vec::new();
        for ((name, range), value) in lvs::IPVS_SETTINGS.iter().zip(values) {
            if let Some(v) = value
                && in_range(self, v, range.clone(), name)
            {
                out.push(lvs::Sysctl {
                    key: lvs::ipvs_sysctl(name),
                    value: v.value.to_string(),
                });
            }
        }
        out
    }

    /// The web server a host runs for lvslab (`vars.web_server`).
    fn web_server(
        &mut self,
        inv: &Inventory,
        host: &Host,
        entry: &Spanned<super::model::HostEntry>,
    ) -> web::WebServer {
        let vars = inv.host_vars(host);
        match vars.get(web::VARIABLE) {
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
        }
    }

    /// `sorry_server`: `local` (each director itself) or `ADDRESS:PORT`, not the VIP.
    fn sorry_server(
        &mut self,
        given: Option<&Spanned<String>>,
        vip: IpAddr,
    ) -> Option<lvs::SorryServer> {
        let g = given?;
        if g.value == "local" {
            return Some(lvs::SorryServer::Local);
        }
        match g.value.parse::<lvs::Endpoint>() {
            Ok(e) if e.address == vip => {
                self.fail(g, format!("sorry_server {e} is the VIP itself: name another host, or `local` for each director's own web server"));
                None
            }
            Ok(e) if e.address.is_ipv6() || e.port == 0 => {
                self.fail(
                    g,
                    format!("sorry_server {e}: an IPv4 address and a port above 0"),
                );
                None
            }
            Ok(e) => Some(lvs::SorryServer::At(e)),
            Err(_) => {
                self.fail(g, format!("sorry_server `{}`: write `local` (each director's own web server) or ADDRESS:PORT", g.value));
                None
            }
        }
    }

    /// Directors, real servers and clients take part in an IPv4 setup.
    pub(super) fn addresses_are_ipv4(&mut self, file: &InventoryFile, inv: &Inventory) {
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

    pub(super) fn health_check(
        &mut self,
        settings: Option<&Spanned<HealthCheckSettings>>,
        forwarding: Forwarding,
    ) -> HealthCheck {
        let mut hc = HealthCheck::default();
        let Some(spanned) = settings else { return hc };
        let s = &spanned.value;
        if let Some(via) = &s.via_vip {
            if via.value && forwarding == Forwarding::Nat {
                self.fail(
                    via,
                    "via_vip is for DR and TUN, where a real server must hold the VIP itself: with NAT the director rewrites the VIP to the real server's own address, which the plain check already asks".into(),
                );
            } else {
                hc.via_vip = via.value;
            }
        }
        if let Some(kind) = &s.kind {
            hc.kind = kind.value;
        }
        if hc.kind != lvs::CheckKind::Http {
            let unused = format!(
                "with `type: {}` ({}) `path` and `status_code` are not used",
                hc.kind.word(),
                hc.kind.keepalived_name()
            );
            if let Some(p) = &s.path {
                self.warn(p, unused.clone());
            }
            if let Some(c) = &s.status_code {
                self.warn(c, unused);
            }
        }
        match (&s.script, hc.kind) {
            (Some(script), lvs::CheckKind::Misc) => {
                let braces = script.value.replace("{address}", "").replace("{port}", "");
                if !lvs::script_command_ok(&script.value) {
                    self.fail(
                        script,
                        format!(
                            "script `{}`: write the command with its absolute path first (keepalived's script security runs nothing else), without `\"`, `\\` or a new line",
                            script.value.escape_debug()
                        ),
                    );
                } else if braces.contains(['{', '}']) {
                    self.fail(
                        script,
                        "script: `{address}` and `{port}` are the only words in braces (the real server's address and the port its check asks)".into(),
                    );
                } else {
                    hc.script = Some(script.value.trim().to_string());
                }
            }
            (Some(script), _) => self.warn(
                script,
                "`script` is for `type: misc` (MISC_CHECK): this check does not run it".into(),
            ),
            (None, lvs::CheckKind::Misc) => {
                let at = s.kind.as_ref().map_or(spanned.referenced, |k| k.referenced);
                self.fail_at(
                    &at,
                    "`type: misc` needs `script:`, the command keepalived runs for each real server, e.g. `/usr/bin/curl -sf -o /dev/null --max-time 2 http://{address}:{port}/health`".into(),
                );
            }
            (None, _) => {}
        }
        if let Some(via) = &s.via_vip
            && hc.via_vip
            && hc.kind == lvs::CheckKind::Misc
        {
            self.fail(
                via,
                "via_vip marks the checker's own connections, and a MISC_CHECK script makes its own: use `type: http` or `type: tcp` with it".into(),
            );
            hc.via_vip = false;
        }
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
    pub(super) fn nat(
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
}

/// The keys of [`lvs::OnFailure`] as an inventory level gives them (a service's own, or the
/// `lvs:` level's defaults).
#[derive(Default)]
struct FailureKeys<'a> {
    inhibit_on_failure: Option<&'a Spanned<bool>>,
    sorry_server_inhibit: Option<&'a Spanned<bool>>,
    alpha: Option<&'a Spanned<bool>>,
    quorum: Option<&'a Spanned<u32>>,
    hysteresis: Option<&'a Spanned<u32>>,
}

#[cfg(test)]
mod tests {
    use super::super::load::tests::{GOOD, check, error_of};
    use crate::lvs;
    use std::net::IpAddr;

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

    /// The pair's VRRP settings: each out of keepalived's range refused at its key; nopreempt
    /// starts every director BACKUP and says so at the MASTER's `state`; warnings for what
    /// would do nothing.
    #[test]
    fn the_pair_s_vrrp_settings_are_checked_where_they_are() {
        let with = |extra: &str| {
            GOOD.replace(
                "auth_pass: \"pw1111ab\" }",
                &format!("auth_pass: \"pw1111ab\", {extra} }}"),
            )
        };
        let (inv, warnings) = check(&with(
            "unicast: true, preempt: false, notify: true, garp_master_refresh: 60",
        ))
        .unwrap();
        let lvs = inv.lvs.unwrap();
        let v = lvs.vrrp.as_ref().unwrap();
        assert!(v.unicast && !v.preempt && v.notify && v.garp.master_refresh == Some(60));
        assert!(
            lvs.directors
                .iter()
                .all(|d| d.vrrp.as_ref().unwrap().state == lvs::VrrpState::Backup),
            "nopreempt: every director starts BACKUP"
        );
        assert_eq!(
            lvs.unicast_peers(&lvs.directors[0]),
            ["10.0.0.14".parse::<IpAddr>().unwrap()]
        );
        assert_eq!(lvs.expected_master().unwrap().name, "d1");
        assert!(!lvs.preempts());
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].starts_with("inv.yml:5:") && warnings[0].contains("`d1` starts as BACKUP"),
            "{warnings:?}"
        );
        // A preempt_delay also starts every director BACKUP; with nopreempt it does nothing.
        let (inv, _) = check(&with("preempt_delay: 30")).unwrap();
        let lvs = inv.lvs.unwrap();
        assert_eq!(lvs.vrrp.as_ref().unwrap().preempt_delay, 30);
        assert!(lvs.preempts());
        assert_eq!(
            lvs.directors[0].vrrp.as_ref().unwrap().state,
            lvs::VrrpState::Backup
        );
        let (_, warnings) = check(&with("preempt: false, preempt_delay: 30")).unwrap();
        assert!(
            warnings.iter().any(|w| w.starts_with("inv.yml:3:")
                && w.contains("preempt_delay does nothing with `preempt: false`")),
            "{warnings:?}"
        );
        for (extra, message) in [
            (
                "preempt_delay: 1001",
                "preempt_delay 1001 is outside 0-1000",
            ),
            (
                "garp_master_repeat: 0",
                "garp_master_repeat 0 is outside 1-255",
            ),
            (
                "garp_master_delay: 5000",
                "garp_master_delay 5000 is outside 0-1000",
            ),
            (
                "garp_master_refresh_repeat: 300",
                "garp_master_refresh_repeat 300 is outside 1-255",
            ),
        ] {
            let e = check(&with(extra)).expect_err(extra);
            assert!(
                e.place.starts_with("inv.yml:3:") && e.message.contains(message),
                "{extra}: {} {}",
                e.place,
                e.message
            );
        }
        let (inv, _) = check(&with("track_interface: [eth1, bond0.100]")).unwrap();
        assert_eq!(
            inv.lvs.unwrap().vrrp.unwrap().track_interface,
            ["eth1", "bond0.100"]
        );
        let e = check(&with("track_interface: [eth1, \"eth1 }\"]")).expect_err("not a name");
        assert!(
            e.place.starts_with("inv.yml:3:")
                && e.message.contains("`eth1 }` is not an interface name"),
            "{} {}",
            e.place,
            e.message
        );
        let e = check(&with("unicast: yes please")).expect_err("not a boolean");
        assert!(e.place.starts_with("inv.yml:3:"), "{}", e.place);
        let e = check(&with("notifi: true")).expect_err("unknown key");
        assert!(e.message.contains("notify"), "{}", e.message);
    }

    #[test]
    fn tracked_scripts_are_checked_at_their_keys() {
        let with = |list: &str| {
            GOOD.replace(
                "auth_pass: \"pw1111ab\" }",
                &format!("auth_pass: \"pw1111ab\", track_script: [{list}] }}"),
            )
        };
        let (inv, _) = check(&with(
            "{ script: /usr/bin/pgrep -x sshd }, { name: up-link, script: /bin/ping -c1 10.0.0.1, weight: -60, fall: 3, interval: 5 }",
        ))
        .unwrap();
        let scripts = inv.lvs.unwrap().vrrp.unwrap().track_script;
        assert_eq!(scripts[0].name, "check_1");
        assert_eq!(
            (scripts[0].interval, scripts[0].timeout, scripts[0].weight),
            (2, 2, 0)
        );
        assert_eq!(
            scripts[0].effect(),
            "FAULT, giving up the VIP, when it fails"
        );
        assert_eq!(
            (scripts[1].name.as_str(), scripts[1].timeout),
            ("up-link", 5)
        );
        assert_eq!(
            scripts[1].effect(),
            "priority -60 after 3 failures in a row"
        );
        for (list, says) in [
            ("{ script: pgrep sshd }", "absolute path first"),
            ("{ script: \"/bin/sh -c \\\"x\\\"\" }", "without `\"`"),
            ("{ name: \"a b\", script: /bin/true }", "not a script name"),
            (
                "{ name: x, script: /bin/true }, { name: x, script: /bin/false }",
                "a second track_script named `x`",
            ),
            (
                "{ script: /bin/true, weight: 300 }",
                "weight 300 is outside -253-253",
            ),
            ("{ script: /bin/true, fall: 0 }", "fall 0 is outside 1-1000"),
            ("{ script: /bin/true, every: 2 }", "every"),
        ] {
            let e = check(&with(list)).expect_err(list);
            assert!(e.message.contains(says), "{list}: {}", e.message);
            assert!(e.place.starts_with("inv.yml:3:"), "{list}: {}", e.place);
        }
    }

    /// `via_vip`: a path service per real server (marks 10001, ...), none without it; refused
    /// with NAT, and when a service's own mark is one of them, each at the key.
    #[test]
    fn checks_through_the_vip_get_a_mark_per_real_server_and_refuse_what_cannot_work() {
        let two = GOOD
            .replace(
                "  r1: { address: 10.0.0.12, interface: eth0, weight: 2 }",
                "  r1: { address: 10.0.0.12, interface: eth0, weight: 2 }\n  r2: { address: 10.0.0.13, interface: eth0 }",
            )
            .replace("hosts: [r1] }", "hosts: [r1, r2] }");
        let via = two.replace(
            "  vrrp: { virtual_router_id",
            "  health_check: { via_vip: true }\n  vrrp: { virtual_router_id",
        );
        let (inv, _) = check(&via).unwrap();
        let lvs = inv.lvs.unwrap();
        let paths = lvs.path_services();
        assert_eq!(paths.len(), lvs.real_servers.len());
        assert_eq!(paths[0].name(), "fwmark 10001 (tcp 10.0.0.100:80)");
        assert_eq!(
            paths[1].real_servers[0].address,
            lvs.real_servers[1].address
        );
        assert_eq!(paths[1].real_servers[0].weight, 1);
        let (plain, _) = check(&two).unwrap();
        assert!(plain.lvs.unwrap().path_services().is_empty());

        let nat = via.replace("  vip: 10.0.0.100", "  vip: 10.0.0.100\n  forwarding: nat");
        let e = check(&nat).expect_err("via_vip with NAT");
        assert!(
            e.message.contains("via_vip is for DR and TUN"),
            "{}",
            e.message
        );
        let clash = via.replace(
            "  vip: 10.0.0.100",
            "  vip: 10.0.0.100\n  services:\n    - { port: 80 }\n    - { fwmark: 10002, ports: [81] }",
        );
        let e = check(&clash).expect_err("a service's mark is a path check's");
        assert!(
            e.message.contains("a service has fwmark 10002") && e.place.starts_with("inv.yml:6:"),
            "{} at {}",
            e.message,
            e.place
        );
    }

    /// `type: misc` needs a script (named at `type:`), whose command is checked at its key
    /// (absolute program, no quote, only `{address}` and `{port}` in braces); a script beside
    /// another type draws a warning; via_vip is refused with it.
    #[test]
    fn a_misc_check_needs_a_script_keepalived_can_run() {
        let with = |hc: &str| {
            GOOD.replace(
                "  vrrp: { virtual_router_id",
                &format!("  health_check: {hc}\n  vrrp: {{ virtual_router_id"),
            )
        };
        let (inv, warnings) = check(&with(
            "{ type: misc, script: \"/usr/bin/curl -sf http://{address}:{port}/\" }",
        ))
        .unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        let hc = inv.lvs.unwrap().health_check;
        assert_eq!(
            hc.script_for("10.0.0.12".parse().unwrap(), 80).as_deref(),
            Some("/usr/bin/curl -sf http://10.0.0.12:80/")
        );
        for (hc, says) in [
            ("{ type: misc }", "`type: misc` needs `script:`"),
            (
                "{ type: misc, script: \"curl http://{address}/\" }",
                "absolute path first",
            ),
            (
                "{ type: misc, script: \"/bin/sh -c \\\"x\\\"\" }",
                "absolute path first",
            ),
            (
                "{ type: misc, script: \"/bin/check {host}\" }",
                "the only words in braces",
            ),
            (
                "{ type: misc, script: /bin/true, via_vip: true }",
                "a MISC_CHECK script makes its own",
            ),
        ] {
            let e = check(&with(hc)).expect_err(hc);
            assert!(e.message.contains(says), "{hc}: {}", e.message);
            assert!(e.place.starts_with("inv.yml:3:"), "{hc}: {}", e.place);
        }
        let (_, warnings) = check(&with("{ type: tcp, script: /bin/true }")).unwrap();
        assert!(
            warnings.len() == 1 && warnings[0].contains("`script` is for `type: misc`"),
            "{warnings:?}"
        );
    }

    #[test]
    fn a_tcp_check_is_taken_and_http_only_keys_draw_a_warning() {
        let tcp = GOOD.replace(
            "  vrrp: { virtual_router_id",
            "  health_check: { type: tcp, path: /health }\n  vrrp: { virtual_router_id",
        );
        let (inv, warnings) = check(&tcp).unwrap();
        assert_eq!(inv.lvs.unwrap().health_check.kind, lvs::CheckKind::Tcp);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].starts_with("inv.yml:3:")
                && warnings[0].contains("`path` and `status_code` are not used"),
            "{warnings:?}"
        );
        let e = check(&tcp.replace("type: tcp", "type: tpc")).expect_err("no such checker");
        assert!(e.message.contains("tpc"), "{}", e.message);
    }

    #[test]
    fn a_drained_real_server_has_weight_zero_and_keeps_its_own() {
        let drained = GOOD.replace("weight: 2 }", "weight: 2, drained: true }");
        let inv = check(&drained).unwrap().0;
        let lvs = inv.lvs.unwrap();
        assert!(lvs.real_servers[0].drained);
        assert_eq!(lvs.real_servers[0].weight, 0);
        assert_eq!(lvs.service().real_servers[0].weight, 0);
        let back = GOOD.replace("weight: 2 }", "weight: 2, drained: false }");
        assert_eq!(
            check(&back).unwrap().0.lvs.unwrap().real_servers[0].weight,
            2
        );
        // Only a real server can be drained: the error is at the key.
        let director = GOOD.replace("priority: 50 } }", "priority: 50 }, drained: true }");
        let e = check(&director).expect_err("a drained director");
        assert!(
            e.message
                .contains("`drained` is for real servers: `d2` is not in the `real_servers` group"),
            "{}",
            e.message
        );
        assert!(e.place.starts_with("inv.yml:6:"), "{}", e.place);
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

    /// `GOOD` with a second real server and `services:` in place of the short form.
    fn with_services(services: &str) -> String {
        GOOD.replace(
            "  vrrp: { virtual_router_id: 51",
            &format!("  services:\n{services}  vrrp: {{ virtual_router_id: 51"),
        )
        .replace("  r1: { address: 10.0.0.12, interface: eth0, weight: 2 }\n", "  r1: { address: 10.0.0.12, interface: eth0, weight: 2 }\n  r2: { address: 10.0.0.13, interface: eth0 }\n")
        .replace("hosts: [r1]", "hosts: [r1, r2]")
    }

    /// sh's and mh's flags: the load balancer's go with its scheduler (a service with another
    /// scheduler does not get them), a service's own win; one of another scheduler, or one
    /// listed twice, is refused at the flag.
    #[test]
    fn scheduler_flags_belong_to_their_scheduler() {
        let yaml = with_services(
            "    - { port: 80 }\n    - { port: 8080, scheduler: rr }\n    - { port: 8081, scheduler: mh, scheduler_flags: [mh-port, mh-fallback] }\n",
        )
        .replace(
            "  services:\n",
            "  scheduler: sh\n  scheduler_flags: [sh-port]\n  services:\n",
        );
        let (inv, warnings) = check(&yaml).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        let lvs = inv.lvs.unwrap();
        let schedulings: Vec<String> = lvs
            .services
            .iter()
            .map(|s| s.desired().scheduling())
            .collect();
        assert_eq!(
            schedulings,
            ["sh (sh-port)", "rr", "mh (mh-fallback,mh-port)"]
        );
        let e = error_of(&with_services(
            "    - { port: 80, scheduler: rr, scheduler_flags: [sh-port] }\n",
        ));
        assert!(
            e.contains("inv.yml:4:52")
                && e.contains("`sh-port` is a flag of the `sh` scheduler, and this service schedules with `rr` (which takes no flags)"),
            "{e}"
        );
        let e = error_of(&with_services(
            "    - { port: 80, scheduler: mh, scheduler_flags: [mh-port, sh-fallback] }\n",
        ));
        assert!(e.contains("whose flags are mh-fallback,mh-port"), "{e}");
        let e = error_of(&with_services(
            "    - { port: 80, scheduler: sh, scheduler_flags: [sh-port, sh-port] }\n",
        ));
        assert!(e.contains("`sh-port` is listed twice"), "{e}");
        let e = error_of(&with_services(
            "    - { port: 80, scheduler: sh, scheduler_flags: [sh_port] }\n",
        ));
        assert!(e.contains("inv.yml:4:") && e.contains("sh-port"), "{e}");
    }

    /// `tls: true` on a TCP service after the first, off the web servers' plain port; its
    /// ports are the web servers' TLS ports, and its URLs https.
    #[test]
    fn tls_services_are_checked_where_they_are() {
        let (inv, _) = check(&with_services(
            "    - { port: 80 }\n    - { port: 8443, tls: true }\n",
        ))
        .unwrap();
        let lvs = inv.lvs.unwrap();
        assert!(!lvs.services[0].tls && lvs.services[1].tls);
        assert_eq!(lvs.tls_ports(), [8443]);
        assert_eq!(lvs.services[1].urls(), ["https://10.0.0.100:8443/"]);
        for (services, why) in [
            (
                "    - { port: 8443, tls: true }\n    - { port: 80 }\n",
                "the first service",
            ),
            (
                "    - { port: 81 }\n    - { port: 80, tls: true }\n",
                "port 80 is the web servers' plain default site",
            ),
            (
                "    - { port: 80 }\n    - { port: 53, protocol: udp, tls: true }\n",
                "TLS is over TCP",
            ),
        ] {
            let e = error_of(&with_services(services));
            assert!(
                e.contains("inv.yml:") && e.contains("tls on ") && e.contains(why),
                "{e}"
            );
        }
    }

    /// `sorry_server_inhibit` needs a sorry server to keep.
    #[test]
    fn sorry_server_inhibit_keeps_a_sorry_server() {
        let (inv, _) = check(&with_services(
            "    - { port: 80, sorry_server: local, sorry_server_inhibit: true }\n    - { port: 8080 }\n",
        ))
        .unwrap();
        let lvs = inv.lvs.unwrap();
        assert!(lvs.services[0].on_failure.sorry_server_inhibit);
        assert!(!lvs.services[1].on_failure.sorry_server_inhibit);
        let e = error_of(&with_services(
            "    - { port: 80, sorry_server_inhibit: true }\n",
        ));
        assert!(
            e.contains("inv.yml:4:")
                && e.contains("sorry_server_inhibit on tcp 10.0.0.100:80 without a sorry_server"),
            "{e}"
        );
    }

    #[test]
    fn several_services_each_with_its_scheduling_and_members() {
        let yaml = with_services(
            "    - { port: 80 }\n    - { port: 8080, scheduler: wlc, persistence_timeout: 300, persistence_granularity: 255.255.255.0, real_servers: [r2], sorry_server: \"10.0.0.50:8080\" }\n    - { fwmark: 1, ports: [8082, 8081], persistence_timeout: 60 }\n",
        )
        .replace("  services:\n", "  sorry_server: local\n  services:\n");
        let (inv, warnings) = check(&yaml).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        let lvs = inv.lvs.unwrap();
        let names: Vec<String> = lvs.services.iter().map(|s| s.name()).collect();
        assert_eq!(
            names,
            [
                "tcp 10.0.0.100:80",
                "tcp 10.0.0.100:8080",
                "fwmark 1 (tcp 10.0.0.100:8082,8081)"
            ]
        );
        let web = &lvs.services[1];
        assert_eq!(
            web.desired().scheduling(),
            "wlc persistent 300 s per 255.255.255.0"
        );
        assert_eq!(web.real_servers.len(), 1);
        assert_eq!(web.real_servers[0].endpoint().to_string(), "10.0.0.13:8080");
        let marked = &lvs.services[2];
        assert_eq!(marked.key().to_string(), "fwmark 1");
        // Its real servers have no port; the first port is the one the checks ask; the mark
        // covers both.
        assert_eq!(marked.real_servers[0].endpoint().to_string(), "10.0.0.12:0");
        assert_eq!(
            marked
                .check_endpoint(marked.real_servers[0].address)
                .to_string(),
            "10.0.0.12:8082"
        );
        assert_eq!(
            lvs.marks()[0].to_string(),
            "ip daddr 10.0.0.100 tcp dport { 8081, 8082 } meta mark set 1"
        );
        assert_eq!(lvs.ports(), [80, 8080, 8081, 8082]);
        // sorry_server at the top is every service's default; a service can name its own.
        use crate::lvs::SorryServer;
        assert_eq!(lvs.services[0].sorry_server, Some(SorryServer::Local));
        let d1: std::net::IpAddr = "10.0.0.11".parse().unwrap();
        let sorry = |i: usize| lvs.services[i].sorry_endpoint(d1).map(|e| e.to_string());
        assert_eq!(sorry(1), Some("10.0.0.50:8080".into()));
        // A local sorry server is each director's own address, on the service's port.
        assert_eq!(sorry(2), Some("10.0.0.11:8082".into()));
        let d = lvs.host_values("d1", "debian");
        assert_eq!(
            d["director"]["sorry"],
            serde_json::json!(["10.0.0.11 80", "10.0.0.50 8080", "10.0.0.11 8082"])
        );
        assert_eq!(d["web_host"]["ports"], serde_json::json!([8081, 8082]));
        let values = lvs.host_values("r1", "debian");
        assert_eq!(
            values["web_host"]["ports"],
            serde_json::json!([8080, 8081, 8082])
        );
    }

    /// inhibit_on_failure, alpha, quorum and hysteresis: the `lvs:` level's are every
    /// service's default, a service's own win; a quorum that cannot do what it says draws a
    /// warning at its key, a hysteresis not below it is refused.
    #[test]
    fn what_keepalived_does_on_failure_is_per_service_with_defaults() {
        let yaml = with_services(
            "    - { port: 80, quorum: 2, hysteresis: 1, sorry_server: local }\n    - { port: 8080, inhibit_on_failure: false }\n",
        )
        .replace("  services:\n", "  inhibit_on_failure: true\n  alpha: true\n  services:\n");
        let (inv, warnings) = check(&yaml).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        let lvs = inv.lvs.unwrap();
        let (a, b) = (lvs.services[0].on_failure, lvs.services[1].on_failure);
        assert!(a.inhibit_on_failure && a.alpha, "{a:?}");
        assert_eq!((a.quorum, a.hysteresis), (Some(2), Some(1)));
        assert!(
            !b.inhibit_on_failure && b.alpha && b.quorum.is_none(),
            "{b:?}"
        );

        // r1 weighs 2 and r2 1: quorum 4 is above the total; without a sorry server it does
        // nothing.
        let (_, warnings) = check(&with_services("    - { port: 80, quorum: 4 }\n")).unwrap();
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(
            warnings[0].contains("quorum 4 is above tcp 10.0.0.100:80's total weight 3")
                && warnings[1].contains("without a sorry_server"),
            "{warnings:?}"
        );
        let e = check(&with_services(
            "    - { port: 80, quorum: 2, hysteresis: 2, sorry_server: local }\n",
        ))
        .expect_err("hysteresis not below quorum");
        assert!(
            e.message.contains("hysteresis 2 is not below quorum 2"),
            "{}",
            e.message
        );
    }

    #[test]
    fn services_that_would_take_each_others_packets_or_lack_a_port_are_refused() {
        let bad = [
            (
                "    - { port: 80 }\n    - { port: 80, scheduler: wlc }\n",
                "inv.yml:5:",
                "tcp port 80 is already taken by the service tcp 10.0.0.100:80",
            ),
            (
                "    - { port: 80 }\n    - { fwmark: 2, ports: [443, 80] }\n",
                "inv.yml:5:",
                "port 80 is already taken",
            ),
            (
                "    - { fwmark: 2, ports: [80] }\n    - { fwmark: 2, ports: [81] }\n",
                "inv.yml:5:",
                "fwmark 2 is already a service",
            ),
            ("    - { fwmark: 2 }\n", "inv.yml:4:", "needs `ports: [..]`"),
            (
                "    - { fwmark: 2, ports: [] }\n",
                "inv.yml:4:",
                "`ports:` is empty",
            ),
            (
                "    - { port: 80, fwmark: 2, ports: [81] }\n",
                "inv.yml:4:",
                "either `port:` or `fwmark:`",
            ),
            ("    - { scheduler: rr }\n", "inv.yml:4:", "needs `port:`"),
            (
                "    - { port: 80, real_servers: [r9] }\n",
                "inv.yml:4:",
                "`r9` is not in the `real_servers` group (r1, r2)",
            ),
            (
                "    - { port: 80, persistence_granularity: 255.0.255.0, persistence_timeout: 5 }\n",
                "inv.yml:4:",
                "write a netmask",
            ),
            (
                "    - { port: 80, persistence_granularity: 255.255.0.0 }\n",
                "inv.yml:4:",
                "without persistence_timeout",
            ),
            (
                "    - { port: 80, persistence_timeout: 0 }\n",
                "inv.yml:4:",
                "persistence_timeout 0 is outside",
            ),
            (
                "    - { port: 80, vip: 10.0.0.101 }\n",
                "inv.yml:4:",
                "several VIPs are not supported yet",
            ),
            (
                "    - { port: 80, sorry_server: somewhere }\n",
                "inv.yml:4:",
                "write `local` (each director's own web server) or ADDRESS:PORT",
            ),
            (
                "    - { port: 80, sorry_server: \"10.0.0.100:80\" }\n",
                "inv.yml:4:",
                "is the VIP itself",
            ),
        ];
        for (services, place, what) in bad {
            let e = error_of(&with_services(services));
            assert!(
                e.contains(place) && e.contains(what),
                "want {place} {what}:\n{e}"
            );
        }
        let both = with_services("    - { port: 80 }\n")
            .replace("  vip: 10.0.0.100\n", "  vip: 10.0.0.100\n  port: 80\n");
        assert!(error_of(&both).contains("`port:` and `services:` both given"));
    }

    #[test]
    fn ipvs_settings_become_sysctls_in_their_ranges() {
        let yaml = GOOD.replace(
            "  vrrp: { virtual_router_id: 51",
            "  ipvs_settings: { conn_reuse_mode: 3, expire_nodest_conn: 1 }\n  vrrp: { virtual_router_id: 51",
        );
        let lvs = check(&yaml).unwrap().0.lvs.unwrap();
        let set: Vec<(String, String)> = lvs
            .ipvs_sysctls
            .iter()
            .map(|s| (s.key.clone(), s.value.clone()))
            .collect();
        assert_eq!(
            set,
            [
                ("net.ipv4.vs.conn_reuse_mode".to_string(), "3".to_string()),
                (
                    "net.ipv4.vs.expire_nodest_conn".to_string(),
                    "1".to_string()
                )
            ]
        );
        assert!(check(GOOD).unwrap().0.lvs.unwrap().ipvs_sysctls.is_empty());
        let e = error_of(&yaml.replace("conn_reuse_mode: 3", "conn_reuse_mode: 4"));
        assert!(
            e.contains("inv.yml:3:") && e.contains("conn_reuse_mode 4 is outside 0-3"),
            "{e}"
        );
        let e = error_of(&yaml.replace("conn_reuse_mode: 3", "conn_reuse: 3"));
        assert!(e.contains("unknown field `conn_reuse`"), "{e}");
    }

    #[test]
    fn same_priority_is_a_warning() {
        let (_, warnings) = check(&GOOD.replace("priority: 50", "priority: 100")).unwrap();
        assert!(warnings[0].contains("same VRRP priority"), "{warnings:?}");
        let (_, warnings) = check(&GOOD.replace("state: BACKUP", "state: MASTER")).unwrap();
        assert!(
            warnings[0].contains("directors `d1`, `d2` are all `state: MASTER`"),
            "{warnings:?}"
        );
    }
}
