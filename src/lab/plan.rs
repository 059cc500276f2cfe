//! The lab's shape: which nodes exist, their roles, addresses and machine-wide names, all derived
//! from the lab name and the number of real servers. Pure: nothing here touches the system.

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use super::error::LabError;

/// Where labs keep their state (keys, known_hosts, inventory, node dirs).
pub const STATE_ROOT: &str = "/var/lib/lvslab/labs";
/// The bridge's address in the root namespace: the control side (lvslab, ssh) reaches nodes from it.
pub const BRIDGE_ADDRESS: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
/// In a lab inside a VM (`lab up --vm`), the VM's own address on the lab's bridge: the host keeps
/// [`BRIDGE_ADDRESS`] on its side of the same network.
pub const GUEST_BRIDGE_ADDRESS: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 254);
/// Every lab address is inside 198.18.0.0/24 (RFC 2544 benchmarking range).
pub const NETWORK: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 0);
pub const PREFIX_LEN: u8 = 24;
pub const CLIENT_ADDRESS: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 10);
/// The VIP the inventory names; the lab does not assign it (the playbooks do).
pub const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 100);
pub const MAX_REAL_SERVERS: u16 = 80;
/// The directors are always node1 and node4 (as in the seed's lab).
const DIRECTORS: [u16; 2] = [1, 4];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Director,
    RealServer,
    Client,
}

impl Role {
    pub fn describe(self) -> &'static str {
        match self {
            Role::Director => "director",
            Role::RealServer => "real server",
            Role::Client => "client",
        }
    }
}

/// One host of the lab.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeSpec {
    /// Host name inside the node and in the inventory: `node1`, ..., `client`.
    pub name: String,
    pub role: Role,
    pub address: Ipv4Addr,
    /// Network namespace (machine-wide name).
    pub namespace: String,
    /// Host side of the node's veth pair, a port of the lab's bridge (<= 15 characters).
    pub host_veth: String,
}

/// The whole lab.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabPlan {
    pub name: String,
    /// node1, node2, ... by number, then the client.
    pub nodes: Vec<NodeSpec>,
}

/// A lab name is 1-8 characters a-z0-9 starting with a letter, so every derived name fits
/// Linux's 15-character interface names and no name is a prefix of another lab's names.
pub fn check_name(name: &str) -> Result<(), LabError> {
    let ok = !name.is_empty()
        && name.len() <= 8
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(LabError::Usage(format!(
            "`{name}` is not a lab name: use 1-8 characters a-z0-9, starting with a letter"
        )))
    }
}

/// Every network namespace of lab `lab` starts with this.
pub fn namespace_prefix(lab: &str) -> String {
    format!("lvs-{lab}-")
}

/// Every host-side veth of lab `lab` starts with this (`lv-NAME-12`, `lv-NAME-c`: at most 14 chars).
pub fn veth_prefix(lab: &str) -> String {
    format!("lv-{lab}-")
}

pub fn bridge_name(lab: &str) -> String {
    format!("lvsb-{lab}")
}

/// The tap device of `lab up --vm` (the VM's network card, a port of the bridge). It starts with
/// the veth prefix, so everything that finds a lab's links by name finds it too.
pub fn vm_tap_name(lab: &str) -> String {
    format!("{}vm", veth_prefix(lab))
}

/// The node numbers of the real servers: node2, node3, then node5, node6, ...
fn real_server_numbers(count: u16) -> impl Iterator<Item = u16> {
    (2..)
        .filter(|k| !DIRECTORS.contains(k))
        .take(usize::from(count))
}

impl LabPlan {
    pub fn new(lab: &str, real_servers: u16) -> Result<Self, LabError> {
        check_name(lab)?;
        if real_servers == 0 || real_servers > MAX_REAL_SERVERS {
            return Err(LabError::Usage(format!(
                "a lab has 1 to {MAX_REAL_SERVERS} real servers, not {real_servers}"
            )));
        }
        let mut numbers: Vec<u16> = DIRECTORS
            .into_iter()
            .chain(real_server_numbers(real_servers))
            .collect();
        numbers.sort_unstable();
        let mut nodes: Vec<NodeSpec> = numbers.into_iter().map(|k| numbered_node(lab, k)).collect();
        nodes.push(client_node(lab));
        Ok(LabPlan {
            name: lab.to_string(),
            nodes,
        })
    }

    pub fn bridge(&self) -> String {
        bridge_name(&self.name)
    }

    #[cfg(test)]
    pub fn node(&self, node: &str) -> Option<&NodeSpec> {
        self.nodes.iter().find(|n| n.name == node)
    }

    pub fn real_servers(&self) -> impl Iterator<Item = &NodeSpec> {
        self.nodes.iter().filter(|n| n.role == Role::RealServer)
    }

    pub fn real_server_count(&self) -> usize {
        self.real_servers().count()
    }
}

/// The node called `node` in lab `lab`, if that is a lab node name (`node1`..`node82`, `client`).
/// Used to recognise leftovers of a lab whose state files are gone.
pub fn node_from_name(lab: &str, node: &str) -> Option<NodeSpec> {
    if node == "client" {
        return Some(client_node(lab));
    }
    let number: u16 = node.strip_prefix("node")?.parse().ok()?;
    let max = 2 + MAX_REAL_SERVERS;
    let canonical = format!("node{number}") == node;
    (canonical && (1..=max).contains(&number)).then(|| numbered_node(lab, number))
}

fn numbered_node(lab: &str, number: u16) -> NodeSpec {
    let name = format!("node{number}");
    let role = if DIRECTORS.contains(&number) {
        Role::Director
    } else {
        Role::RealServer
    };
    // number <= 82 by construction, so the last octet is at most 92.
    let octet = u8::try_from(10 + number).unwrap_or(u8::MAX);
    NodeSpec {
        namespace: format!("{}{name}", namespace_prefix(lab)),
        host_veth: format!("{}{number}", veth_prefix(lab)),
        name,
        role,
        address: Ipv4Addr::new(198, 18, 0, octet),
    }
}

fn client_node(lab: &str) -> NodeSpec {
    NodeSpec {
        name: "client".into(),
        role: Role::Client,
        address: CLIENT_ADDRESS,
        namespace: format!("{}client", namespace_prefix(lab)),
        host_veth: format!("{}c", veth_prefix(lab)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_lab_has_two_directors_two_real_servers_and_a_client() {
        let plan = LabPlan::new("lvslab", 2).unwrap();
        let names: Vec<&str> = plan.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["node1", "node2", "node3", "node4", "client"]);
        assert_eq!(plan.node("node1").unwrap().role, Role::Director);
        assert_eq!(plan.node("node4").unwrap().role, Role::Director);
        assert_eq!(plan.node("node3").unwrap().role, Role::RealServer);
        assert_eq!(
            plan.node("node2").unwrap().address,
            Ipv4Addr::new(198, 18, 0, 12)
        );
        assert_eq!(plan.node("client").unwrap().address, CLIENT_ADDRESS);
        assert_eq!(plan.node("node2").unwrap().namespace, "lvs-lvslab-node2");
        assert_eq!(plan.bridge(), "lvsb-lvslab");
    }

    #[test]
    fn real_servers_skip_the_second_director() {
        let plan = LabPlan::new("a", 3).unwrap();
        let rs: Vec<&str> = plan.real_servers().map(|n| n.name.as_str()).collect();
        assert_eq!(rs, ["node2", "node3", "node5"]);
        let one = LabPlan::new("a", 1).unwrap();
        let names: Vec<&str> = one.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["node1", "node2", "node4", "client"]);
    }

    #[test]
    fn largest_lab_fits_interface_names_and_the_subnet() {
        let plan = LabPlan::new("abcdefgh", MAX_REAL_SERVERS).unwrap();
        assert_eq!(plan.real_server_count(), 80);
        let last = &plan.nodes[plan.nodes.len() - 2];
        assert_eq!(last.name, "node82");
        assert_eq!(last.address, Ipv4Addr::new(198, 18, 0, 92));
        assert!(last.address < VIP);
        for node in &plan.nodes {
            assert!(node.host_veth.len() <= 15, "{}", node.host_veth);
        }
        assert!(plan.bridge().len() <= 15);
        assert!(LabPlan::new("a", 81).is_err());
        assert!(LabPlan::new("a", 0).is_err());
    }

    #[test]
    fn names_are_checked() {
        for bad in ["", "Abc", "1abc", "abcdefghi", "a-b", "a_b"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        for good in ["a", "lvslab", "t1", "abcdefgh"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn leftovers_are_recognised_by_node_name() {
        assert_eq!(
            node_from_name("x", "node5").unwrap().address,
            Ipv4Addr::new(198, 18, 0, 15)
        );
        assert_eq!(node_from_name("x", "client").unwrap().host_veth, "lv-x-c");
        for bad in ["node0", "node83", "node05", "nodex", "other"] {
            assert!(node_from_name("x", bad).is_none(), "{bad}");
        }
    }
}
