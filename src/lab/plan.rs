//! The lab's shape: which nodes exist, their roles, networks, addresses and machine-wide names,
//! all derived from the lab name, the number of real servers and the forwarding method the lab
//! is for. Pure: nothing here touches the system.
//!
//! DR and TUN labs are the seed's: one network (198.18.0.0/24) for everyone. A NAT lab has two:
//! outside (198.18.0.0/24: the client, the directors, the VIP) and inside (198.18.1.0/24: the
//! directors again, the real servers, the floating gateway .254), joined by a plain router (.2 on
//! both, no sshd) that stands for the network's own routing: the real servers' default route
//! goes to it until NAT points it at the directors, so DR and TUN work on a NAT lab too, with
//! answers that go around the directors.

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use super::error::LabError;
use crate::lvs::Forwarding;

/// Where labs keep their state (keys, known_hosts, inventory, node dirs).
pub const STATE_ROOT: &str = "/var/lib/lvslab/labs";
/// The bridge's address in the root namespace: the control side (lvslab, ssh) reaches nodes from it.
pub const BRIDGE_ADDRESS: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
/// In a lab inside a VM (`lab up --vm`), the VM's own address on the lab's bridge: the host keeps
/// [`BRIDGE_ADDRESS`] on its side of the same network.
pub const GUEST_BRIDGE_ADDRESS: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 254);
/// Every lab address is inside 198.18.0.0/23 (RFC 2544 benchmarking range): the outside network
/// 198.18.0.0/24, and a NAT lab's inside network 198.18.1.0/24.
pub const NETWORK: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 0);
pub const INSIDE_NETWORK: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 0);
pub const PREFIX_LEN: u8 = 24;
/// This machine on a NAT lab's inside bridge (to reach the real servers).
pub const INSIDE_BRIDGE_ADDRESS: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 1);
/// The VM's own address on a NAT lab's inside bridge (the gateway has .254).
pub const GUEST_INSIDE_BRIDGE_ADDRESS: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 253);
/// A NAT lab's router, on both networks.
pub const ROUTER_OUTSIDE: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
pub const ROUTER_INSIDE: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 2);
/// A NAT lab's floating gateway: the real servers' default route in NAT mode.
pub const NAT_GATEWAY: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 254);
pub const CLIENT_ADDRESS: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 10);
/// The client's second address (a second client, to verify persistence: two clients may land
/// on different real servers, one stays on its own).
pub const CLIENT_SECOND_ADDRESS: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 9);
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
    /// A NAT lab's plain router between its networks (no sshd, not in the inventory).
    Router,
}

impl Role {
    pub fn describe(self) -> &'static str {
        match self {
            Role::Director => "director",
            Role::RealServer => "real server",
            Role::Client => "client",
            Role::Router => "router",
        }
    }
}

/// One of the lab's networks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Net {
    /// 198.18.0.0/24: the client, the directors, the VIP (every node of a DR or TUN lab).
    Outside,
    /// 198.18.1.0/24 (NAT labs): the directors and the real servers.
    Inside,
}

impl Net {
    pub fn network(self) -> Ipv4Addr {
        match self {
            Net::Outside => NETWORK,
            Net::Inside => INSIDE_NETWORK,
        }
    }

    /// This machine's address on the network's bridge.
    pub fn bridge_address(self, guest: bool) -> Ipv4Addr {
        match (self, guest) {
            (Net::Outside, false) => BRIDGE_ADDRESS,
            (Net::Outside, true) => GUEST_BRIDGE_ADDRESS,
            (Net::Inside, false) => INSIDE_BRIDGE_ADDRESS,
            (Net::Inside, true) => GUEST_INSIDE_BRIDGE_ADDRESS,
        }
    }

    pub fn bridge(self, lab: &str) -> String {
        match self {
            Net::Outside => bridge_name(lab),
            Net::Inside => inside_bridge_name(lab),
        }
    }
}

/// A node's network card: a veth pair whose host side is a port of the network's bridge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeLink {
    /// The card's name inside the node (`eth0`, `eth1`).
    pub iface: String,
    pub net: Net,
    pub address: Ipv4Addr,
    /// More addresses on the card, after `address` (which stays the one it sends from).
    #[serde(default)]
    pub secondary: Vec<Ipv4Addr>,
    /// Host side of the veth pair (<= 15 characters).
    pub host_veth: String,
}

/// One host of the lab.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeSpec {
    /// Host name inside the node and in the inventory: `node1`, ..., `client`.
    pub name: String,
    pub role: Role,
    /// Where its sshd listens and the inventory reaches it (its first card's address).
    pub address: Ipv4Addr,
    /// Network namespace (machine-wide name).
    pub namespace: String,
    /// Host side of its first card's veth pair.
    pub host_veth: String,
    /// Its network cards, `eth0` first.
    pub links: Vec<NodeLink>,
    /// Its default route when the lab is built (a NAT lab's real servers: the router).
    pub gateway: Option<Ipv4Addr>,
}

impl NodeSpec {
    /// Whether it runs an sshd (every node but a router).
    pub fn has_sshd(&self) -> bool {
        self.role != Role::Router
    }
}

/// What a node runs as PID 1.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum NodeInit {
    /// lvslab's own init: sshd, then what is enabled in runlevel 2 (SysV scripts). Fast.
    #[default]
    Sysv,
    /// systemd, in a systemd-nspawn container of this machine's root tree: units, `systemctl`,
    /// a real `systemctl reboot`.
    Systemd,
}

impl std::fmt::Display for NodeInit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NodeInit::Sysv => "sysv",
            NodeInit::Systemd => "systemd",
        })
    }
}

/// The whole lab.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabPlan {
    pub name: String,
    /// The forwarding method the lab is built for (its networks and inventory follow it).
    pub forwarding: Forwarding,
    /// What the nodes run as PID 1 (a router runs nothing).
    #[serde(default)]
    pub init: NodeInit,
    /// node1, node2, ... by number, then the client (and a NAT lab's router).
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

/// A NAT lab's inside bridge.
pub fn inside_bridge_name(lab: &str) -> String {
    format!("lvsi-{lab}")
}

/// The tap device of `lab up --vm` (the VM's network card, a port of the bridge). It starts with
/// the veth prefix, so everything that finds a lab's links by name finds it too.
pub fn vm_tap_name(lab: &str) -> String {
    format!("{}vm", veth_prefix(lab))
}

/// The VM's second network card on a NAT lab's inside bridge.
pub fn vm_inside_tap_name(lab: &str) -> String {
    format!("{}vi", veth_prefix(lab))
}

/// The node numbers of the real servers: node2, node3, then node5, node6, ...
fn real_server_numbers(count: u16) -> impl Iterator<Item = u16> {
    (2..)
        .filter(|k| !DIRECTORS.contains(k))
        .take(usize::from(count))
}

impl LabPlan {
    pub fn new(lab: &str, real_servers: u16, forwarding: Forwarding) -> Result<Self, LabError> {
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
        let nat = forwarding == Forwarding::Nat;
        let mut nodes: Vec<NodeSpec> = numbers
            .into_iter()
            .map(|k| numbered_node(lab, k, nat))
            .collect();
        nodes.push(client_node(lab));
        if nat {
            nodes.push(router_node(lab));
        }
        Ok(LabPlan {
            name: lab.to_string(),
            forwarding,
            init: NodeInit::Sysv,
            nodes,
        })
    }

    /// The same lab with its nodes booting `init`.
    pub fn with_init(mut self, init: NodeInit) -> Self {
        self.init = init;
        self
    }

    pub fn bridge(&self) -> String {
        bridge_name(&self.name)
    }

    /// The networks the lab has: outside, and inside for NAT.
    pub fn networks(&self) -> Vec<Net> {
        if self.forwarding == Forwarding::Nat {
            vec![Net::Outside, Net::Inside]
        } else {
            vec![Net::Outside]
        }
    }

    /// The nodes that run an sshd (all but a router).
    pub fn hosts(&self) -> impl Iterator<Item = &NodeSpec> {
        self.nodes.iter().filter(|n| n.has_sshd())
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

/// Whether `node` names a lab node (`node1`..`node82`, `client`, `router`). Used to recognise
/// leftovers of a lab whose state files are gone.
pub fn is_node_name(node: &str) -> bool {
    if node == "client" || node == "router" {
        return true;
    }
    let Some(number) = node
        .strip_prefix("node")
        .and_then(|n| n.parse::<u16>().ok())
    else {
        return false;
    };
    format!("node{number}") == node && (1..=2 + MAX_REAL_SERVERS).contains(&number)
}

/// What a leftover node of lab `lab` (its state files gone) most likely was, by its name.
pub fn leftover_node(lab: &str, node: &str) -> Option<NodeSpec> {
    if !is_node_name(node) {
        return None;
    }
    Some(match node {
        "client" => client_node(lab),
        "router" => router_node(lab),
        _ => numbered_node(lab, node.strip_prefix("node")?.parse().ok()?, false),
    })
}

/// The namespace of a lab node (what leftovers are found by).
pub fn namespace_of(lab: &str, node: &str) -> String {
    format!("{}{node}", namespace_prefix(lab))
}

fn link(iface: &str, net: Net, octet: u8, host_veth: String) -> NodeLink {
    let base = net.network().octets();
    NodeLink {
        iface: iface.into(),
        net,
        address: Ipv4Addr::new(base[0], base[1], base[2], octet),
        secondary: Vec::new(),
        host_veth,
    }
}

fn node(
    lab: &str,
    name: String,
    role: Role,
    links: Vec<NodeLink>,
    gateway: Option<Ipv4Addr>,
) -> NodeSpec {
    NodeSpec {
        namespace: namespace_of(lab, &name),
        address: links[0].address,
        host_veth: links[0].host_veth.clone(),
        name,
        role,
        links,
        gateway,
    }
}

fn numbered_node(lab: &str, number: u16, nat: bool) -> NodeSpec {
    let name = format!("node{number}");
    let role = if DIRECTORS.contains(&number) {
        Role::Director
    } else {
        Role::RealServer
    };
    // number <= 82 by construction, so the last octet is at most 92.
    let octet = u8::try_from(10 + number).unwrap_or(u8::MAX);
    let veth = format!("{}{number}", veth_prefix(lab));
    let links = match (nat, role) {
        (false, _) => vec![link("eth0", Net::Outside, octet, veth)],
        (true, Role::Director) => vec![
            link("eth0", Net::Outside, octet, veth.clone()),
            link("eth1", Net::Inside, octet, format!("{veth}i")),
        ],
        (true, _) => vec![link("eth0", Net::Inside, octet, veth)],
    };
    let gateway = (nat && role == Role::RealServer).then_some(ROUTER_INSIDE);
    node(lab, name, role, links, gateway)
}

fn client_node(lab: &str) -> NodeSpec {
    let octet = CLIENT_ADDRESS.octets()[3];
    let veth = format!("{}c", veth_prefix(lab));
    let mut eth0 = link("eth0", Net::Outside, octet, veth);
    eth0.secondary.push(CLIENT_SECOND_ADDRESS);
    node(lab, "client".into(), Role::Client, vec![eth0], None)
}

fn router_node(lab: &str) -> NodeSpec {
    let veth = format!("{}r", veth_prefix(lab));
    node(
        lab,
        "router".into(),
        Role::Router,
        vec![
            link(
                "eth0",
                Net::Outside,
                ROUTER_OUTSIDE.octets()[3],
                veth.clone(),
            ),
            link(
                "eth1",
                Net::Inside,
                ROUTER_INSIDE.octets()[3],
                format!("{veth}i"),
            ),
        ],
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_lab_has_two_directors_two_real_servers_and_a_client() {
        let plan = LabPlan::new("lvslab", 2, Forwarding::Dr).unwrap();
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
        assert_eq!(
            plan.node("client").unwrap().links[0].secondary,
            [CLIENT_SECOND_ADDRESS]
        );
        assert_eq!(plan.node("node2").unwrap().namespace, "lvs-lvslab-node2");
        assert_eq!(plan.bridge(), "lvsb-lvslab");
    }

    #[test]
    fn real_servers_skip_the_second_director() {
        let plan = LabPlan::new("a", 3, Forwarding::Dr).unwrap();
        let rs: Vec<&str> = plan.real_servers().map(|n| n.name.as_str()).collect();
        assert_eq!(rs, ["node2", "node3", "node5"]);
        let one = LabPlan::new("a", 1, Forwarding::Dr).unwrap();
        let names: Vec<&str> = one.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["node1", "node2", "node4", "client"]);
    }

    #[test]
    fn largest_lab_fits_interface_names_and_the_subnet() {
        let plan = LabPlan::new("abcdefgh", MAX_REAL_SERVERS, Forwarding::Dr).unwrap();
        assert_eq!(plan.real_server_count(), 80);
        let last = &plan.nodes[plan.nodes.len() - 2];
        assert_eq!(last.name, "node82");
        assert_eq!(last.address, Ipv4Addr::new(198, 18, 0, 92));
        assert!(last.address < VIP);
        for node in &plan.nodes {
            assert!(node.host_veth.len() <= 15, "{}", node.host_veth);
        }
        assert!(plan.bridge().len() <= 15);
        assert!(LabPlan::new("a", 81, Forwarding::Dr).is_err());
        assert!(LabPlan::new("a", 0, Forwarding::Dr).is_err());
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
        for good in ["node5", "client", "router", "node82"] {
            assert!(is_node_name(good), "{good}");
        }
        for bad in ["node0", "node83", "node05", "nodex", "other"] {
            assert!(!is_node_name(bad), "{bad}");
        }
        assert_eq!(namespace_of("x", "node5"), "lvs-x-node5");
    }

    #[test]
    fn a_nat_lab_has_two_networks_and_a_router() {
        let plan = LabPlan::new("n", 2, Forwarding::Nat).unwrap();
        assert_eq!(plan.networks(), [Net::Outside, Net::Inside]);
        let d = plan.node("node1").unwrap();
        assert_eq!(d.address, Ipv4Addr::new(198, 18, 0, 11));
        assert_eq!(d.links[1].address, Ipv4Addr::new(198, 18, 1, 11));
        assert_eq!(d.links[1].host_veth, "lv-n-1i");
        let rs = plan.node("node2").unwrap();
        assert_eq!(
            (rs.address, rs.links.len()),
            (Ipv4Addr::new(198, 18, 1, 12), 1)
        );
        assert_eq!(rs.gateway, Some(ROUTER_INSIDE));
        assert_eq!(plan.node("client").unwrap().address, CLIENT_ADDRESS);
        let big = LabPlan::new("abcdefgh", MAX_REAL_SERVERS, Forwarding::Nat).unwrap();
        for link in big.nodes.iter().flat_map(|n| &n.links) {
            assert!(link.host_veth.len() <= 15, "{}", link.host_veth);
        }
        let router = plan.node("router").unwrap();
        assert!(!router.has_sshd());
        assert_eq!(plan.hosts().count(), 5);
        let flat = LabPlan::new("n", 2, Forwarding::Tun).unwrap();
        assert_eq!(flat.networks(), [Net::Outside]);
        assert!(flat.node("router").is_none());
    }
}
