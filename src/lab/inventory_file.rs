//! The inventory a lab writes for itself: the shape of `inventory.example.yml`, with the lab's
//! addresses, `eth0`, the lab's own key and known_hosts, a `clients` group, and the forwarding
//! method the lab is for (with NAT: the inside network, its gateway, the directors' inside
//! interface).

use std::fmt::Write;

use super::plan::{INSIDE_NETWORK, LabPlan, NAT_GATEWAY, NodeSpec, PREFIX_LEN, Role, VIP};
use crate::lvs::{Forwarding, names};

/// Keepalived's VRRP settings for the two directors (node1 wins elections).
fn director_vrrp(node: &NodeSpec) -> &'static str {
    if node.name == "node1" {
        "{ state: MASTER, priority: 100 }"
    } else {
        "{ state: BACKUP, priority: 50 }"
    }
}

/// The inventory text. `auth_pass` is the lab's VRRP password (at most 8 characters).
pub fn render(plan: &LabPlan, web_server: &str, auth_pass: &str) -> String {
    let mut out = String::new();
    let name = &plan.name;
    // Writing into a String cannot fail.
    let _ = write!(
        out,
        "# lvslab inventory of the local lab `{name}` (written by `lvslab lab up`).\n\
         # Use it:      lvslab -i THIS_FILE up\n\
         # Remove it:   lvslab lab down --name {name}\n\
         \n\
         connection:\n  \
           user: root\n  \
           port: 22\n  \
           identity_file: id_ed25519      # relative to this file\n  \
           known_hosts: known_hosts\n\
         \n\
         lvs:\n  \
           vip: {VIP}\n  \
           vip_prefix: {PREFIX_LEN}\n  \
           port: 80\n  \
           protocol: tcp\n  \
           scheduler: rr\n  \
           forwarding: {forwarding}\n  \
           {nat}vrrp:\n    \
             virtual_router_id: 51\n    \
             advert_int: 1\n    \
             auth_pass: \"{auth_pass}\"\n    \
             sync_daemon: false   # true: the BACKUP keeps the connections, they survive a failover\n  \
           health_check:\n    \
             type: http\n    \
             path: /\n    \
             status_code: 200\n    \
             connect_timeout: 3\n    \
             retry: 3\n    \
             delay_before_retry: 3\n    \
             delay_loop: 6\n    \
             via_vip: false\n\
         \n\
         vars:\n  \
           web_server: {web_server}\n\
         \n\
         hosts:\n",
        forwarding = plan.forwarding,
        nat = if plan.forwarding == Forwarding::Nat {
            format!(
                "nat:                 # the real servers' network and their gateway, which moves with the VIP\n    inside: {INSIDE_NETWORK}/{PREFIX_LEN}\n    gateway: {NAT_GATEWAY}\n  "
            )
        } else {
            String::new()
        },
    );
    for node in plan.hosts() {
        let _ = write!(
            out,
            "  {}:\n    address: {}\n    interface: eth0\n",
            node.name, node.address
        );
        match node.role {
            Role::Director => {
                if let Some(inside) = node.links.get(1) {
                    let _ = writeln!(out, "    inside_interface: {}", inside.iface);
                }
                let _ = writeln!(out, "    vrrp: {}", director_vrrp(node));
            }
            Role::RealServer => {
                let _ = writeln!(out, "    weight: 1");
            }
            Role::Client | Role::Router => {}
        }
    }
    let group = |role: Role| -> String {
        let members: Vec<&str> = plan
            .nodes
            .iter()
            .filter(|n| n.role == role)
            .map(|n| n.name.as_str())
            .collect();
        members.join(", ")
    };
    let _ = write!(out, "\ngroups:\n");
    for (name, role) in [
        (names::DIRECTORS, Role::Director),
        (names::REAL_SERVERS, Role::RealServer),
        (names::CLIENTS, Role::Client),
    ] {
        let _ = write!(out, "  {name}:\n    hosts: [{}]\n", group(role));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_and_hosts_follow_the_plan() {
        let plan = LabPlan::new("t", 3, Forwarding::Dr).unwrap();
        let text = render(&plan, "nginx", "ab12cd34");
        assert!(text.contains("    hosts: [node1, node4]\n"), "{text}");
        assert!(
            text.contains("    hosts: [node2, node3, node5]\n"),
            "{text}"
        );
        assert!(text.contains("    hosts: [client]\n"), "{text}");
        assert!(
            text.contains(
                "  node5:\n    address: 198.18.0.15\n    interface: eth0\n    weight: 1\n"
            )
        );
        assert!(text.contains("  client:\n    address: 198.18.0.10\n    interface: eth0\n"));
        assert!(text.contains("  vip: 198.18.0.100\n  vip_prefix: 24\n"));
        assert!(text.contains("vrrp: { state: MASTER, priority: 100 }"));
        assert!(text.contains("  web_server: nginx\n"));
        assert!(text.contains("  identity_file: id_ed25519"));
    }

    /// The lab's inventory is one the inventory loader accepts without errors or warnings.
    #[test]
    fn the_inventory_loader_accepts_it() {
        for (real_servers, forwarding) in [
            (1, Forwarding::Dr),
            (2, Forwarding::Nat),
            (2, Forwarding::Tun),
            (50, Forwarding::Dr),
        ] {
            let plan = LabPlan::new("t", real_servers, forwarding).unwrap();
            let text = render(&plan, "nginx", "ab12cd34");
            let path = std::path::Path::new("/lab/inventory.yml");
            let loaded = crate::inventory::load_str(path, text.clone());
            let (inventory, warnings) = loaded.unwrap_or_else(|e| panic!("{e:?}\n{text}"));
            assert!(warnings.is_empty(), "{warnings:?}");
            assert_eq!(inventory.hosts.len(), plan.hosts().count());
            assert_eq!(inventory.lvs.unwrap().service().forwarding, forwarding);
        }
    }
}
