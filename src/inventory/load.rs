//! Reading and checking an inventory file: every problem is reported with file:line:column
//! before any host is contacted.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde_saphyr::Spanned;

use super::model::{ConnectionSettings, InventoryFile};
use super::{Connection, Group, Host, HostVrrp, Inventory, Lvs, Vrrp};
use crate::diagnostic::{Source, SourceError};

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
    let src = Source::new(path, text);
    let file: InventoryFile =
        serde_saphyr::from_str(&src.text).map_err(|e| Box::new(src.yaml_error(&e)))?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    Checker {
        src: &src,
        base,
        errors: Vec::new(),
        warnings: Vec::new(),
    }
    .check(file, path)
}

struct Checker<'a> {
    src: &'a Source,
    base: PathBuf,
    errors: Vec<SourceError>,
    warnings: Vec<String>,
}

impl Checker<'_> {
    fn fail<T>(&mut self, at: &Spanned<T>, message: String) {
        self.errors.push(self.src.error_at(&at.referenced, message));
    }

    fn check(
        mut self,
        file: InventoryFile,
        path: &Path,
    ) -> Result<(Inventory, Vec<String>), Box<SourceError>> {
        if file.hosts.value.is_empty() {
            self.fail(&file.hosts, "the inventory has no hosts".into());
        }
        let defaults = ConnectionSettings::default();
        let mut hosts = Vec::new();
        for (name, entry) in &file.hosts.value {
            if !valid_name(name) {
                self.fail(
                    entry,
                    format!("host name `{name}`: use letters, digits, `-`, `_` and `.`"),
                );
            }
            let address = match entry.value.address.value.parse::<IpAddr>() {
                Ok(a) => a,
                Err(_) => {
                    let a = &entry.value.address;
                    self.fail(
                        a,
                        format!("`{}` is not an IP address (host {name})", a.value),
                    );
                    continue;
                }
            };
            if let Some(iface) = &entry.value.interface
                && !valid_interface(&iface.value)
            {
                self.fail(
                    iface,
                    format!(
                        "`{}` is not an interface name (letters, digits, `_.:@-`, at most 15)",
                        iface.value
                    ),
                );
            }
            let vrrp = entry.value.vrrp.as_ref().and_then(|v| {
                if !(1..=254).contains(&v.priority.value) {
                    self.fail(
                        &v.priority,
                        format!("VRRP priority {} is outside 1-254", v.priority.value),
                    );
                    return None;
                }
                Some(HostVrrp {
                    state: v.state,
                    priority: v.priority.value as u8,
                })
            });
            let connection = self.connection(
                &file.connection,
                &entry.value.connection,
                &defaults,
                address,
            );
            hosts.push(Host {
                name: name.clone(),
                address,
                interface: entry.value.interface.as_ref().map(|i| i.value.clone()),
                weight: entry.value.weight,
                vrrp,
                connection,
                vars: entry.value.vars.clone(),
            });
        }

        let mut groups = IndexMap::new();
        for (gname, group) in &file.groups {
            if gname == "all" {
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
        self.check_roles(&file, &hosts);
        let lvs = file.lvs.as_ref().and_then(|l| self.lvs(l, &file, &hosts));

        let mut secrets: Vec<String> = file.secrets.values().cloned().collect();
        if let Some(pass) = lvs
            .as_ref()
            .and_then(|l| l.vrrp.as_ref())
            .and_then(|v| v.auth_pass.clone())
        {
            secrets.push(pass);
        }
        let mut vars = file.vars.clone();
        for (k, v) in &file.secrets {
            vars.insert(k.clone(), serde_json::Value::String(v.clone()));
        }
        if let Some(err) = SourceError::join(self.errors) {
            return Err(Box::new(err));
        }
        Ok((
            Inventory {
                path: path.to_path_buf(),
                lvs,
                hosts,
                groups,
                vars,
                secrets,
            },
            self.warnings,
        ))
    }

    /// Directors and real servers: disjoint, with what their role needs.
    fn check_roles(&mut self, file: &InventoryFile, hosts: &[Host]) {
        let (Some(directors), Some(real_servers)) = (
            file.groups.get("directors"),
            file.groups.get("real_servers"),
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
        let mut priorities: Vec<(u8, &str)> = Vec::new();
        for d in &directors.value.hosts {
            if let Some(h) = hosts.iter().find(|h| h.name == d.value) {
                if file.lvs.as_ref().is_some_and(|l| l.vrrp.is_some()) && h.vrrp.is_none() {
                    self.fail(d, format!("director `{}` has no `vrrp: {{state, priority}}`, which keepalived needs", h.name));
                }
                if file.lvs.is_some() && h.interface.is_none() {
                    self.fail(
                        d,
                        format!("director `{}` has no `interface:` for the VIP", h.name),
                    );
                }
                if let Some(v) = &h.vrrp {
                    if let Some((_, other)) = priorities.iter().find(|(p, _)| *p == v.priority) {
                        self.warnings.push(format!(
                            "directors `{other}` and `{}` have the same VRRP priority {}: keepalived breaks the tie by the higher address",
                            h.name, v.priority
                        ));
                    }
                    priorities.push((v.priority, &h.name));
                }
            }
        }
    }

    fn lvs(
        &mut self,
        l: &super::model::LvsSettings,
        file: &InventoryFile,
        hosts: &[Host],
    ) -> Option<Lvs> {
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
        let max_prefix = if vip.is_ipv4() { 32 } else { 128 };
        if l.vip_prefix.value > max_prefix || l.vip_prefix.value == 0 {
            self.fail(
                &l.vip_prefix,
                format!(
                    "vip_prefix {} is outside 1-{max_prefix}",
                    l.vip_prefix.value
                ),
            );
        }
        if hosts.iter().any(|h| h.address == vip) {
            self.fail(&l.vip, format!("VIP {vip} is also a host's address"));
        }
        if let Some(directors) = file.groups.get("directors") {
            let dirs: Vec<&Host> = directors
                .value
                .hosts
                .iter()
                .filter_map(|d| hosts.iter().find(|h| h.name == d.value))
                .collect();
            if !dirs.is_empty()
                && !dirs
                    .iter()
                    .any(|d| same_subnet(d.address, vip, l.vip_prefix.value))
            {
                let list: Vec<String> = dirs
                    .iter()
                    .map(|d| format!("{} {}/{}", d.name, d.address, l.vip_prefix.value))
                    .collect();
                self.fail(
                    &l.vip,
                    format!(
                        "VIP {vip} is inside no director's subnet ({})",
                        list.join(", ")
                    ),
                );
            }
        }
        let vrrp = l.vrrp.as_ref().map(|v| {
            if !(1..=255).contains(&v.virtual_router_id.value) {
                self.fail(&v.virtual_router_id, format!("virtual_router_id {} is outside 1-255", v.virtual_router_id.value));
            }
            if let Some(pass) = &v.auth_pass {
                if pass.value.chars().count() > AUTH_PASS_MAX {
                    self.fail(pass, format!("auth_pass is longer than {AUTH_PASS_MAX} characters; keepalived would silently use only the first {AUTH_PASS_MAX}"));
                } else if pass.value.is_empty() {
                    self.fail(pass, "auth_pass is empty".into());
                }
            }
            Vrrp {
                virtual_router_id: v.virtual_router_id.value.clamp(1, 255) as u8,
                advert_int: v.advert_int.max(1),
                auth_pass: v.auth_pass.as_ref().map(|p| p.value.clone()),
            }
        });
        Some(Lvs {
            vip,
            vip_prefix: l.vip_prefix.value,
            port: l.port,
            protocol: l.protocol,
            scheduler: l.scheduler,
            forwarding: l.forwarding,
            vrrp,
            health_check: l.health_check.clone(),
        })
    }

    fn connection(
        &mut self,
        global: &ConnectionSettings,
        host: &ConnectionSettings,
        _defaults: &ConnectionSettings,
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
        let user = user.map_or_else(|| "root".to_string(), |u| u.value.clone());
        let jump = host.jump.as_ref().or(global.jump.as_ref()).and_then(|j| {
            match parse_jump(&j.value, &user) {
                Ok(jump) => Some(jump),
                Err(why) => {
                    self.fail(j, why);
                    None
                }
            }
        });
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
        Connection {
            target: target.map_or_else(|| address.to_string(), |t| t.value.clone()),
            port: host.port.or(global.port).unwrap_or(22),
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

fn home() -> PathBuf {
    std::env::var_os("HOME").map_or_else(|| PathBuf::from("/root"), PathBuf::from)
}

fn same_subnet(a: IpAddr, b: IpAddr, prefix: u8) -> bool {
    match (a, b) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            let mask = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(prefix.min(32)))
            };
            u32::from(a) & mask == u32::from(b) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let mask = if prefix == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(prefix.min(128)))
            };
            u128::from(a) & mask == u128::from(b) & mask
        }
        _ => false,
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

/// `[user@]host[:port]`; the user defaults to the host's login user, the port to 22.
fn parse_jump(text: &str, default_user: &str) -> Result<crate::inventory::Jump, String> {
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
    })
}

fn valid_user(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 32
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && !s.starts_with('-')
}

/// Linux interface names: at most 15 bytes, no `/` or white space; we are stricter.
pub fn valid_interface(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 15
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.:@-".contains(c))
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
  vrrp: { virtual_router_id: 51, auth_pass: \"1111\" }
hosts:
  d1: { address: 10.0.0.11, interface: eth0, vrrp: { state: MASTER, priority: 100 } }
  d2: { address: 10.0.0.14, interface: eth0, vrrp: { state: BACKUP, priority: 50 } }
  r1: { address: 10.0.0.12, weight: 2 }
groups:
  directors: { hosts: [d1, d2] }
  real_servers: { hosts: [r1] }
";

    #[test]
    fn example_inventory_is_valid() {
        let text = include_str!("../../inventory.example.yml");
        let (inv, warnings) = check(text).unwrap();
        assert_eq!(inv.hosts.len(), 4);
        assert!(warnings.is_empty());
        assert_eq!(inv.lvs.unwrap().vrrp.unwrap().virtual_router_id, 51);
    }

    #[test]
    fn good_inventory_resolves_roles_and_secrets() {
        let (inv, _) = check(GOOD).unwrap();
        assert_eq!(inv.select("directors").unwrap().len(), 2);
        assert_eq!(
            inv.select("r1,d1").unwrap()[0].name,
            "d1",
            "inventory order"
        );
        assert_eq!(inv.select("nope").unwrap_err(), "nope");
        assert_eq!(inv.secrets, vec!["1111".to_string()]);
        assert_eq!(inv.hosts[0].connection.user, "root");
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
            "r1: { address: 10.0.0.12, weight: 2 }",
            "r1: { address: 10.0.0.12, weight: 2, connection: { jump: root@10.0.0.11 } }",
        );
        let (inv, _) = check(&per_host).unwrap();
        assert!(inv.hosts[0].connection.jump.is_none());
        let jump = inv.host("r1").unwrap().connection.jump.clone().unwrap();
        assert_eq!(
            (jump.user.as_str(), jump.target.as_str(), jump.port),
            ("root", "10.0.0.11", 22)
        );
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
        let e = error_of(&GOOD.replace("\"1111\"", "\"123456789\""));
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

        #[test]
        fn playbook_parser_never_panics(cut in 0usize..4000, insert in "[ :\\-\\[\\]{}\"'#&*!|>0-9a-z\n]{0,12}") {
            let text = crate::playbook::BUILTIN[1].1;
            let mut s = text.to_string();
            let mut at = cut.min(s.len());
            while !s.is_char_boundary(at) {
                at -= 1;
            }
            s.insert_str(at, &insert);
            let source = crate::diagnostic::Source { name: "p.yml".into(), text: s };
            if let Ok(p) = crate::playbook::Playbook::parse(source, None) {
                let (inv, _) = load_str(Path::new("f.yml"), EXAMPLE.to_string()).unwrap();
                let t = crate::playbook::template::Templates::new(&[]).unwrap();
                let _ = p.check(&inv, &t);
            }
        }
    }
}
