//! The inventory: which hosts exist, how to reach them, the load balancer they form, and
//! variables.
//!
//! Loading happens in two steps: `model` is the YAML as written (serde types with
//! `deny_unknown_fields`, spans kept where a later check needs to point at a line), and `load`
//! checks it as a whole and produces the resolved [`Inventory`], with the LVS domain model
//! ([`crate::lvs::Lvs`]) built once, that the rest of lvslab uses.

pub mod edit;
mod load;
mod lvs;
mod model;

pub use load::{load, load_str};

use std::net::IpAddr;
use std::path::PathBuf;

use indexmap::IndexMap;
use serde::Serialize;

use crate::lvs::{Lvs, names};
use crate::secrets::Secrets;

/// The user's home: where `~` in the inventory points, and where SSH keeps its own files
/// (`~/.ssh/known_hosts`, the default keys). Root's when the system names none.
pub fn home() -> PathBuf {
    std::env::home_dir().unwrap_or_else(|| PathBuf::from("/root"))
}

/// Free variables: names to JSON-like values.
pub type Vars = serde_json::Map<String, serde_json::Value>;

/// A checked inventory.
#[derive(Debug, Clone)]
pub struct Inventory {
    pub path: PathBuf,
    /// The load balancer, when the inventory has an `lvs:` section.
    pub lvs: Option<Lvs>,
    /// Hosts in file order.
    pub hosts: Vec<Host>,
    /// Group name to member host names (`all` is implicit and not stored).
    pub groups: IndexMap<String, Group>,
    pub vars: Vars,
    /// Values that must never be printed (auth_pass, the `secrets:` section).
    pub secrets: Secrets,
}

#[derive(Debug, Clone)]
pub struct Group {
    pub hosts: Vec<String>,
    pub vars: Vars,
}

/// One host, with its connection settings resolved. Its role in the load balancer (director,
/// real server) is in [`Inventory::lvs`].
#[derive(Debug, Clone, Serialize)]
pub struct Host {
    pub name: String,
    pub address: IpAddr,
    pub interface: Option<String>,
    #[serde(skip)]
    pub connection: Connection,
    #[serde(skip)]
    pub vars: Vars,
}

/// How to reach a host over SSH.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// Host name or address to connect to (the host's `address` unless overridden).
    pub target: String,
    pub port: u16,
    pub user: String,
    /// Private key file; `None`: only the ssh-agent.
    pub identity_file: Option<PathBuf>,
    pub known_hosts: PathBuf,
    /// Run commands through `sudo -n` (only meaningful for a non-root user).
    pub become_root: bool,
    /// The SSH server the connection goes through (`connection.jump`), if any.
    pub jump: Option<Jump>,
}

/// A jump host (bastion): the connection to the host is a TCP channel opened on it. It logs in
/// with its own identity and its key is checked against its own known_hosts entry: those of
/// the inventory host it names, else the inventory-wide `connection:` settings, never those of
/// whichever host happens to connect through it first.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Jump {
    pub user: String,
    pub target: String,
    pub port: u16,
    pub identity_file: Option<PathBuf>,
    pub known_hosts: PathBuf,
}

impl Inventory {
    pub fn host(&self, name: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.name == name)
    }

    /// Members of a group; `all` is every host.
    pub fn group_members(&self, group: &str) -> Option<Vec<&Host>> {
        if group == names::ALL {
            return Some(self.hosts.iter().collect());
        }
        let g = self.groups.get(group)?;
        Some(g.hosts.iter().filter_map(|n| self.host(n)).collect())
    }

    /// Hosts matched by a pattern: comma-separated host names, group names, or `all`.
    /// Unknown names are returned as the error.
    pub fn select(&self, pattern: &str) -> Result<Vec<&Host>, String> {
        let mut out: Vec<&Host> = Vec::new();
        for part in pattern.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let found: Vec<&Host> = if let Some(members) = self.group_members(part) {
                members
            } else if let Some(h) = self.host(part) {
                vec![h]
            } else {
                return Err(part.to_string());
            };
            for h in found {
                if !out.iter().any(|o| o.name == h.name) {
                    out.push(h);
                }
            }
        }
        // Keep inventory order, whatever the pattern's order.
        out.sort_by_key(|h| self.hosts.iter().position(|x| x.name == h.name));
        Ok(out)
    }

    /// Variables of a host: global, then groups in file order, then the host's own (host wins).
    pub fn host_vars(&self, host: &Host) -> Vars {
        let mut vars = self.vars.clone();
        for group in self.groups.values() {
            if group.hosts.iter().any(|n| n == &host.name) {
                vars.extend(group.vars.clone());
            }
        }
        vars.extend(host.vars.clone());
        vars
    }

    pub fn groups_of(&self, host: &str) -> Vec<&str> {
        self.groups
            .iter()
            .filter(|(_, g)| g.hosts.iter().any(|n| n == host))
            .map(|(name, _)| name.as_str())
            .collect()
    }

    /// The host requests are sent from (verify, drills): the first of `clients`, if any.
    pub fn client(&self) -> Option<&Host> {
        self.group_members(names::CLIENTS)
            .and_then(|m| m.into_iter().next())
    }

    /// The load balancer with at least one director and one real server, or why not.
    pub fn complete_lvs(&self) -> Result<&Lvs, String> {
        let Some(lvs) = &self.lvs else {
            return Err(format!("{} has no `lvs:` section", self.path.display()));
        };
        for (group, empty) in [
            (names::DIRECTORS, lvs.directors.is_empty()),
            (names::REAL_SERVERS, lvs.real_servers.is_empty()),
        ] {
            if empty {
                return Err(format!(
                    "{} has no hosts in group `{group}`, which the LVS lab needs",
                    self.path.display()
                ));
            }
        }
        Ok(lvs)
    }
}
