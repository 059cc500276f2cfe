//! One lab node: its files, its start (an `unshare`d init that ends as sshd), and the probe that
//! tells whether its sshd answers.

use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use super::error::{IoContext, LabError};
use super::files;
use super::plan::{LabPlan, NodeInit, NodeSpec};
use super::requirements::Host;
use super::state::{LabPaths, write_file};
use super::sys;

/// The layers each node sees through its own overlay (lower: the machine's, or a clean home).
pub const OVERLAID: [&str; 3] = ["etc", "var", "root"];

/// A clean PATH for the nodes: they must not depend on the caller's environment.
const NODE_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn mkdir(path: &Path, mode: u32) -> Result<(), LabError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(path)
        .ctx("cannot create directory", path)?;
    // The umask may have narrowed the mode; /root's 0700 and the others' 0755 matter to sshd.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .ctx("cannot set the mode of", path)
}

/// Writes a node's directories and files, except its host key (made by ssh-keygen).
pub fn prepare(
    plan: &LabPlan,
    node: &NodeSpec,
    paths: &LabPaths,
    host: &Host,
    authorized_key: &str,
) -> Result<(), LabError> {
    if plan.init == NodeInit::Systemd {
        return prepare_systemd(plan, node, paths, host, authorized_key);
    }
    let np = paths.node(&node.name);
    for layer in OVERLAID {
        mkdir(&np.work(layer), 0o755)?;
    }
    mkdir(&np.upper("etc"), 0o755)?;
    mkdir(&np.upper("var"), 0o755)?;
    // The merged /root takes the upper dir's owner and mode: sshd's StrictModes wants 0700 root.
    let root = np.upper("root");
    mkdir(&root.join(".ssh"), 0o700)?;
    mkdir(&root, 0o700)?;
    write_file(
        &root.join(".ssh/authorized_keys"),
        authorized_key.as_bytes(),
        0o600,
    )?;
    write_file(
        &np.upper("etc").join("hostname"),
        format!("{}\n", node.name).as_bytes(),
        0o644,
    )?;
    write_file(
        &np.upper("etc").join("hosts"),
        files::etc_hosts(plan, node).as_bytes(),
        0o644,
    )?;
    let config = files::sshd_config(node, &np.host_key(), &host.sftp_server);
    write_file(&np.sshd_config(), config.as_bytes(), 0o644)
}

/// A systemd node's files: what its keeper copies over the machine's tree on the node's disk
/// (`seed/`, laid out as the root), so sshd there reads the lab's sshd_config and login key.
fn prepare_systemd(
    plan: &LabPlan,
    node: &NodeSpec,
    paths: &LabPaths,
    host: &Host,
    authorized_key: &str,
) -> Result<(), LabError> {
    let np = paths.node(&node.name);
    let seed = np.seed();
    mkdir(&seed.join("etc/ssh"), 0o755)?;
    mkdir(&seed.join("etc/systemd/system"), 0o755)?;
    mkdir(&seed.join("root/.ssh"), 0o700)?;
    mkdir(&seed.join("root"), 0o700)?;
    // A machine of its own: nspawn and the node's journal want an id.
    let uuid = std::fs::read_to_string("/proc/sys/kernel/random/uuid")
        .ctx("cannot read", Path::new("/proc/sys/kernel/random/uuid"))?;
    let machine_id: String = uuid.trim().chars().filter(|c| *c != '-').collect();
    let files: [(&str, String, u32); 6] = [
        ("etc/hostname", format!("{}\n", node.name), 0o644),
        ("etc/machine-id", format!("{machine_id}\n"), 0o444),
        ("etc/hosts", files::etc_hosts(plan, node), 0o644),
        (
            "etc/ssh/sshd_config",
            files::sshd_config(node, &np.host_key(), &host.sftp_server),
            0o644,
        ),
        (
            "etc/systemd/system/lvslab-node-booted.service",
            files::BOOTED_UNIT.to_string(),
            0o644,
        ),
        (
            "root/.ssh/authorized_keys",
            authorized_key.to_string(),
            0o600,
        ),
    ];
    for (path, text, mode) in files {
        write_file(&seed.join(path), text.as_bytes(), mode)?;
    }
    Ok(())
}

/// Starts the node, detached from us (its own session, reparented to init), and returns the pid
/// of its first process: a SysV node's `unshare`, whose death takes the whole node with it
/// (`--kill-child`), or a systemd node's keeper.
pub async fn start(
    plan: &LabPlan,
    node: &NodeSpec,
    paths: &LabPaths,
    host: &Host,
) -> Result<u32, LabError> {
    let np = paths.node(&node.name);
    let log = np.log();
    let (init, dir, home) = (paths.init_script(), np.dir.clone(), paths.clean_home());
    let (log, init, dir, home, sshd) = (
        log.to_string_lossy(),
        init.to_string_lossy(),
        dir.to_string_lossy(),
        home.to_string_lossy(),
        host.sshd.to_string_lossy(),
    );
    // The shell backgrounds the node and prints its pid: no zombie of ours if a node dies early.
    let script = r#"log=$1; shift; setsid "$@" </dev/null >>"$log" 2>&1 & echo $!"#;
    let keeper = paths.systemd_script();
    let keeper = keeper.to_string_lossy();
    let mut args: Vec<&str> = vec![
        "-c",
        script,
        "lvslab-node",
        &log,
        "ip",
        "netns",
        "exec",
        &node.namespace,
        "unshare",
        "--mount",
        "--propagation",
        "private",
    ];
    match plan.init {
        NodeInit::Sysv => args.extend([
            "--uts",
            "--pid",
            "--fork",
            "--kill-child",
            "--mount-proc",
            &init,
            &node.name,
            &dir,
            &home,
            &sshd,
        ]),
        // The keeper's mounts (the node's disk) live in its mount namespace and go with it.
        NodeInit::Systemd => args.extend(["sh", &keeper, &node.name, &dir, &node.namespace]),
    }
    let mut command = tokio::process::Command::new("sh");
    command
        .args(args)
        .env_clear()
        .env("PATH", NODE_PATH)
        .env("LANG", "C.UTF-8")
        .stdin(std::process::Stdio::null());
    let output = command.output().await.map_err(|e| LabError::Command {
        command: format!("start node {}", node.name),
        detail: e.to_string(),
    })?;
    let text = String::from_utf8_lossy(&output.stdout);
    let pid: u32 = text.trim().parse().map_err(|_| LabError::Command {
        command: format!("start node {}", node.name),
        detail: format!(
            "no pid printed ({})",
            String::from_utf8_lossy(&output.stderr).trim()
        ),
    })?;
    write_file(&np.pid_file(), format!("{pid}\n").as_bytes(), 0o644)?;
    Ok(pid)
}

/// Makes an ed25519 key pair without a passphrase.
pub async fn keygen(path: &Path, comment: &str) -> Result<(), LabError> {
    let path = path.to_string_lossy();
    sys::run(
        "ssh-keygen",
        &["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", &path],
        None,
    )
    .await
    .map(|_| ())
}

/// Connects to the node's sshd and reads its banner within `limit`.
/// Ok(banner) when it answers `SSH-2.0-...`; Err(why not) otherwise.
pub async fn probe_sshd(address: Ipv4Addr, limit: Duration) -> Result<String, String> {
    let attempt = async {
        let mut stream = TcpStream::connect(SocketAddr::from((address, 22)))
            .await
            .map_err(|e| format!("no connection ({e})"))?;
        let mut buf = Vec::with_capacity(256);
        let mut chunk = [0u8; 256];
        while !buf.contains(&b'\n') && buf.len() < 1024 {
            let n = stream
                .read(&mut chunk)
                .await
                .map_err(|e| format!("no banner ({e})"))?;
            if n == 0 {
                return Err("connection closed before the banner".to_string());
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        let text = String::from_utf8_lossy(&buf);
        let banner = text.lines().next().unwrap_or_default().trim().to_string();
        if banner.starts_with("SSH-2.0") {
            Ok(banner)
        } else {
            Err(format!("unexpected banner `{banner}`"))
        }
    };
    match tokio::time::timeout(limit, attempt).await {
        Ok(result) => result,
        Err(_) => Err(format!("no answer within {} ms", limit.as_millis())),
    }
}

/// The last lines of a node's log, for error messages.
pub fn log_tail(paths: &LabPaths, node: &str, lines: usize) -> String {
    let text = std::fs::read_to_string(paths.node(node).log()).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
