//! The forwarding methods on the namespace lab, where no IPVS is needed: a NAT lab's networks,
//! the real servers' default route through the floating gateway, the gateway moving with the VIP
//! in a failover, a switch to DR that leaves nothing of NAT, and `down`. (This machine's kernel
//! has neither IPVS nor ipip: the paths themselves and TUN are proven in the VM tier.)

mod common;

use common::{Edit, TestLab, lvslab, show, stdout, traces_of};

fn lv(lab: &TestLab, args: &[&str]) -> std::process::Output {
    let inv = lab.inventory.to_str().unwrap();
    let mut all = vec!["-i", inv];
    all.extend_from_slice(args);
    lvslab(&all)
}

fn changed(out: &std::process::Output) -> usize {
    stdout(out).matches(r#""status":"changed""#).count()
}

/// `cmd` on `node` until it prints `want` (up to 10 s): VRRP takes a few adverts.
fn wait_for(lab: &TestLab, node: &str, cmd: &str, want: &str) -> String {
    let mut last = String::new();
    for _ in 0..50 {
        last = stdout(&lab.ssh(node, cmd));
        if last.contains(want) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    last
}

#[test]
fn a_nat_lab_routes_through_a_floating_gateway_and_switches_cleanly() {
    let lab = TestLab::up_for("nat", 2);
    assert_eq!(lab.address("node2"), "198.18.1.12", "real servers inside");
    assert_eq!(lab.address("client"), "198.18.0.10", "the client outside");
    let inventory = std::fs::read_to_string(&lab.inventory).unwrap();
    assert!(
        inventory.contains("forwarding: nat")
            && inventory.contains("inside: 198.18.1.0/24")
            && inventory.contains("gateway: 198.18.1.254")
            && inventory.contains("inside_interface: eth1"),
        "{inventory}"
    );
    // Before lvslab: the real servers' default route is the network's router.
    let route = lab.ssh("node2", "ip -4 route show exact default");
    assert!(
        stdout(&route).contains("via 198.18.1.2 "),
        "{}",
        show(&route)
    );

    let up = lv(&lab, &["--json", "up", "--no-verify"]);
    assert_eq!(up.status.code(), Some(0), "{}", show(&up));
    let rerun = lv(&lab, &["--json", "up", "--no-verify"]);
    assert_eq!(changed(&rerun), 0, "{}", show(&rerun));
    let route = lab.ssh(
        "node2",
        "ip -4 route show exact default; ip -o addr show dev lo | grep -c 198.18.0.100",
    );
    assert_eq!(
        stdout(&route),
        "default via 198.18.1.254 dev eth0 \n0\n",
        "NAT: the gateway, no VIP"
    );
    let on_node1 = wait_for(
        &lab,
        "node1",
        "ip -o -4 addr show; cat /proc/sys/net/ipv4/ip_forward",
        "198.18.1.254",
    );
    assert!(
        on_node1.contains("198.18.0.100/24")
            && on_node1.contains("198.18.1.254/24")
            && on_node1.ends_with("1\n"),
        "node1 holds the VIP and the gateway, and forwards: {on_node1}"
    );

    // verify: the NAT probes that need no IPVS pass.
    let verify = lv(&lab, &["--json", "verify"]);
    let text = stdout(&verify);
    for probe in [
        "real server node2",
        "real server node3",
        "one VIP holder",
        "NAT gateway",
        "VRRP",
    ] {
        assert!(
            text.contains(&format!(r#""probe":"{probe}","pass":true"#)),
            "{probe}: {text}"
        );
    }

    // A failover moves the gateway with the VIP.
    lab.ssh("node1", "service keepalived stop");
    let on_node4 = wait_for(&lab, "node4", "ip -o -4 addr show", "198.18.1.254");
    assert!(
        on_node4.contains("198.18.0.100/24") && on_node4.contains("198.18.1.254/24"),
        "node4 took the VIP and the gateway: {on_node4}"
    );
    let up = lv(&lab, &["--json", "up", "--no-verify"]);
    assert_eq!(up.status.code(), Some(0), "{}", show(&up));
    wait_for(&lab, "node1", "ip -o -4 addr show", "198.18.1.254");

    // Switch to DR: nothing of NAT is left, DR's settings are there.
    let dr = lab.dir.join("inventory-dr.yml");
    std::fs::write(&dr, inventory.edit("forwarding: nat", "forwarding: dr")).unwrap();
    let dr = dr.to_str().unwrap();
    let switch = lvslab(&["-i", dr, "--json", "up", "--no-verify"]);
    assert_eq!(switch.status.code(), Some(0), "{}", show(&switch));
    let rs = lab.ssh(
        "node2",
        "ip -4 route show exact default; cat /proc/sys/net/ipv4/conf/all/arp_ignore; ip -o addr show dev lo | grep -c 198.18.0.100",
    );
    assert_eq!(
        stdout(&rs),
        "default via 198.18.1.2 dev eth0 \n1\n1\n",
        "the router again, DR's settings"
    );
    let d = wait_for(
        &lab,
        "node1",
        "ip -o -4 addr show | grep -c 198.18.1.254; cat /proc/sys/net/ipv4/ip_forward",
        "0\n0",
    );
    assert_eq!(d, "0\n0\n", "no gateway, no forwarding on node1");
    let rerun = lvslab(&["-i", dr, "--json", "up", "--no-verify"]);
    assert_eq!(changed(&rerun), 0, "{}", show(&rerun));

    // Back to NAT, then down: nothing of either is left.
    let back = lv(&lab, &["--json", "up", "--no-verify"]);
    assert_eq!(back.status.code(), Some(0), "{}", show(&back));
    let down = lv(&lab, &["--json", "down"]);
    assert_eq!(down.status.code(), Some(0), "{}", show(&down));
    assert!(
        stdout(&down).contains(r#""probe":"gateway nowhere","pass":true"#),
        "{}",
        show(&down)
    );
    let rs = lab.ssh("node2", "ip -4 route show exact default; ls /var/lib/lvslab/route-orig /var/lib/lvslab/sysctl-orig 2>/dev/null | grep -vc -e ':$' -e '^$'");
    assert_eq!(
        stdout(&rs),
        "default via 198.18.1.2 dev eth0 \n0\n",
        "{}",
        show(&rs)
    );
    let name = lab.name.clone();
    drop(lab);
    assert_eq!(
        traces_of(&name),
        Vec::<String>::new(),
        "the NAT lab's bridges and router are gone too"
    );
}

#[test]
fn a_nat_inventory_whose_client_shares_the_real_servers_network_is_refused() {
    let lab = TestLab::up_for("nat", 1);
    let text = std::fs::read_to_string(&lab.inventory)
        .unwrap()
        .edit("address: 198.18.0.10", "address: 198.18.1.10");
    let bad = lab.dir.join("bad.yml");
    std::fs::write(&bad, text).unwrap();
    let out = lvslab(&["-i", bad.to_str().unwrap(), "validate"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let said = common::stderr(&out);
    assert!(
        said.contains("bad.yml:") && said.contains("shares the real servers' network"),
        "{said}"
    );
}
