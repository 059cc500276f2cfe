//! The lab's networks: a bridge per network in the root namespace (outside 198.18.0.1/24, and
//! for NAT inside 198.18.1.1/24), one network namespace per node joined to them by veth pairs
//! (`eth0`, `eth1` inside). Found again by name, also after a crash.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use super::error::LabError;
use super::plan::{
    INSIDE_NETWORK, LabPlan, NETWORK, PREFIX_LEN, bridge_name, inside_bridge_name,
    namespace_prefix, veth_prefix,
};
use super::sys;

/// Names of a lab's network objects that exist right now.
#[derive(Debug, Default, Clone)]
pub struct Existing {
    pub namespaces: Vec<String>,
    /// Host-side veths and the bridge.
    pub links: Vec<String>,
}

/// Everything named like lab `lab`'s namespaces and links (no state files needed).
pub fn find(lab: &str) -> Existing {
    let ns_prefix = namespace_prefix(lab);
    let veth = veth_prefix(lab);
    let bridges = [bridge_name(lab), inside_bridge_name(lab)];
    let mut namespaces = list_dir("/run/netns", |n| n.starts_with(&ns_prefix));
    let mut links = list_dir("/sys/class/net", |n| {
        n.starts_with(&veth) || bridges.iter().any(|b| b == n)
    });
    namespaces.sort();
    links.sort();
    Existing { namespaces, links }
}

fn list_dir(dir: &str, keep: impl Fn(&str) -> bool) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| keep(n))
        .collect()
}

/// Another interface of this machine with an address in (or around) the lab's networks
/// (198.18.0.0/24, 198.18.1.0/24): a second lab there would make the nodes' addresses
/// ambiguous, so `up` refuses.
pub async fn network_in_use() -> Result<Option<(String, String)>, LabError> {
    let text = sys::run("ip", &["-o", "-4", "addr", "show"], None).await?;
    Ok(text.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (interface, cidr) = (*fields.get(1)?, *fields.get(3)?);
        let (addr, len) = cidr.split_once('/')?;
        let addr: Ipv4Addr = addr.parse().ok()?;
        let len: u8 = len.parse().ok()?;
        [NETWORK, INSIDE_NETWORK]
            .iter()
            .any(|net| overlaps(addr, len, *net, PREFIX_LEN))
            .then(|| (interface.to_string(), cidr.to_string()))
    }))
}

fn overlaps(a: Ipv4Addr, a_len: u8, b: Ipv4Addr, b_len: u8) -> bool {
    let len = a_len.min(b_len).min(32);
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    u32::from(a) & mask == u32::from(b) & mask
}

/// Creates the bridges (this machine's side addressed, or the VM's in a guest), the namespaces
/// and the veth pairs, then addresses every node, sets its default route if it has one, and
/// makes a router forward.
pub async fn create(plan: &LabPlan, guest: bool) -> Result<(), LabError> {
    let mut lines = Vec::new();
    for net in plan.networks() {
        lines.extend(bridge_lines(
            &net.bridge(&plan.name),
            net.bridge_address(guest),
        ));
    }
    for node in &plan.nodes {
        let ns = &node.namespace;
        lines.push(format!("netns add {ns}"));
        for link in &node.links {
            let (veth, iface) = (&link.host_veth, &link.iface);
            lines.push(format!(
                "link add {veth} type veth peer name {iface} netns {ns}"
            ));
            lines.push(format!(
                "link set {veth} master {} up",
                link.net.bridge(&plan.name)
            ));
        }
    }
    sys::ip_batch(&lines, false).await?;

    // `ip -batch` has no per-line namespace: one `ip -n NS` per node, all at once.
    let mut jobs = JoinSet::new();
    for node in &plan.nodes {
        let ns = node.namespace.clone();
        let mut input = String::from("link set lo up\n");
        for link in &node.links {
            input.push_str(&format!(
                "addr add {}/{PREFIX_LEN} dev {iface}\nlink set {iface} up\n",
                link.address,
                iface = link.iface
            ));
            for more in &link.secondary {
                input.push_str(&format!(
                    "addr add {more}/{PREFIX_LEN} dev {}\n",
                    link.iface
                ));
            }
        }
        if let Some(gateway) = node.gateway {
            input.push_str(&format!("route add default via {gateway}\n"));
        }
        let forwards = node.role == super::plan::Role::Router;
        jobs.spawn(async move {
            sys::run("ip", &["-n", &ns, "-batch", "-"], Some(&input)).await?;
            if forwards {
                // A plain router: forwarding, and no reverse-path filter (answers of DR and TUN
                // real servers come from the VIP, whose network is on its other side).
                sys::run(
                    "ip",
                    &[
                        "netns", "exec", &ns, "sh", "-c",
                        "echo 1 > /proc/sys/net/ipv4/ip_forward; for f in /proc/sys/net/ipv4/conf/*/rp_filter; do echo 0 > $f; done",
                    ],
                    None,
                )
                .await?;
            }
            Ok::<_, LabError>(())
        });
    }
    while let Some(joined) = jobs.join_next().await {
        joined.map_err(|e| LabError::Command {
            command: "ip -n NS -batch -".into(),
            detail: e.to_string(),
        })??;
    }
    Ok(())
}

fn bridge_lines(bridge: &str, address: Ipv4Addr) -> Vec<String> {
    vec![
        format!("link add {bridge} type bridge"),
        format!("addr add {address}/{PREFIX_LEN} dev {bridge}"),
        format!("link set {bridge} up"),
    ]
}

/// The host side of `lab up --vm`: the lab's bridges with this machine's addresses, and a tap
/// device on each for the VM's network cards (qemu opens them by name), in `plan.networks()`
/// order.
pub async fn create_for_vm(plan: &LabPlan, taps: &[String]) -> Result<(), LabError> {
    let mut lines = Vec::new();
    for (net, tap) in plan.networks().into_iter().zip(taps) {
        let bridge = net.bridge(&plan.name);
        lines.extend(bridge_lines(&bridge, net.bridge_address(false)));
        lines.push(format!("tuntap add dev {tap} mode tap"));
        lines.push(format!("link set {tap} master {bridge} up"));
    }
    sys::ip_batch(&lines, false).await
}

/// Deletes links first (synchronous, so a following `up` can reuse the names at once), then the
/// namespaces. Waits until the links are really gone.
pub async fn remove(existing: &Existing) -> Result<(), LabError> {
    let mut lines: Vec<String> = existing
        .links
        .iter()
        .map(|l| format!("link del {l}"))
        .collect();
    lines.extend(existing.namespaces.iter().map(|n| format!("netns del {n}")));
    // -force: keep going past a link that vanished with its namespace meanwhile.
    let result = sys::ip_batch(&lines, true).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let still: Vec<&String> = existing
            .links
            .iter()
            .filter(|l| std::path::Path::new("/sys/class/net").join(l).exists())
            .collect();
        let ns_left: Vec<&String> = existing
            .namespaces
            .iter()
            .filter(|n| std::path::Path::new("/run/netns").join(n).exists())
            .collect();
        if still.is_empty() && ns_left.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            let left: Vec<&str> = still.iter().chain(&ns_left).map(|s| s.as_str()).collect();
            return Err(result.err().unwrap_or_else(|| LabError::Command {
                command: "ip link del / ip netns del".into(),
                detail: format!("still present after 10 s: {}", left.join(", ")),
            }));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlap_of_prefixes() {
        let lab = Ipv4Addr::new(198, 18, 0, 0);
        assert!(overlaps(Ipv4Addr::new(198, 18, 0, 1), 24, lab, 24));
        assert!(overlaps(Ipv4Addr::new(198, 18, 0, 77), 32, lab, 24));
        assert!(overlaps(Ipv4Addr::new(198, 18, 3, 1), 15, lab, 24));
        assert!(!overlaps(Ipv4Addr::new(198, 18, 1, 1), 24, lab, 24));
        assert!(!overlaps(Ipv4Addr::new(10, 0, 0, 1), 8, lab, 24));
    }
}
