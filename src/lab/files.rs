//! Text of the files a lab node runs with: its init script, sshd_config and /etc/hosts.
//! Pure functions of the plan, so they can be read (and tested) in one place.

use std::path::Path;

use super::plan::{LabPlan, NodeSpec};

/// PID 1 of every node, run by `unshare` inside the node's network namespace with fresh mount,
/// UTS and pid namespaces. Arguments: node name, node dir, clean home dir, sshd binary.
pub fn init_script() -> String {
    SYSV_INIT
        .replace("@NET_BASE@", NET_BASE)
        .replace("@NET_RESET@", NET_RESET)
}

const SYSV_INIT: &str = r#"#!/bin/sh
# PID 1 of an lvslab lab node (written by `lvslab lab up`).
# Gives the node its own hostname, /etc, /var, /root, /run, /tmp and /dev/shm, runs sshd and what
# is enabled in the node's runlevel 2, and stays as the node's init. SIGUSR1 is the node's power
# cut (`lvslab drill reboot`): every process is killed, the network namespace loses what was set
# at runtime (back to what `lab up` made: addresses, routes, devices, kernel settings, IPVS),
# the tmpfs mounts start empty, and the node boots again from its disk (its /etc, /var, /root).
set -u
node=$1 dir=$2 home=$3 sshd=$4

echo "$node" > /proc/sys/kernel/hostname

# First start: the node's runlevel directories start empty (whiteouts over this machine's
# links), so only what is enabled on the node starts at its boot.
if [ ! -e "$dir/rc-cleared" ]; then
    for d in /etc/rc[0-6S].d; do
        [ -d "$d" ] || continue
        u="$dir/upper/etc/${d#/etc/}"
        mkdir -p "$u"
        for f in "$d"/*; do
            if [ -e "$f" ] || [ -L "$f" ]; then mknod "$u/${f##*/}" c 0 0; fi
        done
    done
    : > "$dir/rc-cleared"
fi

@NET_BASE@# /root first and /var last: the upper dirs live under /var, so they must be resolved
# before /var itself is overlaid. /root's lower layer is a stock home, not the machine's /root.
overlay() {
    mount -t overlay overlay -o "lowerdir=$1,upperdir=$dir/upper/$2,workdir=$dir/work/$2" "/$2"
}
overlay "$home" root
overlay /etc etc
overlay /var var

boot() {
    mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /run
    mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /tmp
    mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /dev/shm
    mkdir -p -m 0755 /run/sshd
    mkdir -p -m 1777 /run/lock
    : > /run/lvslab-lab-node
    "$sshd" -D -e -f "$dir/sshd_config" </dev/null &
    sshd_pid=$!
    # What is enabled starts, in order, as sysv-rc starts runlevel 2.
    for s in /etc/rc2.d/S*; do
        [ -x "$s" ] && "$s" start </dev/null
    done
    : > /run/lvslab-node-booted
    echo "lvslab-node $node: up"
}

@NET_RESET@power_cut() {
    echo "lvslab-node $node: power cut"
    kill -KILL -1 2>/dev/null
    tries=40
    while [ $tries -gt 0 ]; do
        others=0
        for p in /proc/[0-9]*; do
            [ "${p#/proc/}" = 1 ] && continue
            [ "$(cut -d' ' -f3 "$p/stat" 2>/dev/null)" = Z ] && continue
            [ -e "$p/stat" ] && others=1
        done
        [ $others = 0 ] && break
        tries=$((tries - 1))
        sleep 0.05
    done
    umount -l /dev/shm /tmp /run 2>/dev/null
    net_reset
}

# The node lives as long as its sshd (as when sshd was PID 1); waiting on it leaves no process
# of ours for a user's pgrep to find.
cut=0
sshd_pid=
trap 'cut=1' USR1
boot
while :; do
    wait "$sshd_pid"
    if [ $cut = 1 ]; then
        cut=0
        power_cut
        boot
    elif ! kill -0 "$sshd_pid" 2>/dev/null; then
        echo "lvslab-node $node: sshd ended"
        exit 1
    fi
done
"#;

/// The first start of a node records the network as the lab made it (what a power cut goes
/// back to); shared by both inits.
const NET_BASE: &str = r#"# First start: the network as the lab made it, what a power cut goes back to.
if [ ! -e "$dir/net-base.sysctl" ]; then
    ip -o addr show | awk '{print $2, $4}' > "$dir/net-base.addr"
    ip route show > "$dir/net-base.route"
    ip -o link show | awk -F': ' '{print $2}' | cut -d@ -f1 > "$dir/net-base.link"
    sysctl -a -r '^net\.ipv4\.' 2>/dev/null > "$dir/net-base.sysctl"
fi

"#;

/// `net_reset`: back to the recorded network, as a power cut leaves a host's kernel.
const NET_RESET: &str = r#"# Back to the network `lab up` made, as a power cut leaves a host's kernel.
net_reset() {
    ip neigh flush all 2>/dev/null
    ip -o addr show | awk '{print $2, $4}' | while read -r dev cidr; do
        grep -qxF "$dev $cidr" "$dir/net-base.addr" || ip addr del "$cidr" dev "$dev" 2>/dev/null
    done
    ip route show | while read -r r; do
        grep -qxF "$r" "$dir/net-base.route" || ip route del $r 2>/dev/null
    done
    while read -r r; do ip route replace $r 2>/dev/null; done < "$dir/net-base.route"
    ip -o link show | awk -F': ' '{print $2}' | cut -d@ -f1 | while read -r l; do
        grep -qxF "$l" "$dir/net-base.link" || ip link set dev "$l" down 2>/dev/null
    done
    sysctl -q -p "$dir/net-base.sysctl" >/dev/null 2>&1
    for c in /proc/sys/net/ipv4/conf/*; do
        grep -q "^net.ipv4.conf.${c##*/}\." "$dir/net-base.sysctl" && continue
        for k in rp_filter arp_ignore arp_announce; do
            cat "/proc/sys/net/ipv4/conf/default/$k" > "$c/$k"
        done
    done
    if command -v ipvsadm >/dev/null; then ipvsadm -C 2>/dev/null; fi
}

"#;

/// The keeper of a systemd node, run by `unshare --mount` inside the node's network namespace.
/// Arguments: node name, node dir, network namespace name. The node's disk is an overlay of this
/// machine's root tree (its upper layer on a tmpfs that lives as long as the keeper);
/// systemd-nspawn boots it in the node's network namespace. `systemctl reboot` in the node ends
/// nspawn with 133: the network namespace loses what was set at runtime and the node boots again
/// from its disk. Any other end ends the node.
pub fn systemd_node_script() -> String {
    SYSTEMD_NODE
        .replace("@NET_BASE@", NET_BASE)
        .replace("@NET_RESET@", NET_RESET)
}

const SYSTEMD_NODE: &str = r#"#!/bin/sh
# Keeper of an lvslab lab node booted by systemd (written by `lvslab lab up --init systemd`).
set -u
node=$1 dir=$2 namespace=$3
root=$dir/root

# The node's disk: this machine's tree under an upper layer of its own. The upper layer sits on
# a tmpfs of its own (an overlay refuses an upper layer inside its lower one).
mkdir -p "$dir/disk" "$root"
mount -t tmpfs -o mode=0755 tmpfs "$dir/disk"
mkdir -p "$dir/disk/upper" "$dir/disk/work"
mount -t overlay overlay -o "lowerdir=/,upperdir=$dir/disk/upper,workdir=$dir/disk/work" "$root" || exit 1

# What the lab gives the node (host name, hosts, sshd_config, the login key), then only sshd
# and the lab's boot mark enabled: what packages enabled at install time starts when lvslab
# enables it.
cp -a "$dir/seed/." "$root/"
for unit in "$root"/etc/systemd/system/multi-user.target.wants/*; do
    [ "${unit##*/}" = ssh.service ] || rm -f "$unit"
done
mkdir -p "$root/etc/systemd/system/multi-user.target.wants"
ln -sf /etc/systemd/system/lvslab-node-booted.service \
    "$root/etc/systemd/system/multi-user.target.wants/lvslab-node-booted.service"

@NET_BASE@
@NET_RESET@
# `ip netns exec` gave us a fresh /sys: the cgroup tree again, and a cgroup of the node's own
# that nspawn keeps (no systemd outside to ask for one).
mountpoint -q /sys/fs/cgroup || mount -t cgroup2 cgroup2 /sys/fs/cgroup || exit 1
# The node weighs on the CPU as one machine, whatever the number of its processes: a node that
# boots (systemd starting dozens at once) takes its share, not the CPU of every other node (in
# an emulated VM the client's requests waited seconds while a director booted).
grep -qw cpu /sys/fs/cgroup/cgroup.subtree_control || echo +cpu > /sys/fs/cgroup/cgroup.subtree_control
cgroup=/sys/fs/cgroup/lvslab.$namespace.$$
mkdir -p "$cgroup" && echo $$ > "$cgroup/cgroup.procs" || exit 1

while :; do
    echo "lvslab-node $node: boot"
    # /proc/sys/net writable: nspawn does that for a network of its own, not for one it was
    # given; IPVS wants CAP_NET_ADMIN in the bounding set.
    SYSTEMD_NSPAWN_API_VFS_WRITABLE=network systemd-nspawn --quiet --boot --register=no --keep-unit --directory="$root" \
        --machine="$node" --network-namespace-path="/run/netns/$namespace" \
        --bind-ro="$dir" --link-journal=no --capability=CAP_NET_ADMIN --console=passive </dev/null
    status=$?
    [ $status = 133 ] || { echo "lvslab-node $node: ended ($status)"; exit $status; }
    echo "lvslab-node $node: reboot"
    net_reset
done
"#;

/// The unit that marks the end of a systemd node's boot (`/run/lvslab-node-booted`, as the SysV
/// init does): after everything multi-user.target pulled in has started.
pub const BOOTED_UNIT: &str = "[Unit]\n\
Description=lvslab lab node: booted\n\
DefaultDependencies=no\n\
After=multi-user.target\n\
\n\
[Service]\n\
Type=oneshot\n\
ExecStart=/bin/touch /run/lvslab-node-booted\n\
\n\
[Install]\n\
WantedBy=multi-user.target\n";

/// sshd for one node: only on the node's address, only key logins, enough sessions and
/// unauthenticated connections for a parallel tool.
pub fn sshd_config(node: &NodeSpec, host_key: &Path, sftp_server: &Path) -> String {
    format!(
        "# sshd of lab node {name} (written by `lvslab lab up`)\n\
         ListenAddress {address}\n\
         Port 22\n\
         HostKey {host_key}\n\
         PidFile /run/sshd.pid\n\
         PermitRootLogin prohibit-password\n\
         PasswordAuthentication no\n\
         KbdInteractiveAuthentication no\n\
         UsePAM no\n\
         AuthorizedKeysFile .ssh/authorized_keys\n\
         Subsystem sftp {sftp}\n\
         MaxSessions 16\n\
         MaxStartups 100:30:200\n\
         UseDNS no\n\
         PrintMotd no\n\
         AcceptEnv LANG LC_*\n",
        name = node.name,
        address = node.address,
        host_key = host_key.display(),
        sftp = sftp_server.display(),
    )
}

/// The node's /etc/hosts: localhost and every lab host by name.
pub fn etc_hosts(plan: &LabPlan, node: &NodeSpec) -> String {
    let mut text = format!(
        "127.0.0.1\tlocalhost\n127.0.1.1\t{}\n::1\tlocalhost ip6-localhost ip6-loopback\n",
        node.name
    );
    for other in plan.hosts() {
        text.push_str(&format!("{}\t{}\n", other.address, other.name));
    }
    text
}

/// One known_hosts line per node: the node's address and its host key (`type base64 [comment]`).
pub fn known_hosts<'a>(entries: impl IntoIterator<Item = (&'a NodeSpec, &'a str)>) -> String {
    entries
        .into_iter()
        .map(|(node, public_key)| {
            let mut fields = public_key.split_whitespace();
            let kind = fields.next().unwrap_or_default();
            let key = fields.next().unwrap_or_default();
            format!("{} {kind} {key} {}\n", node.address, node.name)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sshd_listens_on_the_node_only_and_takes_keys_only() {
        let plan = LabPlan::new("t", 2, crate::lvs::Forwarding::Dr).unwrap();
        let node = plan.node("node2").unwrap();
        let text = sshd_config(node, Path::new("/k"), Path::new("/sftp"));
        for line in [
            "ListenAddress 198.18.0.12",
            "HostKey /k",
            "PasswordAuthentication no",
            "UsePAM no",
            "MaxSessions 16",
            "MaxStartups 100:30:200",
            "Subsystem sftp /sftp",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
    }

    #[test]
    fn both_inits_share_the_network_reset_and_the_systemd_keeper_boots_in_the_node_namespace() {
        let sysv = init_script();
        let systemd = systemd_node_script();
        for text in [&sysv, &systemd] {
            assert!(!text.contains("@NET_"), "{text}");
            assert!(text.contains("\nnet_reset() {\n"), "{text}");
            assert!(text.contains("sysctl -a -r '^net\\.ipv4\\.'"), "{text}");
            assert!(text.contains("ipvsadm -C"), "{text}");
        }
        assert!(sysv.contains("trap 'cut=1' USR1"));
        for part in [
            "--network-namespace-path=\"/run/netns/$namespace\"",
            "--capability=CAP_NET_ADMIN",
            "SYSTEMD_NSPAWN_API_VFS_WRITABLE=network",
            "[ $status = 133 ] ||",
            "lowerdir=/,upperdir=$dir/disk/upper",
            "cgroup=/sys/fs/cgroup/lvslab.$namespace.$$",
            "echo +cpu > /sys/fs/cgroup/cgroup.subtree_control",
        ] {
            assert!(systemd.contains(part), "{part} missing in\n{systemd}");
        }
        // Reset only between boots, after nspawn ended with a reboot.
        let reboot = systemd.find("[ $status = 133 ]").unwrap_or(0);
        assert!(systemd[reboot..].contains("    net_reset\n"));
    }

    #[test]
    fn known_hosts_names_addresses() {
        let plan = LabPlan::new("t", 2, crate::lvs::Forwarding::Dr).unwrap();
        let node = plan.node("node3").unwrap();
        let text = known_hosts([(node, "ssh-ed25519 AAAAC3Nza node3\n")]);
        assert_eq!(text, "198.18.0.13 ssh-ed25519 AAAAC3Nza node3\n");
    }
}
