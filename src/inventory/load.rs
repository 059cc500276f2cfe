//! Reading and checking an inventory file: every problem is reported with file:line:column
//! before any host is contacted. This file reads the YAML, its hosts, groups, connections and
//! secrets; `lvs.rs` builds the load balancer ([`crate::lvs::Lvs`]) once from it.
//!
//! Every value that ends up in keepalived.conf, a sysctl, a route or a command line is checked
//! here for the grammar of the place it goes to, so a value that could add a line or a directive
//! never reaches a host.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde_saphyr::{Location, Spanned};

use super::model::{ConnectionSettings, HostEntry, InventoryFile};
use super::{Connection, Group, Host, Inventory, home};
use crate::diagnostic::{Source, SourceError};
use crate::lvs::names;
use crate::secrets::{self, Secrets};

/// Load and check an inventory. Warnings (not errors) come back beside it.
pub fn load(path: &Path) -> Result<(Inventory, Vec<String>), miette::Report> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        miette::miette!(
            help = "give the inventory with -i FILE or LVSLAB_INVENTORY; `lvslab lab up` writes one for a local lab",
            "cannot read inventory {}: {e}",
            path.display()
        )
    })?;
    let (inventory, mut warnings) = load_str(path, text).map_err(|e| miette::Report::new(*e))?;
    warnings.extend(crate::perms::writable_by_others(path, "inventory"));
    Ok((inventory, warnings))
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

pub(super) struct Checker<'a> {
    src: &'a Source,
    base: PathBuf,
    errors: Vec<SourceError>,
    pub(super) warnings: Vec<String>,
}

/// A value that must be inside `range`, else an error at its place.
pub(super) fn in_range<T: Copy + Into<i64>>(
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
    pub(super) fn fail<T>(&mut self, at: &Spanned<T>, message: String) {
        self.fail_at(&at.referenced, message);
    }

    pub(super) fn fail_at(&mut self, at: &Location, message: String) {
        self.errors.push(self.src.error_at(at, message));
    }

    /// A warning about the value at `at`, naming its place (`file:line:column: ...`).
    pub(super) fn warn<T>(&mut self, at: &Spanned<T>, message: String) {
        let loc = &at.referenced;
        self.warnings.push(format!(
            "{}:{}:{}: {message}",
            self.src.name,
            loc.line(),
            loc.column()
        ));
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
pub(super) mod tests {
    use super::*;

    pub(in crate::inventory) fn check(
        yaml: &str,
    ) -> Result<(Inventory, Vec<String>), Box<SourceError>> {
        load_str(Path::new("inv.yml"), yaml.to_string())
    }

    pub(in crate::inventory) const GOOD: &str = "\
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

    /// A tab in an indentation is named at its own line; a wrong indent gets a hint.
    #[test]
    fn tabs_and_indents_are_named_where_they_are() {
        let tab = GOOD.replace("  d2: {", "\td2: {");
        let e = check(&tab).expect_err("a tab is refused");
        assert_eq!(e.place, "inv.yml:6:1", "{e}");
        assert!(e.message.contains("a tab in the indentation"), "{e}");
        let indent = GOOD.replace(
            "  vrrp: { virtual_router_id",
            "   vrrp: { virtual_router_id",
        );
        let e = check(&indent).expect_err("a wrong indent is refused");
        assert!(
            e.help
                .as_deref()
                .is_some_and(|h| h.contains("line up in the same column")),
            "{e:?}"
        );
    }

    /// Every inventory the README and the docs show validates as it is.
    #[test]
    fn the_inventories_the_docs_show_are_valid() {
        let pages = [
            ("README.md", include_str!("../../README.md")),
            (
                "docs/forwarding.md",
                include_str!("../../docs/forwarding.md"),
            ),
            ("docs/inventory.md", include_str!("../../docs/inventory.md")),
        ];
        let mut checked = 0;
        for (page, text) in pages {
            for block in text.split("```yaml\n").skip(1) {
                let yaml = block.split("```").next().unwrap_or_default();
                // Whole inventories only: a block of `lvs:` keys alone is a part of one.
                if !yaml.contains("\nhosts:") {
                    continue;
                }
                if let Err(e) = check(yaml) {
                    panic!("{page}: an inventory that does not validate:\n{yaml}\n{e}");
                }
                checked += 1;
            }
        }
        assert!(checked >= 2, "{checked}");
    }

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

    pub(in crate::inventory) fn error_of(yaml: &str) -> String {
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
    fn block_scalar_secrets_are_masked_in_a_file_that_does_not_parse() {
        for indicator in ["|", ">-", "|+"] {
            let broken = format!(
                "{GOOD}secrets:\n  db_pass: {indicator}\n    hunter22line1\n    MIIEvQIBADAN\n  [broken\n"
            );
            let e = check(&broken).err().unwrap();
            let rendered = format!("{:?}", miette::Report::new(*e));
            assert!(
                !rendered.contains("hunter22line1") && !rendered.contains("MIIEvQIBADAN"),
                "{rendered}"
            );
        }
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
