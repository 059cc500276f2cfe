//! The run lock: one lvslab run at a time per host on this machine, whichever inventory names
//! the host, so two runs never interleave changes on it.
//!
//! The locks are files in a directory only this user can write: `/run/lvslab/locks` for root,
//! else `$XDG_RUNTIME_DIR/lvslab/locks` (or `~/.cache/lvslab/locks`). The directory must be a
//! real directory owned by this user and writable by no one else; the files are opened without
//! following symlinks. A lock is an `flock`, so it ends with the process, crash or not. A host
//! is locked by the address and port its connection goes to (see `identity`), not its name.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::net::ToSocketAddrs;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::inventory::{Connection, Host};

/// The locks of the hosts of one run, held until dropped.
pub struct HostLocks {
    _files: Vec<File>,
}

/// The directory that holds this user's locks.
pub fn lock_dir() -> Result<PathBuf, String> {
    // SAFETY: geteuid has no preconditions and touches no memory of ours.
    let uid = unsafe { libc::geteuid() };
    let dir = if uid == 0 {
        PathBuf::from("/run/lvslab/locks")
    } else if let Some(runtime) = std::env::var_os("XDG_RUNTIME_DIR") {
        PathBuf::from(runtime).join("lvslab/locks")
    } else {
        let home = std::env::var_os("HOME").ok_or("no HOME to keep run locks in")?;
        PathBuf::from(home).join(".cache/lvslab/locks")
    };
    private_dir(&dir, uid)?;
    Ok(dir)
}

/// Makes `dir` (0700) if missing and checks that it is ours alone: a directory, not a symlink,
/// owned by `uid`, writable by no one else.
fn private_dir(dir: &Path, uid: u32) -> Result<(), String> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| format!("cannot create the lock directory {}: {e}", dir.display()))?;
    let meta = std::fs::symlink_metadata(dir)
        .map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    if meta.file_type().is_symlink() || !meta.is_dir() {
        return Err(format!(
            "the lock directory {} is not a directory of its own (a symlink?); remove it",
            dir.display()
        ));
    }
    if meta.uid() != uid || meta.mode() & 0o022 != 0 {
        return Err(format!(
            "the lock directory {} must belong to this user and be writable by no one else (owner {}, mode {:o}); remove it",
            dir.display(),
            meta.uid(),
            meta.mode() & 0o777
        ));
    }
    Ok(())
}

/// Who a host is, for its lock: the address and port its SSH connection goes to, so that
/// `localhost`, `LOCALHOST` and `127.0.0.1` are one host. The target resolves as the connection
/// resolves it (with the system resolver, first address: `198.18.000.12` is `198.18.0.12`);
/// one that does not resolve is known by its lowercased name. A host behind a jump host is
/// the target the jump host is asked for (lowercased) behind the jump host's own identity.
fn identity(conn: &Connection) -> String {
    let address = |target: &str, port: u16| {
        (target, port)
            .to_socket_addrs()
            .ok()
            .and_then(|mut found| found.next())
            .map_or_else(
                || format!("{}:{port}", target.to_ascii_lowercase()),
                |a| a.to_string(),
            )
    };
    match &conn.jump {
        None => address(&conn.target, conn.port),
        Some(jump) => format!(
            "{} via {}",
            format_args!("{}:{}", conn.target.to_ascii_lowercase(), conn.port),
            address(&jump.target, jump.port)
        ),
    }
}

/// The lock file name of a host identity.
fn lock_name(identity: &str) -> String {
    let digest = Sha256::digest(identity.as_bytes());
    let hex: String = digest.iter().take(12).map(|b| format!("{b:02x}")).collect();
    format!("host-{hex}.lock")
}

impl HostLocks {
    /// Locks every host of `hosts` for this run, or says which host another run holds.
    pub fn acquire(dir: &Path, inventory: &Path, hosts: &[&Host]) -> Result<HostLocks, String> {
        let mut wanted: Vec<(String, &Host)> = hosts
            .iter()
            .map(|h| (identity(&h.connection), *h))
            .collect();
        wanted.sort_by(|a, b| a.0.cmp(&b.0));
        wanted.dedup_by(|a, b| a.0 == b.0);
        let mut files = Vec::new();
        for (identity, host) in wanted {
            let path = dir.join(lock_name(&identity));
            let mut file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(&path)
                .map_err(|e| format!("cannot open the lock file {}: {e}", path.display()))?;
            // SAFETY: flock on a file descriptor we own; no memory is shared.
            let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
            if rc != 0 {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                return Err(format!(
                    "another lvslab run ({}) is working on {} ({}:{}{}) now; two runs must not change the same host at once: wait for it to finish, or stop it",
                    if holder.is_empty() {
                        "starting"
                    } else {
                        holder
                    },
                    host.name,
                    host.connection.target,
                    host.connection.port,
                    if identity == format!("{}:{}", host.connection.target, host.connection.port) {
                        String::new()
                    } else {
                        format!(", that is {identity}")
                    }
                ));
            }
            let _ = file.set_len(0);
            let _ = file.rewind();
            let _ = write!(
                file,
                "pid {}, inventory {}",
                std::process::id(),
                inventory.display()
            );
            files.push(file);
        }
        Ok(HostLocks { _files: files })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(name: &str, target: &str) -> Host {
        let inv = format!("hosts:\n  {name}: {{ address: {target} }}\n");
        crate::inventory::load_str(Path::new("i.yml"), inv)
            .unwrap()
            .0
            .hosts
            .remove(0)
    }

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("lvslab-lock-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn one_run_per_host_whatever_the_inventory() {
        let dir = temp("runs");
        // SAFETY: as above.
        private_dir(&dir, unsafe { libc::geteuid() }).unwrap();
        let (a, b) = (host("web1", "10.0.0.1"), host("other-name", "10.0.0.1"));
        let c = host("web2", "10.0.0.2");
        let first = HostLocks::acquire(&dir, Path::new("/x/one.yml"), &[&a, &c]).unwrap();
        let e = HostLocks::acquire(&dir, Path::new("/y/two.yml"), &[&b])
            .err()
            .expect("refused");
        assert!(
            e.contains("other-name (10.0.0.1:22)") && e.contains("inventory /x/one.yml"),
            "{e}"
        );
        drop(first);
        assert!(HostLocks::acquire(&dir, Path::new("/y/two.yml"), &[&b]).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A host whose connection goes to `target`.
    fn via(name: &str, target: &str) -> Host {
        let inv = format!(
            "hosts:\n  {name}: {{ address: 198.18.0.99, connection: {{ host: {target} }} }}\n"
        );
        crate::inventory::load_str(Path::new("i.yml"), inv)
            .unwrap()
            .0
            .hosts
            .remove(0)
    }

    #[test]
    fn a_host_is_locked_by_the_address_its_connection_goes_to() {
        let key = |name: &str, target: &str| identity(&via(name, target).connection);
        assert_eq!(key("a", "localhost"), "127.0.0.1:22");
        assert_eq!(key("b", "LOCALHOST"), "127.0.0.1:22");
        assert_eq!(key("c", "127.0.0.1"), "127.0.0.1:22");
        // The system resolver reads these spellings (inet_aton's) as 198.18.0.12.
        assert_eq!(key("d", "198.18.000.12"), "198.18.0.12:22");
        assert_eq!(key("e", "0XC6.0X12.0.0XC"), "198.18.0.12:22");
        assert_eq!(key("f", "No-Such-Host.invalid"), "no-such-host.invalid:22");

        let dir = temp("identity");
        // SAFETY: as above.
        private_dir(&dir, unsafe { libc::geteuid() }).unwrap();
        let (a, b) = (via("a", "localhost"), via("b", "LOCALHOST"));
        let held = HostLocks::acquire(&dir, Path::new("/x/one.yml"), &[&a]).unwrap();
        let e = HostLocks::acquire(&dir, Path::new("/y/two.yml"), &[&b])
            .err()
            .expect("refused");
        assert!(
            e.contains("working on b (LOCALHOST:22, that is 127.0.0.1:22)")
                && e.contains("inventory /x/one.yml"),
            "{e}"
        );
        drop(held);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_planted_directory_or_file_is_refused() {
        // SAFETY: as above.
        let uid = unsafe { libc::geteuid() };
        let open = temp("open");
        std::fs::create_dir_all(&open).unwrap();
        std::fs::set_permissions(&open, std::os::unix::fs::PermissionsExt::from_mode(0o777))
            .unwrap();
        assert!(
            private_dir(&open, uid)
                .unwrap_err()
                .contains("writable by no one else")
        );
        let link = temp("link");
        std::os::unix::fs::symlink(&open, &link).unwrap();
        assert!(private_dir(&link, uid).unwrap_err().contains("symlink"));
        let dir = temp("planted");
        private_dir(&dir, uid).unwrap();
        let h = host("web1", "10.0.0.9");
        std::os::unix::fs::symlink("/etc/passwd", dir.join(lock_name(&identity(&h.connection))))
            .unwrap();
        assert!(HostLocks::acquire(&dir, Path::new("i.yml"), &[&h]).is_err());
        for d in [&open, &dir] {
            std::fs::remove_dir_all(d).unwrap();
        }
        std::fs::remove_file(&link).unwrap();
    }
}
