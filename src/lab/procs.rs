//! The processes of lab nodes, found through /proc: which network namespace each process is in and
//! which one is a node's PID 1. Nothing here trusts a pid file alone (pids are reused).

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// One process as far as the lab cares.
#[derive(Debug, Clone)]
pub struct Process {
    pub pid: u32,
    /// Inode of its network namespace (what `/proc/PID/ns/net` and `/run/netns/NAME` share).
    pub net_ns: u64,
    /// Its pid in each nested pid namespace, outermost first (`NSpid:` of /proc/PID/status).
    pub ns_pids: Vec<u32>,
}

/// The inode of a named network namespace (`/run/netns/NAME`), if it exists.
pub fn netns_inode(namespace: &str) -> Option<u64> {
    std::fs::metadata(Path::new("/run/netns").join(namespace))
        .ok()
        .map(|m| m.ino())
}

/// All processes whose network namespace is one of `net_namespaces` (inodes).
/// Processes that vanish while being read are skipped.
pub fn in_namespaces(net_namespaces: &[u64]) -> Vec<Process> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let net_ns = net_namespace_of(pid)?;
            net_namespaces
                .contains(&net_ns)
                .then(|| read_process(pid, net_ns))
                .flatten()
        })
        .collect()
}

/// Groups `processes` by network namespace inode.
pub fn by_namespace(processes: Vec<Process>) -> HashMap<u64, Vec<Process>> {
    let mut map: HashMap<u64, Vec<Process>> = HashMap::new();
    for p in processes {
        map.entry(p.net_ns).or_default().push(p);
    }
    map
}

/// Among the processes of one node's network namespace: the node's PID 1 (the `unshare`'s child,
/// pid 1 in a pid namespace one level below ours).
pub fn node_pid1(processes: &[Process]) -> Option<u32> {
    let depth = own_pid_namespace_depth() + 1;
    processes
        .iter()
        .find(|p| p.ns_pids.len() == depth && p.ns_pids.last() == Some(&1))
        .map(|p| p.pid)
}

/// Sends SIGKILL to every pid (errors such as "already gone" are expected and ignored).
pub fn kill_all(pids: impl IntoIterator<Item = u32>) {
    for pid in pids {
        let Ok(pid) = i32::try_from(pid) else {
            continue;
        };
        if pid > 1 {
            // SAFETY: kill(2) takes plain integers and has no memory effects.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }
}

pub fn is_root() -> bool {
    // SAFETY: geteuid(2) cannot fail and has no memory effects.
    unsafe { libc::geteuid() == 0 }
}

/// `command` needs root, for `why`: said in one sentence instead of the permission errors it
/// would meet.
pub fn require_root(command: &str, why: &str) -> Result<(), super::error::LabError> {
    if is_root() {
        return Ok(());
    }
    Err(super::error::LabError::Requirement(format!(
        "`{command}` needs root ({why}): run it with sudo"
    )))
}

/// Processes that are not in any lab namespace but still run this lab's node init script:
/// an `unshare` whose namespace file was removed by hand, for example.
pub fn running_script(script: &Path) -> Vec<u32> {
    let needle = script.to_string_lossy().into_owned();
    by_command_line(|program, args| {
        // Only the launchers of a node, not, say, an editor that has the script open.
        let launcher = matches!(program, b"unshare" | b"setsid" | b"ip" | b"sh");
        launcher && args.contains(&needle.as_bytes())
    })
}

/// The qemu processes of a lab's VM (`lab up --vm`): found by their command line, which names
/// files in the lab's directory, so a VM whose pid file is gone is found too.
pub fn vm_processes(lab_dir: &Path) -> Vec<u32> {
    let mut needle = lab_dir.to_string_lossy().into_owned();
    needle.push('/');
    by_command_line(|program, args| {
        program.starts_with(b"qemu-system")
            && args
                .iter()
                .any(|arg| String::from_utf8_lossy(arg).contains(&needle))
    })
}

/// Pids (sorted, lvslab itself left out) of the processes whose command line `keep` accepts;
/// it gets the program's file name and all arguments (the program first). Zombies have no
/// command line and are never kept.
fn by_command_line(keep: impl Fn(&[u8], &[&[u8]]) -> bool) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let own = std::process::id();
    let mut pids: Vec<u32> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != own)
        .filter(|pid| {
            let Ok(raw) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
                return false;
            };
            let args: Vec<&[u8]> = raw.split(|b| *b == 0).collect();
            match args.first() {
                Some(first) if !first.is_empty() => {
                    let program = first.rsplit(|b| *b == b'/').next().unwrap_or(first);
                    keep(program, &args)
                }
                _ => false,
            }
        })
        .collect();
    pids.sort_unstable();
    pids
}

fn net_namespace_of(pid: u32) -> Option<u64> {
    let link = std::fs::read_link(format!("/proc/{pid}/ns/net")).ok()?;
    let text = link.to_str()?;
    text.strip_prefix("net:[")?.strip_suffix(']')?.parse().ok()
}

fn read_process(pid: u32, net_ns: u64) -> Option<Process> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    Some(Process {
        pid,
        net_ns,
        ns_pids: parse_ns_pids(&status),
    })
}

fn parse_ns_pids(status: &str) -> Vec<u32> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("NSpid:"))
        .map(|v| {
            v.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

fn own_pid_namespace_depth() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| parse_ns_pids(&s).len())
        .unwrap_or(1)
        .max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_gives_nested_pids() {
        let status = "Name:\tsshd\nPPid:\t4242\nNSpid:\t4243\t1\nUid:\t0\t0\t0\t0\n";
        assert_eq!(parse_ns_pids(status), vec![4243, 1]);
    }

    #[test]
    fn pid1_is_the_process_one_pid_namespace_down() {
        let p = |pid, ns_pids: Vec<u32>| Process {
            pid,
            net_ns: 7,
            ns_pids,
        };
        let depth = own_pid_namespace_depth();
        let unshare = vec![10; depth];
        let mut init = vec![11; depth];
        init.push(1);
        let mut daemon = vec![12; depth];
        daemon.push(5);
        let procs = [p(10, unshare), p(12, daemon), p(11, init)];
        assert_eq!(node_pid1(&procs), Some(11));
    }
}
