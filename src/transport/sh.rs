//! Every command line lvslab runs on a host is built here, so quoting is audited in one file.
//! Values from inventories and playbooks only ever reach a shell through [`quote`].
//!
//! Commands are POSIX `sh`; each documents what it prints, and the module that calls it parses
//! exactly that.

use std::borrow::Cow;

use crate::lvs::names::{LOOPBACK, TUNNEL};

/// Where lvslab keeps what it must remember on a host (original sysctl values, ...).
pub const STATE_DIR: &str = "/var/lib/lvslab";
/// lvslab's own sysctl file: only the keys lvslab set, nothing else.
pub const SYSCTL_FILE: &str = "/etc/sysctl.d/90-lvslab.conf";
/// What lvslab set at runtime (addresses, devices, routes, manual IPVS rules), one file per
/// setting holding the command that sets it again; `lvslab-boot` runs them at boot.
pub const BOOT_DIR: &str = "/etc/lvslab-boot.d";
/// The script that re-applies [`BOOT_DIR`] and [`SYSCTL_FILE`] at boot, and the name of the
/// systemd unit or init script that runs it.
pub const BOOT_SCRIPT: &str = "/usr/local/sbin/lvslab-boot";
pub const BOOT_SERVICE: &str = "lvslab-boot";

/// Quote one word for `sh`. Words of safe characters stay as they are (readable logs).
pub fn quote(word: &str) -> Cow<'_, str> {
    let safe = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c));
    if safe {
        Cow::Borrowed(word)
    } else {
        Cow::Owned(format!("'{}'", word.replace('\'', r"'\''")))
    }
}

/// A command and its arguments, each quoted.
pub fn argv<S: AsRef<str>>(words: &[S]) -> String {
    words
        .iter()
        .map(|w| quote(w.as_ref()).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Run a command line as root through sudo (no password prompt: fail instead of hanging). The
/// line is an argument of sudo, so it shows in the host's process list: only for lvslab's own
/// lines that hold no secret (uploads, ending a command); see [`as_root_from_stdin`].
pub fn sudo(command: &str) -> String {
    format!("sudo -n -- sh -c {}", quote(command))
}

/// Run a command line as root through sudo with the line on sudo's stdin (a here-document
/// ended by `delimiter`, which the line must not hold as a line of its own): no argument of any
/// process shows it, so a secret in it stays out of the host's process list.
pub fn as_root_from_stdin(command: &str, delimiter: &str) -> String {
    format!("sudo -n -- /bin/sh -s <<'{delimiter}'\n{command}\n{delimiter}")
}

/// The long-lived shell of a connection: prints its pid (the leader of the session sshd made for
/// it, so everything a command starts can be ended with [`kill_session`]), then reads commands.
pub fn session_shell() -> String {
    format!("exec /bin/sh -c 'echo $$; {}'", super::framing::START)
}

/// Ends every process of session `pid` (a command that timed out and all it started).
pub fn kill_session(pid: u32) -> String {
    format!("pkill -KILL -s {pid}")
}

/// Exits 0 when a TCP connection to `host`:`port` opens (bash's /dev/tcp; `host` is an address).
pub fn tcp_open(host: std::net::IpAddr, port: u16) -> String {
    format!(
        "bash -c {}",
        quote(&format!("exec 3<>/dev/tcp/{host}/{port}"))
    )
}

/// Facts in one round trip. Prints `key=value` lines: os_id, os_like, os_version, pkg, init,
/// hostname, kernel, ipvs (loaded|available|missing), one `addr=<dev> <cidr>` per address, one
/// `link=<dev>` per network device, one `saved=sysctl-orig/<key>` or `saved=route-orig/<to>`
/// per original value lvslab keeps (what `state: restored` would put back), and one
/// `absent=<program>` per program of the hosts' list (`crate::programs`) it does not have.
pub fn facts() -> String {
    format!(
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
    )
}

/// The names of the programs hosts run (alternatives too): the facts say which are absent.
fn host_programs() -> Vec<&'static str> {
    crate::programs::of(crate::programs::Place::Host)
        .flat_map(|p| p.names())
        .collect()
}

// ---- files ------------------------------------------------------------------------------

/// Prints `absent`, `notafile`, or `<mode octal> <owner>:<group> <sha256> -` of a regular file.
pub fn file_stat(path: &str) -> String {
    let p = quote(path);
    format!(
        "if [ -f {p} ]; then printf '%s ' \"$(stat -c '%a %U:%G' {p})\"; sha256sum < {p}; elif [ -e {p} ]; then echo notafile; else echo absent; fi"
    )
}

/// Prints the file's content (for diffs).
pub fn file_read(path: &str) -> String {
    format!("cat {}", quote(path))
}

/// Write stdin to `path` atomically: a private temp file beside it (mktemp: 0600, a name no one
/// can plant), mode and owner set (the task's, else the existing file's, else 0644 and the
/// login's), the optional validation command run on it (`%s` stands for its path), its data
/// synced, then renamed over `path`. The previous version is kept as `<path>.lvslab-prev`,
/// copied the same way and never more readable than the new file. Renames replace whatever
/// is at the destination (a symlink too) instead of writing through it. A failed validation
/// leaves the old file untouched (exit 3).
pub fn file_write(
    path: &str,
    mode: Option<&str>,
    owner: Option<&str>,
    validate: Option<&str>,
) -> String {
    let p = quote(path);
    let mut s = format!(
        "set -e; p={p}; d=$(dirname \"$p\"); mkdir -p \"$d\"; b=; \
         t=$(mktemp \"$d/.lvslab.XXXXXX\"); trap 'rm -f \"$t\" ${{b:+\"$b\"}}' EXIT; cat > \"$t\"; "
    );
    match mode {
        Some(m) => s.push_str(&format!("chmod {} \"$t\"; ", quote(m))),
        None => s.push_str(
            "if [ -f \"$p\" ]; then chmod \"$(stat -c %a \"$p\")\" \"$t\"; else chmod 644 \"$t\"; fi; ",
        ),
    }
    match owner {
        Some(o) => s.push_str(&format!("chown {} \"$t\"; ", quote(o))),
        None => s.push_str(
            "if [ -f \"$p\" ]; then chown \"$(stat -c %u:%g \"$p\")\" \"$t\" 2>/dev/null || true; fi; ",
        ),
    }
    if let Some(v) = validate {
        // The validation command is the playbook author's own shell line; only the path is ours.
        let v = v.replace("%s", "\"$t\"");
        s.push_str(&format!(
            "if ! out=$( {v} 2>&1 ); then echo \"validation failed: $out\" >&2; exit 3; fi; "
        ));
    }
    s.push_str(
        "sync \"$t\" 2>/dev/null || sync; \
         if [ -f \"$p\" ]; then b=$(mktemp \"$d/.lvslab.XXXXXX\"); cat \"$p\" > \"$b\"; \
         chmod \"$(printf '%o' $(( 0$(stat -c %a \"$p\") & 0$(stat -c %a \"$t\") )))\" \"$b\"; \
         chown \"$(stat -c %u:%g \"$p\")\" \"$b\" 2>/dev/null || true; \
         sync \"$b\" 2>/dev/null || true; mv -fT \"$b\" \"$p.lvslab-prev\"; fi; \
         mv -fT \"$t\" \"$p\"; trap - EXIT",
    );
    s
}

/// Mode and owner of an existing file (the ones given).
pub fn file_chmod_chown(path: &str, mode: Option<&str>, owner: Option<&str>) -> String {
    let mut steps = Vec::new();
    if let Some(m) = mode {
        steps.push(argv(&["chmod", m, "--", path]));
    }
    if let Some(o) = owner {
        steps.push(argv(&["chown", o, "--", path]));
    }
    if steps.is_empty() {
        steps.push("true".into());
    }
    steps.join(" && ")
}

/// Prints `absent`, `file`, `directory` or `other`.
pub fn path_kind(path: &str) -> String {
    let p = quote(path);
    format!(
        "if [ -d {p} ]; then echo directory; elif [ -f {p} ]; then echo file; elif [ -e {p} ] || [ -L {p} ]; then echo other; else echo absent; fi"
    )
}

pub fn remove_path(path: &str) -> String {
    format!("rm -rf -- {}", quote(path))
}

pub fn make_dir(path: &str, mode: &str) -> String {
    format!(
        "mkdir -p -- {p} && chmod {} {p}",
        quote(mode),
        p = quote(path)
    )
}

/// Exit 0 when the path exists.
pub fn exists(path: &str) -> String {
    format!("[ -e {} ]", quote(path))
}

// ---- sysctl -----------------------------------------------------------------------------

fn sysctl_proc_path(key: &str) -> String {
    format!("/proc/sys/{}", key.replace('.', "/"))
}

fn sysctl_orig_path(key: &str) -> String {
    format!("{STATE_DIR}/sysctl-orig/{key}")
}

/// Prints three lines: the runtime value (or `<missing>`), the value in lvslab's sysctl file
/// (or `<none>`), and the original value lvslab saved before its first change (or `<none>`).
pub fn sysctl_query(key: &str) -> String {
    let proc_path = quote_owned(&sysctl_proc_path(key));
    let orig = quote_owned(&sysctl_orig_path(key));
    // Shell builtins only: this runs for every sysctl task of every host.
    format!(
        "if [ -r {proc_path} ]; then read -r v < {proc_path}; echo \"$v\"; else echo '<missing>'; fi; \
         v='<none>'; if [ -f {SYSCTL_FILE} ]; then while IFS= read -r l; do case \"$l\" in {key}=*|'{key} '*=*) v=${{l#*=}}; v=${{v# }};; esac; done < {SYSCTL_FILE}; fi; echo \"$v\"; \
         if [ -f {orig} ]; then read -r o < {orig}; echo \"$o\"; else echo '<none>'; fi"
    )
}

/// Set the runtime value, save the original once, and persist the key in lvslab's file.
pub fn sysctl_set(key: &str, value: &str) -> String {
    let proc_path = quote_owned(&sysctl_proc_path(key));
    let orig = quote_owned(&sysctl_orig_path(key));
    let k = regex_escape(key);
    format!(
        "set -e; mkdir -p {STATE_DIR}/sysctl-orig; [ -f {orig} ] || cat {proc_path} > {orig}; \
         echo {v} > {proc_path}; touch {SYSCTL_FILE}; \
         sed -i '/^{k} *=/d' {SYSCTL_FILE}; echo {line} >> {SYSCTL_FILE}",
        v = quote(value),
        line = quote_owned(&format!("{key} = {value}")),
    )
}

/// Put back the saved original value, drop the key from lvslab's file (the file too when empty).
pub fn sysctl_restore(key: &str) -> String {
    let proc_path = quote_owned(&sysctl_proc_path(key));
    let orig = quote_owned(&sysctl_orig_path(key));
    let k = regex_escape(key);
    format!(
        "set -e; if [ -f {orig} ]; then {{ cat {orig} > {proc_path}; }} 2>/dev/null || [ ! -e {proc_path} ]; rm -f {orig}; fi; \
         if [ -f {SYSCTL_FILE} ]; then sed -i '/^{k} *=/d' {SYSCTL_FILE}; [ -s {SYSCTL_FILE} ] || rm -f {SYSCTL_FILE}; fi"
    )
}

// ---- addresses --------------------------------------------------------------------------

/// Prints one line per address on the device: `<cidr> <label>` (label may be empty);
/// exit 1 when the device does not exist.
pub fn address_list(dev: &str) -> String {
    let d = quote(dev);
    // `ip -o` glues the label to the line-continuation backslash: `... scope global lo:3\`.
    format!(
        "ip -o addr show dev {d} | awk '{{l=\"\"; for(i=5;i<=NF;i++) if($i ~ /\\\\$/){{l=substr($i,1,length($i)-1); break}}; print $4, l}}'"
    )
}

pub fn address_add(dev: &str, cidr: &str, label: Option<&str>) -> String {
    let mut words = vec!["ip", "addr", "add", cidr, "dev", dev];
    if let Some(l) = label {
        words.extend(["label", l]);
    }
    argv(&words)
}

/// Tells the neighbours that `ip` (IPv4) is now on `dev`: one gratuitous ARP, as keepalived sends
/// when it takes a VIP, so no client keeps sending to the MAC that held it before. Only where the
/// kernel does ARP on the card (not lo, not an IP-in-IP tunnel: LOOPBACK or NOARP). Best effort:
/// a host without arping keeps the address, its neighbours learn it when their entry ages.
pub fn address_announce(dev: &str, ip: &str) -> String {
    let d = quote(dev);
    format!(
        "if command -v arping >/dev/null 2>&1 && ! ip -o link show dev {d} | grep -q -e NOARP -e LOOPBACK; \
         then arping -q -U -c 1 -I {d} {} || true; fi",
        quote(ip)
    )
}

pub fn address_del(dev: &str, cidr: &str) -> String {
    argv(&["ip", "addr", "del", cidr, "dev", dev])
}

/// A real server's ARP settings and where it holds `vip`: first line `<all arp_ignore>
/// <IFACE arp_ignore> <all arp_announce> <IFACE arp_announce>`, then [`address_holders`]' lines.
pub fn real_server_state(iface: &str, vip: &str) -> String {
    format!(
        "for k in arp_ignore arp_announce; do printf '%s ' $(cat /proc/sys/net/ipv4/conf/all/$k) $(cat /proc/sys/net/ipv4/conf/{}/$k); done; echo; \
         printf '%s %s\\n' \"$(cat /proc/sys/net/ipv4/conf/all/rp_filter)\" \"$(cat /proc/sys/net/ipv4/conf/{TUNNEL}/rp_filter 2>/dev/null || echo -)\"; \
         r=$(ip -4 route show exact default | head -n 1); echo \"route ${{r:-none}}\"; \
         if ip -o link show dev {TUNNEL} 2>/dev/null | grep -q '[<,]UP[,>]'; then echo 'tunl0 up'; else echo 'tunl0 down'; fi; {}",
        quote(iface),
        address_holders(vip)
    )
}

/// The counters of one virtual service (`tcp 198.18.0.100:80`): prints its line of
/// `ipvsadm -L -n --stats --exact` (`TCP 198.18.0.100:80 Conns InPkts OutPkts InBytes OutBytes`).
pub fn ipvs_service_stats(protocol_flag: &str, endpoint: &str) -> String {
    format!(
        "{} | sed -n 4p",
        argv(&[
            "ipvsadm",
            "-L",
            "-n",
            "--stats",
            "--exact",
            protocol_flag,
            endpoint
        ])
    )
}

/// A device's received packets (`/sys/class/net/DEV/statistics/rx_packets`), or 0 without it.
pub fn rx_packets(dev: &str) -> String {
    format!(
        "cat /sys/class/net/{}/statistics/rx_packets 2>/dev/null || echo 0",
        quote(dev)
    )
}

/// The client addresses of the requests in a web server's access log whose line holds `mark`:
/// `<count> <address>` lines (the log's first field is the client's address).
pub fn log_sources(log: &str, mark: &str) -> String {
    format!(
        "grep -F -- {} {} 2>/dev/null | awk '{{print $1}}' | sort | uniq -c",
        quote(mark),
        quote(log)
    )
}

/// The interface's MAC address.
pub fn mac_address(iface: &str) -> String {
    format!("cat /sys/class/net/{}/address", quote(iface))
}

/// What lvslab leaves on a host until `down`: prints the number of saved original sysctl
/// values and routes, then `file` or `nofile` for lvslab's sysctl file, then the number of
/// boot entries and `boot` or `noboot` for the boot script and its unit or init script.
pub fn lvslab_leftovers() -> String {
    format!(
        "ls {STATE_DIR}/sysctl-orig {STATE_DIR}/route-orig 2>/dev/null | grep -vc -e '^$' -e ':$'; [ -e {SYSCTL_FILE} ] && echo file || echo nofile; \
         ls {BOOT_DIR} 2>/dev/null | grep -vc '^$'; \
         if [ -e {BOOT_SCRIPT} ] || [ -e /etc/systemd/system/{BOOT_SERVICE}.service ] || [ -e /etc/init.d/{BOOT_SERVICE} ]; then echo boot; else echo noboot; fi"
    )
}

// ---- what lvslab re-applies at boot -----------------------------------------------------

/// The boot entry `name`'s content (nothing when there is none).
pub fn boot_entry_read(name: &str) -> String {
    format!(
        "cat {} 2>/dev/null || true",
        quote_owned(&format!("{BOOT_DIR}/{name}"))
    )
}

/// The boot entries whose names start with `prefix`, one per line.
pub fn boot_entries_list(prefix: &str) -> String {
    format!(
        "cd {BOOT_DIR} 2>/dev/null && for f in {}*; do [ -e \"$f\" ] && echo \"$f\"; done; true",
        quote(prefix)
    )
}

/// Writes the boot entry `name` from stdin (replaced whole, never half written).
pub fn boot_entry_write(name: &str) -> String {
    let path = quote_owned(&format!("{BOOT_DIR}/{name}"));
    let tmp = quote_owned(&format!("{BOOT_DIR}/.{name}.tmp"));
    format!("set -e; mkdir -p {BOOT_DIR}; cat > {tmp}; chmod 0644 {tmp}; mv -f {tmp} {path}")
}

/// Removes the boot entries named (none: nothing to do).
pub fn boot_entries_remove(names: &[String]) -> String {
    let paths: Vec<String> = names
        .iter()
        .map(|n| quote_owned(&format!("{BOOT_DIR}/{n}")))
        .collect();
    format!("rm -f -- {}", paths.join(" "))
}

/// A word fit for a boot entry's file name: what is not `[A-Za-z0-9.-]` becomes `_`.
pub fn boot_entry_word(word: &str) -> String {
    word.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// An address set again at boot (`replace`: no error when it is there already).
pub fn boot_address(dev: &str, cidr: &str, label: Option<&str>) -> String {
    let mut words = vec!["ip", "addr", "replace", cidr, "dev", dev];
    if let Some(l) = label {
        words.extend(["label", l]);
    }
    argv(&words)
}

/// A route set again at boot.
pub fn boot_route(to: &str, via: &str, dev: Option<&str>) -> String {
    let mut words = vec!["ip", "route", "replace", to, "via", via];
    if let Some(d) = dev {
        words.extend(["dev", d]);
    }
    argv(&words)
}

/// A device brought up again at boot, its module loaded first.
pub fn boot_link(dev: &str, module: Option<&str>) -> String {
    match module {
        Some(m) => format!("{}; {}", load_module(m), link_set(dev, true)),
        None => link_set(dev, true),
    }
}

/// Which devices hold an address (any prefix). Prints `<dev> <cidr>` lines.
pub fn address_holders(ip: &str) -> String {
    format!(
        "ip -o addr show | awk -v ip={} '{{split($4,a,\"/\"); if (a[1]==ip) print $2, $4}}'",
        quote(ip)
    )
}

// ---- routes and devices -----------------------------------------------------------------

fn route_orig_path(to: &str) -> String {
    format!("{STATE_DIR}/route-orig/{}", to.replace('/', "_"))
}

/// Prints two lines: the route to `to` (`default` or a network) as `ip route` shows it (or
/// `<none>`), and the route lvslab saved before its first change (or `<none>`; an empty line
/// when there was no route then).
pub fn route_query(to: &str) -> String {
    let orig = quote_owned(&route_orig_path(to));
    format!(
        "r=$(ip -4 route show exact {t} | head -n 1); echo \"${{r:-<none>}}\"; \
         if [ -f {orig} ]; then cat {orig}; echo; else echo '<none>'; fi",
        t = quote(to)
    )
}

/// Saves the route to `to` once (its `via`/`dev`, or nothing), then replaces it.
pub fn route_set(to: &str, via: &str, dev: Option<&str>) -> String {
    let orig = quote_owned(&route_orig_path(to));
    let mut words = vec!["ip", "route", "replace", to, "via", via];
    if let Some(d) = dev {
        words.extend(["dev", d]);
    }
    format!(
        "set -e; mkdir -p {STATE_DIR}/route-orig; [ -f {orig} ] || ip -4 route show exact {t} | head -n 1 | \
         awk '{{o=\"\"; for(i=1;i<=NF;i++) if($i==\"via\"||$i==\"dev\") o=o\" \"$i\" \"$(i+1); print substr(o,2)}}' > {orig}; {}",
        argv(&words),
        t = quote(to)
    )
}

/// Puts back the saved route to `to` (or removes the route, if there was none), and forgets it.
pub fn route_restore(to: &str) -> String {
    let orig = quote_owned(&route_orig_path(to));
    format!(
        "set -e; if [ -f {orig} ]; then r=$(cat {orig}); \
         if [ -n \"$r\" ]; then ip route replace {t} $r; else ip route del {t} 2>/dev/null || true; fi; \
         rm -f {orig}; fi",
        t = quote(to)
    )
}

/// Prints `up`, `down` or `absent`.
pub fn link_state(dev: &str) -> String {
    let d = quote(dev);
    format!(
        "if [ ! -e /sys/class/net/{d} ]; then echo absent; elif ip -o link show dev {d} | grep -q '[<,]UP[,>]'; then echo up; else echo down; fi"
    )
}

pub fn link_set(dev: &str, up: bool) -> String {
    argv(&[
        "ip",
        "link",
        "set",
        "dev",
        dev,
        if up { "up" } else { "down" },
    ])
}

pub fn load_module(module: &str) -> String {
    argv(&["modprobe", module])
}

// ---- IPVS -------------------------------------------------------------------------------

/// The IPVS table in `ipvsadm -S -n` form (rules), exit 2 with a message when IPVS is missing.
pub fn ipvs_save() -> &'static str {
    "ipvsadm -S -n"
}

/// Whether ipvsadm's error says the kernel has no IPVS.
pub fn no_ipvs(stderr: &str) -> bool {
    stderr.contains("Protocol not available") || stderr.contains("Can't initialize ipvs")
}

/// One ipvsadm invocation per rule, stopping at the first failure.
pub fn ipvs_apply(rules: &[crate::lvs::ipvs::Rule]) -> String {
    rules
        .iter()
        .map(|r| {
            let mut w = vec!["ipvsadm".to_string()];
            w.extend(r.argv());
            argv(&w)
        })
        .collect::<Vec<_>>()
        .join(" && ")
}

/// Table with counters and the connection table, for status and verify.
pub fn ipvs_list_stats() -> &'static str {
    "ipvsadm -L -n --stats"
}

pub fn ipvs_connections() -> &'static str {
    "ipvsadm -L -n -c"
}

// ---- packages ---------------------------------------------------------------------------

/// Prints the names of the packages that are NOT installed, one per line.
pub fn packages_missing(manager: &str, names: &[String]) -> String {
    let list = names
        .iter()
        .map(|n| quote(n).into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    match manager {
        // One query for all names; `ii ` is dpkg's "installed".
        "apt-get" => format!(
            "i=\" $(dpkg-query -W -f='${{Package}} ${{db:Status-Abbrev}}\\n' {list} 2>/dev/null | tr '\\n' ' ')\"; for p in {list}; do case \"$i\" in *\" $p ii \"*) ;; *) echo \"$p\";; esac; done"
        ),
        _ => format!("rpm -q {list} | sed -n 's/^package \\(.*\\) is not installed$/\\1/p'"),
    }
}

pub fn packages_install(manager: &str, names: &[String]) -> String {
    let mut w: Vec<String> = match manager {
        "apt-get" => vec![
            "env".into(),
            "DEBIAN_FRONTEND=noninteractive".into(),
            "apt-get".into(),
            "install".into(),
            "-y".into(),
            "-q".into(),
        ],
        m => vec![m.into(), "install".into(), "-y".into(), "-q".into()],
    };
    w.extend(names.iter().cloned());
    argv(&w)
}

pub fn packages_remove(manager: &str, names: &[String]) -> String {
    let mut w: Vec<String> = match manager {
        "apt-get" => vec![
            "env".into(),
            "DEBIAN_FRONTEND=noninteractive".into(),
            "apt-get".into(),
            "remove".into(),
            "-y".into(),
            "-q".into(),
        ],
        m => vec![m.into(), "remove".into(), "-y".into(), "-q".into()],
    };
    w.extend(names.iter().cloned());
    argv(&w)
}

// ---- services ---------------------------------------------------------------------------

/// Prints `running` or `stopped` (by process name: init scripts may claim success for a
/// daemon that died at once), then `enabled`, `disabled` or `unknown`.
pub fn service_query(init: &str, service: &str, process: &str) -> String {
    let s = quote(service);
    let enabled = if init == "systemd" {
        format!(
            "if systemctl is-enabled --quiet {s} 2>/dev/null; then echo enabled; else echo disabled; fi"
        )
    } else {
        format!(
            "e=unknown; [ -e /etc/init.d/{s} ] && e=disabled; for f in /etc/rc[2345].d/S*{s}; do [ -e \"$f\" ] && e=enabled; done; echo $e"
        )
    };
    format!(
        "if pgrep -x {} >/dev/null 2>&1; then echo running; else echo stopped; fi; {enabled}",
        quote(process)
    )
}

/// `action` is start, stop, restart or reload.
pub fn service_action(init: &str, service: &str, action: &str) -> String {
    if init == "systemd" {
        argv(&["systemctl", action, service])
    } else {
        argv(&["service", service, action])
    }
}

pub fn service_enable(init: &str, service: &str, enable: bool) -> String {
    match (init, enable) {
        ("systemd", true) => argv(&["systemctl", "enable", service]),
        ("systemd", false) => argv(&["systemctl", "disable", service]),
        (_, true) => format!(
            "if command -v update-rc.d >/dev/null; then update-rc.d {s} defaults; else chkconfig {s} on; fi",
            s = quote(service)
        ),
        (_, false) => format!(
            "if command -v update-rc.d >/dev/null; then update-rc.d {s} disable; else chkconfig {s} off; fi",
            s = quote(service)
        ),
    }
}

/// The pids of every process of that name, one per line (none: nothing printed, exit 0).
pub fn process_ids(process: &str) -> String {
    format!("pgrep -x {} || true", quote(process))
}

/// Exit 0 while a process of that name runs.
pub fn process_running(process: &str) -> String {
    format!("pgrep -x {} >/dev/null", quote(process))
}

/// Send a signal to every process of that name (SIGTERM lets keepalived drop its VIP).
pub fn process_signal(process: &str, signal: &str) -> String {
    format!("pkill -{} -x {}", quote(signal), quote(process))
}

// ---- probes -----------------------------------------------------------------------------

/// Send `count` HTTP GETs to `url` one after another; print one line per request:
/// `<http code> <client port> <curl's exit status> <body first line>` (code 000 when the
/// request failed).
pub fn http_probe(url: &str, count: u32, timeout_secs: u32) -> String {
    format!(
        "i=0; while [ $i -lt {count} ]; do i=$((i+1)); b=$(curl -s -m {timeout_secs} -w '\\n%{{http_code}} %{{local_port}}' {u} 2>/dev/null); e=$?; c=$(printf '%s' \"$b\" | tail -n 1); printf '%s %s %s\\n' \"${{c:-000 0}}\" \"$e\" \"$(printf '%s' \"$b\" | head -n 1)\"; done",
        u = quote(url)
    )
}

/// `requests` GETs of `url`, `concurrency` at once (each a curl of its own); prints one line per
/// request, `<http code> <seconds>`, then `wall <ms>` for the whole.
pub fn http_load(url: &str, requests: u32, concurrency: u32) -> String {
    let workers = concurrency.max(1);
    let per = requests.div_ceil(workers);
    format!(
        "s=$(date +%s%3N); i=0; while [ $i -lt {workers} ]; do i=$((i+1)); \
         ( j=0; while [ $j -lt {per} ]; do j=$((j+1)); curl -s -o /dev/null -m 5 -w '%{{http_code}} %{{time_total}}\\n' {u} || true; done ) & done; \
         wait; echo \"wall $(( $(date +%s%3N) - s ))\"",
        u = quote(url)
    )
}

/// A host's traffic so far: the rx bytes of every network card but lo (one line), their tx
/// bytes (another), then /proc/stat's `cpu` line (its 8th field is softirq time).
pub fn traffic_counters() -> &'static str {
    "for d in /sys/class/net/*; do [ \"${d##*/}\" = lo ] || printf '%s ' $(cat $d/statistics/rx_bytes); done; echo; \
     for d in /sys/class/net/*; do [ \"${d##*/}\" = lo ] || printf '%s ' $(cat $d/statistics/tx_bytes); done; echo; \
     head -n 1 /proc/stat"
}

// ---- drills ------------------------------------------------------------------------------

/// This host's clock, in ms since the epoch.
pub fn epoch_ms() -> &'static str {
    "date +%s%3N"
}

/// A drill's requests: one GET of `url` every `interval_ms`, each in the background (a slow one
/// does not hold up the next), until the file `stop` exists or `max_secs` have passed; one line
/// per request, `<start ms> <http code> <who> <end ms>` (who: the first word of the page).
pub fn drill_http_load(
    url: &str,
    interval_ms: u32,
    timeout_secs: u64,
    max_secs: u32,
    stop: &str,
) -> String {
    drill_load(
        &format!(
            "b=$(curl -s -m {timeout_secs} -w '\\n%{{http_code}}' {} 2>/dev/null); c=$(printf '%s' \"$b\" | tail -n 1); w=$(printf '%s' \"$b\" | head -n 1 | cut -d' ' -f1)",
            quote(url)
        ),
        interval_ms,
        max_secs,
        stop,
    )
}

/// The same with an ICMP echo to `vip` (code 200 when answered, `-` as who).
pub fn drill_ping_load(vip: &str, interval_ms: u32, max_secs: u32, stop: &str) -> String {
    drill_load(
        &format!(
            "if ping -n -c 1 -W 1 {} >/dev/null 2>&1; then c=200; else c=000; fi; w=-",
            quote(vip)
        ),
        interval_ms,
        max_secs,
        stop,
    )
}

fn drill_load(request: &str, interval_ms: u32, max_secs: u32, stop: &str) -> String {
    format!(
        "end=$(( $(date +%s%3N) + {ms} )); while [ ! -e {s} ] && [ $(date +%s%3N) -lt $end ]; do \
         t=$(date +%s%3N); ( {request}; echo \"$t ${{c:-000}} ${{w:--}} $(date +%s%3N)\" ) & \
         sleep {}.{:03}; done; wait",
        interval_ms / 1000,
        interval_ms % 1000,
        ms = u64::from(max_secs) * 1000,
        s = quote(stop),
    )
}

/// The client's view of `vip` until the file `stop` exists or `max_secs` have passed, as lines:
/// `N <ms> <MAC>` (or `-`): what the client's neighbour table holds for the VIP, four times a
/// second; `A <ms> <MAC>...`: the MACs that answered an ARP request for the VIP, about once a
/// second until the file `quiet` exists.
///
/// The requests are sent from `asker`, a macvlan link of its own in a network namespace of its
/// own (ended with the loop), from 0.0.0.0: the answers go to its MAC and nobody learns from
/// the requests, so the client's own entry ages as it would without the drill. The link is
/// made inside that namespace once it exists (never in the client's, where an early move would
/// have left it behind), and goes with it. Where no
/// macvlan can be made, a line `X` says the requests come from the client itself.
pub fn drill_arp_watch(
    iface: &str,
    vip: &str,
    max_secs: u32,
    stop: &str,
    quiet: &str,
    asker: &str,
) -> String {
    let ask_loop = |dev: &str, source: &str| {
        format!(
            "while [ ! -e {s} ] && [ ! -e {q} ] && [ $(date +%s%3N) -lt $end ]; do \
             t=$(date +%s%3N); m=$(arping -b -c 2 -w 1 -I {d} {source}{v} 2>/dev/null | sed -n 's/.*\\[\\([0-9A-Fa-f:]*\\)\\].*/\\1/p' | tr A-F a-f | sort -u | tr '\\n' ' '); \
             echo \"A $t $m\"; done",
            d = quote(dev),
            s = quote(stop),
            q = quote(quiet),
            v = quote(vip),
        )
    };
    let a = quote(asker);
    let private = format!(
        "end=$1; while ! ip link show {a} >/dev/null 2>&1; do [ $(date +%s%3N) -lt $end ] || exit 0; sleep 0.05; done; \
         ip link set {a} up; {}",
        ask_loop(asker, "-s 0.0.0.0 ")
    );
    format!(
        "end=$(( $(date +%s%3N) + {ms} )); \
         unshare --net sh -c {private} sh \"$end\" & p=$!; \
         me=$(readlink /proc/self/ns/net); while [ \"$(readlink /proc/$p/ns/net 2>/dev/null)\" = \"$me\" ]; do sleep 0.02; done; \
         if ! ip link add link {i} name {a} netns $p type macvlan mode bridge 2>/dev/null; then \
         kill $p 2>/dev/null; echo X; ( {own} ) & fi; \
         while [ ! -e {s} ] && [ $(date +%s%3N) -lt $end ]; do \
         t=$(date +%s%3N); e=$({entry}); echo \"N $t ${{e:--}}\"; sleep 0.25; done; wait",
        ms = u64::from(max_secs) * 1000,
        private = quote(&private),
        own = ask_loop(iface, ""),
        i = quote(iface),
        s = quote(stop),
        entry = neigh_lladdr(vip),
    )
}

/// The host's kernel adding or removing `vip`, as it happens, until the file `stop` exists or
/// `max_secs` have passed: `<ms> add|del <device>` lines.
pub fn drill_vip_events(vip: &str, max_secs: u32, stop: &str) -> String {
    format!(
        "end=$(( $(date +%s%3N) + {ms} )); \
         ( ip -o monitor address & p=$!; while [ ! -e {s} ] && [ $(date +%s%3N) -lt $end ]; do sleep 0.3; done; kill $p ) 2>/dev/null | \
         while read -r l; do case \"$l\" in *\" inet \"{v}/*) t=$(date +%s%3N); a=add; set -- $l; \
         if [ \"$1\" = Deleted ]; then a=del; shift; fi; echo \"$t $a $2\";; esac; done",
        ms = u64::from(max_secs) * 1000,
        s = quote(stop),
        v = quote(vip),
    )
}

/// A director's state for a drill's sampling: prints `<keepalived runs> <it is frozen> <holds
/// the VIP>` as 0/1 (the VIP on a device that holds it: [`crate::lvs::names::holds_vip_on`]).
pub fn director_sample(vip: &str) -> String {
    format!(
        "p=$(pgrep -x keepalived | head -n 1); r=0; f=0; if [ -n \"$p\" ]; then r=1; case $(ps -o stat= -p $p) in T*) f=1;; esac; fi; \
         h=$(ip -o addr show | awk -v ip={} '{{split($4,a,\"/\"); if (a[1]==ip && $2!=\"{LOOPBACK}\" && $2!=\"{TUNNEL}\") print 1}}' | head -n 1); echo \"$r $f ${{h:-0}}\"",
        quote(vip)
    )
}

/// Reboots the host half a second from now (so the command that asks returns first): an lvslab
/// lab node's power cut (SIGUSR1 to its init, see the lab's node init), else systemd's reboot,
/// else the init system's.
pub fn reboot_host() -> String {
    detached(
        "sleep 0.5; if [ -e /run/lvslab-lab-node ]; then kill -USR1 1; \
         elif [ -d /run/systemd/system ]; then systemctl reboot; else reboot; fi",
    )
}

/// Runs `script` on the host on its own (its own session, no input or output), so it goes on
/// when the connection cannot: a fault that cuts the host off undoes itself.
pub fn detached(script: &str) -> String {
    format!(
        "setsid sh -c {} </dev/null >/dev/null 2>&1 &",
        quote(script)
    )
}

/// Every process of that name stopped, then killed: all at once, so none can react to another's
/// death (a keepalived killed this way leaves its VIP behind: the seed's flaw).
pub fn kill_all_at_once(process: &str) -> String {
    format!(
        "p=$(pgrep -x {n}); [ -n \"$p\" ] && kill -STOP $p && kill -KILL $p",
        n = quote(process)
    )
}

/// Every process of that name frozen (SIGSTOP) for `secs`, then thawed; detached.
pub fn freeze_for(process: &str, secs: u32) -> String {
    detached(&format!(
        "p=$(pgrep -x {n}); kill -STOP $p; sleep {secs}; kill -CONT $p",
        n = quote(process)
    ))
}

/// Every process of that name frozen (SIGSTOP) until [`thaw`]: a server that accepts
/// connections (the kernel does) and never answers.
pub fn freeze(process: &str) -> String {
    format!("pkill -STOP -x {}", quote(process))
}

/// Exit 0 when no process of that name is frozen (stopped by a signal).
pub fn not_frozen(process: &str) -> String {
    format!(
        "for p in $(pgrep -x {}); do case $(ps -o stat= -p $p) in T*) exit 1;; esac; done; exit 0",
        quote(process)
    )
}

/// Every process of that name thawed (SIGCONT).
pub fn thaw(process: &str) -> String {
    format!("pkill -CONT -x {} || true", quote(process))
}

/// `iface` down for `secs`, then up again; detached (the host is cut off meanwhile).
pub fn link_down_for(iface: &str, secs: u32) -> String {
    let i = quote(iface);
    detached(&format!(
        "ip link set dev {i} down; sleep {secs}; ip link set dev {i} up"
    ))
}

/// `iface` up now.
pub fn link_up(iface: &str) -> String {
    format!("ip link set dev {} up", quote(iface))
}

/// Exit 0 when `iface` is administratively up.
pub fn link_is_up(iface: &str) -> String {
    format!("ip -o link show dev {} up | grep -q .", quote(iface))
}

/// tc's classic BPF (no action module needed): drop IPv4 protocol 112 (VRRP), pass the rest.
const DROP_VRRP: &str = "6,40 0 0 12,21 0 3 2048,48 0 0 23,21 0 1 112,6 0 0 2,6 0 0 0";

/// VRRP arriving on `iface` dropped for `secs` (an ingress filter), then let through again;
/// detached. Everything else still passes: a partition of VRRP alone.
pub fn block_vrrp_for(iface: &str, secs: u32) -> String {
    let i = quote(iface);
    detached(&format!(
        "tc qdisc add dev {i} ingress && tc filter add dev {i} parent ffff: protocol all prio 1 bpf da bytecode '{DROP_VRRP}'; \
         sleep {secs}; tc qdisc del dev {i} ingress"
    ))
}

/// The VRRP filter of [`block_vrrp_for`] removed now.
pub fn unblock_vrrp(iface: &str) -> String {
    format!(
        "tc qdisc del dev {} ingress 2>/dev/null || true",
        quote(iface)
    )
}

/// Whether VRRP is blocked on `iface` now: exit 0 while the ingress filter is there.
pub fn vrrp_blocked(iface: &str) -> String {
    format!(
        "tc qdisc show dev {} ingress | grep -q ingress",
        quote(iface)
    )
}

/// The MAC this host's neighbour table holds for `address` (nothing printed when it has none,
/// or only a failed entry).
pub fn neigh_lladdr(address: &str) -> String {
    format!(
        "ip neigh show to {} | awk '{{for (i = 1; i < NF; i++) if ($i == \"lladdr\") print tolower($(i + 1))}}' | head -n 1",
        quote(address)
    )
}

/// The client's ARP timers on `iface`: `base_reachable_time_ms delay_first_probe_time
/// ucast_solicit retrans_time_ms`.
pub fn neigh_timers(iface: &str) -> String {
    let d = format!("/proc/sys/net/ipv4/neigh/{}", quote(iface));
    format!(
        "cat {d}/base_reachable_time_ms {d}/delay_first_probe_time {d}/ucast_solicit {d}/retrans_time_ms | tr '\\n' ' '"
    )
}

/// Creates the (empty) file `path`: the stop flag of a drill's background loops.
pub fn touch(path: &str) -> String {
    format!(": > {}", quote(path))
}

/// Print the HTTP status code of one GET (000 when it failed).
pub fn http_status(url: &str, timeout_secs: u32) -> String {
    format!(
        "curl -s -o /dev/null -m {timeout_secs} -w '%{{http_code}}' {}",
        quote(url)
    )
}

/// ARP for an address from a device; prints the MAC of every distinct answer, one per line.
pub fn arp_probe(dev: &str, ip: &str, count: u32) -> String {
    format!(
        "arping -b -I {} -c {count} -w {} {} 2>/dev/null | sed -n 's/.*\\[\\([0-9A-Fa-f:]*\\)\\].*/\\1/p' | tr A-F a-f | sort -u",
        quote(dev),
        count + 1,
        quote(ip)
    )
}

/// keepalived's VRRP state as its data dump shows it, or by the VIP: prints `MASTER`/`BACKUP`/`FAULT`/`STOPPED`.
pub fn vrrp_state(vip: &str) -> String {
    format!(
        "if ! pgrep -x keepalived >/dev/null; then echo STOPPED; elif ip -o addr show | awk '{{split($4,a,\"/\"); print a[1], $2}}' | grep -v -e ' {LOOPBACK}$' -e ' {TUNNEL}$' | grep -q '^{} '; then echo MASTER; else echo BACKUP; fi",
        regex_escape(vip)
    )
}

// ---- helpers ----------------------------------------------------------------------------

fn quote_owned(s: &str) -> String {
    quote(s).into_owned()
}

/// Escape a literal for a basic regular expression inside a single-quoted sed/grep script.
/// Only sysctl keys and addresses reach here, which are checked to be [A-Za-z0-9._/-].
fn regex_escape(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric() || "._/-:".contains(*c))
        .flat_map(|c| if c == '.' { vec!['\\', '.'] } else { vec![c] })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(cmd: &str) -> (i32, String) {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }

    #[test]
    fn quoting_survives_the_shell() {
        for nasty in [
            "a b",
            "$(touch /tmp/pwned)",
            "it's",
            "`id`",
            "x;y",
            "",
            "*",
            "--",
            "\n",
        ] {
            let (_, out) = sh(&format!("printf '%s' {}", quote(nasty)));
            assert_eq!(out, nasty);
        }
        assert_eq!(quote("eth0"), "eth0");
        assert_eq!(argv(&["ip", "addr", "a b"]), "ip addr 'a b'");
    }

    #[test]
    fn queries_run_on_this_machine() {
        let (rc, out) = sh(&sysctl_query("net.ipv4.conf.all.arp_ignore"));
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(rc, 0);
        assert_eq!(lines.len(), 3, "{out}");
        assert!(lines[0].parse::<u32>().is_ok(), "{out}");
        let (_, out) = sh(&sysctl_query("net.no.such.key"));
        assert!(out.starts_with("<missing>\n"), "{out}");
        if std::path::Path::new("/usr/bin/dpkg-query").exists() {
            let (_, out) = sh(&packages_missing(
                "apt-get",
                &["dpkg".into(), "lvslab-no-such-package".into()],
            ));
            assert_eq!(out, "lvslab-no-such-package\n");
        }
        let (_, out) = sh(&address_list("lo"));
        assert!(out.lines().any(|l| l.starts_with("127.0.0.1/8")), "{out}");
        let (_, out) = sh(&service_query("sysv", "lvslab-none", "lvslab-none"));
        assert_eq!(out, "stopped\nunknown\n");
    }

    #[test]
    fn file_write_is_atomic_and_validated() {
        let dir = std::env::temp_dir().join(format!("lvslab-fw-{}", std::process::id()));
        let path = dir.join("f.conf");
        let p = path.to_str().unwrap();
        let write = |content: &str, validate: Option<&str>| {
            let cmd = file_write(p, Some("0640"), None, validate);
            let mut child = std::process::Command::new("sh")
                .arg("-c")
                .arg(&cmd)
                .stdin(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(content.as_bytes())
                .unwrap();
            child.wait_with_output().unwrap()
        };
        assert!(write("one\n", None).status.success());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "one\n");
        let out = write("two\n", Some("grep -q three %s"));
        assert_eq!(out.status.code(), Some(3));
        assert!(String::from_utf8_lossy(&out.stderr).contains("validation failed"));
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "one\n",
            "old file kept"
        );
        assert!(write("three\n", Some("grep -q three %s")).status.success());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "three\n");
        assert_eq!(
            std::fs::read_to_string(dir.join("f.conf.lvslab-prev")).unwrap(),
            "one\n"
        );
        let (_, stat) = sh(&file_stat(p));
        assert!(stat.starts_with("640 "), "{stat}");
        let leftovers = std::fs::read_dir(&dir)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with(".lvslab")
            })
            .count();
        assert_eq!(leftovers, 0, "no temp files left");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
