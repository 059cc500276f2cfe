//! Facts: what a host is, read in one round trip (read by [`Facts::parse`]).

use super::{Read, STATE_DIR};
use crate::facts::Facts;

/// Facts in one round trip. Prints `key=value` lines: os_id, os_like, os_version, pkg, init,
/// hostname, kernel, ipvs (loaded|available|missing), one `addr=<dev> <cidr>` per address, one
/// `link=<dev>` per network device, one `saved=sysctl-orig/<key>` or `saved=route-orig/<to>`
/// per original value lvslab keeps (what `state: restored` would put back), and one
/// `absent=<program>` per program of the hosts' list (`crate::programs`) it does not have.
pub fn facts() -> Read<Facts> {
    let line = format!(
        r#"[ -r /etc/os-release ] && . /etc/os-release; echo "os_id=${{ID:-unknown}}"; echo "os_like=${{ID_LIKE:-}}"; echo "os_version=${{VERSION_ID:-}}"
for p in apt-get dnf yum; do if command -v $p >/dev/null 2>&1; then echo "pkg=$p"; break; fi; done
if [ -d /run/systemd/system ]; then echo init=systemd; else echo init=sysv; fi
read -r h </proc/sys/kernel/hostname; read -r k </proc/sys/kernel/osrelease; echo "hostname=$h"; echo "kernel=$k"
if [ -e /proc/net/ip_vs ]; then echo ipvs=loaded; elif modprobe -n -q ip_vs 2>/dev/null; then echo ipvs=available; else echo ipvs=missing; fi
ip -o addr show 2>/dev/null | while read -r _ dev fam cidr _; do echo "addr=$dev $cidr"; done
for l in /sys/class/net/*; do echo "link=${{l##*/}}"; done
for f in {STATE_DIR}/sysctl-orig/* {STATE_DIR}/route-orig/*; do [ -e "$f" ] && echo "saved=${{f#{STATE_DIR}/}}"; done
PATH=$PATH:/usr/local/sbin:/usr/sbin:/sbin; for p in {programs}; do c=$(command -v $p 2>/dev/null) && [ -x "$c" ] || echo "absent=$p"; done; true"#,
        programs = host_programs().join(" ")
    );
    Read::new(line, |text| Ok(Facts::parse(text)))
}

/// The names of the programs hosts run (alternatives too): the facts say which are absent.
fn host_programs() -> Vec<&'static str> {
    crate::programs::of(crate::programs::Place::Host)
        .flat_map(|p| p.names())
        .collect()
}
