//! known_hosts, read the way OpenSSH reads it. russh's own check compares only keys of the
//! algorithm the host offers, skips markers and miscounts lines after comments; this reader
//! knows a host by any key type, hashed (`|1|salt|hash`) names, `[host]:port`, patterns with
//! `*`, `?` and `!`, several lines per host, `@revoked` keys (always refused) and
//! `@cert-authority` lines (recognised, reported as unsupported, never taken for a host key).

use std::ffi::CString;
use std::fs::{File, Metadata, OpenOptions, TryLockError};
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use data_encoding::BASE64;
use hmac::{Hmac, KeyInit, Mac};
use russh::keys::PublicKey;
use sha1::Sha1;

/// What a known_hosts line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Marker {
    Plain,
    Revoked,
    CertAuthority,
}

#[derive(Debug, Clone)]
struct Entry {
    /// 1-based, counting every line of the file (comments and blank lines too).
    line: usize,
    marker: Marker,
    patterns: String,
    key_type: String,
    key: PublicKey,
}

/// A known_hosts file as read.
#[derive(Debug, Default)]
pub struct KnownHosts {
    entries: Vec<Entry>,
    /// Whether its host names are hashed (HashKnownHosts): new entries are written the same way.
    hashed: bool,
}

/// What the file says of a host and the key it offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The key is recorded for the host.
    Known { line: usize },
    /// The key is marked `@revoked`.
    Revoked { line: usize },
    /// The host is known with other keys (any type): the first such line and its key type.
    Changed { line: usize, known_type: String },
    /// Only `@cert-authority` lines name the host.
    CertAuthorityOnly { line: usize },
    /// Nothing names the host.
    Unknown,
}

/// The name a host has in known_hosts, as OpenSSH forms it before it matches, hashes or records
/// it: an address literal in its canonical form (`198.18.000.12` and `0XC6.0X12.0.0XC` are
/// `198.18.0.12`), any other name lowercased; as `host`, or `[host]:port` when the port is
/// not 22. Matching, hashing and recording all go through here.
pub fn host_key_name(host: &str, port: u16) -> String {
    let host = match address_literal(host) {
        Some(address) => address.to_string(),
        None => host.to_ascii_lowercase(),
    };
    if port == 22 {
        host
    } else {
        format!("[{host}]:{port}")
    }
}

/// The address `host` spells, if the system resolver reads it as an address literal without a
/// lookup (getaddrinfo with `AI_NUMERICHOST`, as ssh asks it): `198.18.000.12`, `0xc6.0x12.0.0xc`,
/// `FD00:0::C`. A name is `None`.
fn address_literal(host: &str) -> Option<IpAddr> {
    if let Ok(address) = host.parse() {
        return Some(address);
    }
    let c_host = CString::new(host).ok()?;
    // SAFETY: an all-zero addrinfo is a valid value (null pointers, no flags).
    let mut hints: libc::addrinfo = unsafe { std::mem::zeroed() };
    hints.ai_flags = libc::AI_NUMERICHOST;
    hints.ai_family = libc::AF_UNSPEC;
    hints.ai_socktype = libc::SOCK_STREAM;
    let mut found: *mut libc::addrinfo = std::ptr::null_mut();
    // SAFETY: the strings and hints outlive the call; `found` is freed below, once.
    let rc = unsafe { libc::getaddrinfo(c_host.as_ptr(), std::ptr::null(), &hints, &mut found) };
    if rc != 0 || found.is_null() {
        return None;
    }
    // SAFETY: getaddrinfo succeeded, so `found` points to an addrinfo whose ai_addr is a
    // sockaddr of the family ai_family says.
    let address = unsafe {
        let first = &*found;
        match first.ai_family {
            libc::AF_INET => {
                let sa = &*(first.ai_addr as *const libc::sockaddr_in);
                Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(sa.sin_addr.s_addr))))
            }
            libc::AF_INET6 => {
                let sa = &*(first.ai_addr as *const libc::sockaddr_in6);
                Some(IpAddr::V6(Ipv6Addr::from(sa.sin6_addr.s6_addr)))
            }
            _ => None,
        }
    };
    // SAFETY: `found` came from getaddrinfo and is freed once.
    unsafe { libc::freeaddrinfo(found) };
    address
}

impl KnownHosts {
    /// Reads `path`; a missing file knows nothing.
    pub fn load(path: &Path) -> std::io::Result<KnownHosts> {
        match std::fs::read_to_string(path) {
            Ok(text) => Ok(KnownHosts::parse(&text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(KnownHosts::default()),
            Err(e) => Err(e),
        }
    }

    pub fn parse(text: &str) -> KnownHosts {
        let mut entries = Vec::new();
        let (mut hashed, mut plain) = (0, 0);
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut words = line.split_whitespace();
            let mut first = words.next().unwrap_or_default();
            let marker = match first {
                "@revoked" => Marker::Revoked,
                "@cert-authority" => Marker::CertAuthority,
                _ => Marker::Plain,
            };
            if marker != Marker::Plain {
                first = words.next().unwrap_or_default();
            }
            let (Some(key_type), Some(base64)) = (words.next(), words.next()) else {
                continue;
            };
            let Ok(key) = russh::keys::parse_public_key_base64(base64) else {
                continue;
            };
            if first.starts_with("|1|") {
                hashed += 1;
            } else {
                plain += 1;
            }
            entries.push(Entry {
                line: i + 1,
                marker,
                patterns: first.to_string(),
                key_type: key_type.to_string(),
                key,
            });
        }
        KnownHosts {
            entries,
            hashed: hashed > plain,
        }
    }

    /// What the file says of `host`:`port` offering `key`.
    pub fn check(&self, host: &str, port: u16, key: &PublicKey) -> Verdict {
        let name = host_key_name(host, port);
        // A revoked key is refused whatever host it is offered by.
        if let Some(e) = self
            .entries
            .iter()
            .find(|e| e.marker == Marker::Revoked && e.key.key_data() == key.key_data())
        {
            return Verdict::Revoked { line: e.line };
        }
        let mine: Vec<&Entry> = self
            .entries
            .iter()
            .filter(|e| e.marker == Marker::Plain && host_matches(&e.patterns, &name))
            .collect();
        if let Some(e) = mine.iter().find(|e| e.key.key_data() == key.key_data()) {
            return Verdict::Known { line: e.line };
        }
        if let Some(e) = mine.first() {
            return Verdict::Changed {
                line: e.line,
                known_type: e.key_type.clone(),
            };
        }
        if let Some(e) = self
            .entries
            .iter()
            .find(|e| e.marker == Marker::CertAuthority && host_matches(&e.patterns, &name))
        {
            return Verdict::CertAuthorityOnly { line: e.line };
        }
        Verdict::Unknown
    }

    /// The line that records `key` for `host`:`port`, hashed if the file's names are hashed.
    fn line_for(&self, host: &str, port: u16, key: &PublicKey) -> std::io::Result<String> {
        let name = host_key_name(host, port);
        let name = if self.hashed { hash_name(&name)? } else { name };
        let openssh = key
            .to_openssh()
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        // `type base64 [comment]`: the comment is the host's, not ours to keep.
        let mut words = openssh.split_whitespace();
        let (kind, data) = (
            words.next().unwrap_or_default(),
            words.next().unwrap_or_default(),
        );
        Ok(format!("{name} {kind} {data}\n"))
    }
}

/// Trust on first use: what the file at `path` says of `host`:`port` now, and, when nothing
/// names the host, `key` recorded for it (then `Known` at its new line).
///
/// Several lvslab runs may do this at once: each takes an exclusive `flock` on the file, reads
/// it as it is, and writes it anew beside it with the line added, renamed over it, so a crash
/// leaves the old file or the new one, never half of one, and no run writes back a copy another
/// run or `ssh-keygen -R` has replaced (such a writer takes no lock: if the file changed while
/// it was read, it is read again). Hashed names stay hashed. A symlink at `path` is refused.
pub fn trust_new(path: &Path, host: &str, port: u16, key: &PublicKey) -> std::io::Result<Verdict> {
    refuse_symlink(path)?;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    loop {
        let mut locked = lock(path)?;
        let held = locked.metadata()?;
        let mut text = String::new();
        locked.read_to_string(&mut text)?;
        let known = KnownHosts::parse(&text);
        match known.check(host, port, key) {
            Verdict::Unknown => {}
            verdict => return Ok(verdict),
        }
        let mut content = text;
        if !content.is_empty() && !content.ends_with('\n') {
            content.push('\n');
        }
        let line = content.lines().count() + 1;
        content.push_str(&known.line_for(host, port, key)?);
        if replace(dir, path, &held, &content)? {
            return Ok(Verdict::Known { line });
        }
    }
}

fn refuse_symlink(path: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => Err(std::io::Error::other(format!(
            "{} is a symbolic link; lvslab does not write through one",
            path.display()
        ))),
        _ => Ok(()),
    }
}

/// How long a run waits for another process's lock on a known_hosts file.
const LOCK_WAIT: Duration = Duration::from_secs(10);

/// The file at `path` (created empty if missing), opened without following a symlink and
/// locked: the lock is on the file that is at `path` once it is held, not on one renamed away
/// while this run waited.
fn lock(path: &Path) -> std::io::Result<File> {
    let started = Instant::now();
    loop {
        // Read-only when it exists: a file this user may read but not write still answers
        // for the hosts it knows.
        let flags = libc::O_NOFOLLOW | libc::O_CLOEXEC;
        let file = match OpenOptions::new().read(true).custom_flags(flags).open(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o644)
                .custom_flags(flags)
                .open(path)?,
            opened => opened?,
        };
        match file.try_lock() {
            Ok(()) => {
                let held = file.metadata()?;
                let now = std::fs::symlink_metadata(path)?;
                if (held.dev(), held.ino()) == (now.dev(), now.ino()) {
                    return Ok(file);
                }
            }
            Err(TryLockError::WouldBlock) if started.elapsed() < LOCK_WAIT => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(TryLockError::WouldBlock) => {
                return Err(std::io::Error::other(format!(
                    "another process has held a lock on {} for {} s",
                    path.display(),
                    LOCK_WAIT.as_secs()
                )));
            }
            Err(TryLockError::Error(e)) => return Err(e),
        }
    }
}

/// Writes `content` beside `path` and renames it over `path`, if `path` is still the file
/// `held` describes (same inode, size and time of change): `Ok(false)` when another writer
/// replaced or changed it meanwhile, and nothing was written. Owner and mode are kept.
fn replace(dir: &Path, path: &Path, held: &Metadata, content: &str) -> std::io::Result<bool> {
    let temp = temp_path(dir, path)?;
    let written = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(held.mode() & 0o777)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&temp)?;
        file.write_all(content.as_bytes())?;
        file.sync_all()?;
        // Keep the file's owner when root writes someone else's known_hosts.
        let _ = std::os::unix::fs::fchown(&file, Some(held.uid()), Some(held.gid()));
        let now = std::fs::symlink_metadata(path)?;
        if !same_file(held, &now) {
            return Ok(false);
        }
        std::fs::rename(&temp, path)?;
        Ok(true)
    })();
    if !matches!(written, Ok(true)) {
        let _ = std::fs::remove_file(&temp);
    }
    written
}

fn same_file(a: &Metadata, b: &Metadata) -> bool {
    (a.dev(), a.ino(), a.len(), a.ctime(), a.ctime_nsec())
        == (b.dev(), b.ino(), b.len(), b.ctime(), b.ctime_nsec())
}

fn temp_path(dir: &Path, path: &Path) -> std::io::Result<PathBuf> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "known_hosts".into());
    Ok(dir.join(format!(".{name}.lvslab-{}", hex(&random_bytes::<6>()?))))
}

fn random_bytes<const N: usize>() -> std::io::Result<[u8; N]> {
    use std::io::Read;
    let mut bytes = [0u8; N];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `|1|salt|hash`: OpenSSH's hashed host name (HMAC-SHA1 of the name, keyed by a random salt).
fn hash_name(name: &str) -> std::io::Result<String> {
    let salt = random_bytes::<20>()?;
    let mac = Hmac::<Sha1>::new_from_slice(&salt)
        .map_err(|e| std::io::Error::other(e.to_string()))?
        .chain_update(name.as_bytes())
        .finalize()
        .into_bytes();
    Ok(format!(
        "|1|{}|{}",
        BASE64.encode(&salt),
        BASE64.encode(&mac)
    ))
}

/// Whether a comma-separated pattern list names `name`: any positive match and no negated one.
fn host_matches(patterns: &str, name: &str) -> bool {
    let mut matched = false;
    for p in patterns.split(',') {
        if let Some(negated) = p.strip_prefix('!') {
            if glob(negated, name) {
                return false;
            }
        } else if let Some(hashed) = p.strip_prefix("|1|") {
            matched |= hashed_matches(hashed, name);
        } else if glob(p, name) {
            matched = true;
        }
    }
    matched
}

fn hashed_matches(salt_and_hash: &str, name: &str) -> bool {
    let Some((salt, hash)) = salt_and_hash.split_once('|') else {
        return false;
    };
    let (Ok(salt), Ok(hash)) = (
        BASE64.decode(salt.as_bytes()),
        BASE64.decode(hash.as_bytes()),
    ) else {
        return false;
    };
    Hmac::<Sha1>::new_from_slice(&salt).is_ok_and(|mac| {
        mac.chain_update(name.as_bytes())
            .verify_slice(&hash)
            .is_ok()
    })
}

/// OpenSSH's pattern: `*` any run, `?` one character; names compare without case.
fn glob(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    let n: Vec<char> = name.to_lowercase().chars().collect();
    let (mut pi, mut ni) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED: &str = "AAAAC3NzaC1lZDI1NTE5AAAAICT0WftKJi4czL7xdE4QIHg1FS201IO/6pTub/ndXlw8";
    const ED2: &str = "AAAAC3NzaC1lZDI1NTE5AAAAINMYfQ9SeDe2ew6i0K9emHZfN8h8mA7Nyrs8ihVHBzYw";
    const ECDSA: &str = "AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBECq+wux1gVtNkwFpbjsZDAznTlWyJ98SVzY12+nnsa5kjkyytCCpJH5JtPrW4yXYbqaQwvEfSFAk9nm9KDFh2c=";

    fn key(b64: &str) -> PublicKey {
        russh::keys::parse_public_key_base64(b64).unwrap()
    }

    #[test]
    fn a_host_known_with_another_key_type_is_changed_not_unknown() {
        let kh = KnownHosts::parse(&format!(
            "# lab\n\n198.18.0.12 ecdsa-sha2-nistp256 {ECDSA}\n"
        ));
        assert_eq!(
            kh.check("198.18.0.12", 22, &key(ED)),
            Verdict::Changed {
                line: 3,
                known_type: "ecdsa-sha2-nistp256".into()
            },
            "the line counts comments and blank lines"
        );
        assert_eq!(kh.check("198.18.0.13", 22, &key(ED)), Verdict::Unknown);
        assert_eq!(
            kh.check("198.18.0.12", 22, &key(ECDSA)),
            Verdict::Known { line: 3 }
        );
    }

    #[test]
    fn several_lines_ports_patterns_and_hashes() {
        let hashed = hash_name("[10.0.0.5]:2222").unwrap();
        let kh = KnownHosts::parse(&format!(
            "10.0.0.1,node1 ssh-ed25519 {ED2}\n10.0.0.1 ssh-ed25519 {ED}\n\
             [10.0.0.2]:2222 ssh-ed25519 {ED}\n10.0.1.* ssh-ed25519 {ED}\n\
             *.lab,!bad.lab ssh-ed25519 {ED}\n{hashed} ssh-ed25519 {ED}\n"
        ));
        assert_eq!(
            kh.check("10.0.0.1", 22, &key(ED)),
            Verdict::Known { line: 2 }
        );
        assert_eq!(kh.check("node1", 22, &key(ED2)), Verdict::Known { line: 1 });
        assert_eq!(
            kh.check("10.0.0.2", 2222, &key(ED)),
            Verdict::Known { line: 3 }
        );
        assert_eq!(kh.check("10.0.0.2", 22, &key(ED)), Verdict::Unknown);
        assert_eq!(
            kh.check("10.0.1.77", 22, &key(ED)),
            Verdict::Known { line: 4 }
        );
        assert_eq!(
            kh.check("good.lab", 22, &key(ED)),
            Verdict::Known { line: 5 }
        );
        assert_eq!(kh.check("bad.lab", 22, &key(ED)), Verdict::Unknown);
        assert_eq!(
            kh.check("10.0.0.5", 2222, &key(ED)),
            Verdict::Known { line: 6 }
        );
        assert!(!kh.hashed);
    }

    #[test]
    fn names_are_lowercased_and_addresses_canonical_as_openssh_forms_them() {
        assert_eq!(host_key_name("Node2.LAB", 22), "node2.lab");
        assert_eq!(host_key_name("LOCALHOST", 2222), "[localhost]:2222");
        // Address literals in any spelling the resolver reads are their canonical form.
        assert_eq!(host_key_name("198.18.000.12", 22), "198.18.0.12");
        assert_eq!(host_key_name("0XC6.0X12.0.0XC", 2222), "[198.18.0.12]:2222");
        assert_eq!(host_key_name("FD00:0::C", 22), "fd00::c");
        assert_eq!(
            host_key_name("cafe", 22),
            "cafe",
            "a name, though it is hex"
        );
        // What `ssh-keygen -H` writes for the names ssh looks up: always lowercase.
        let kh = KnownHosts::parse(&format!(
            "{} ssh-ed25519 {ED}\n{} ssh-ed25519 {ED}\n\
             Plain.Lab ssh-ed25519 {ED}\n",
            hash_name("localhost").unwrap(),
            hash_name("[localhost]:2222").unwrap(),
        ));
        assert_eq!(
            kh.check("LOCALHOST", 22, &key(ED)),
            Verdict::Known { line: 1 }
        );
        assert_eq!(
            kh.check("LocalHost", 22, &key(ED2)),
            Verdict::Changed {
                line: 1,
                known_type: "ssh-ed25519".into()
            },
            "another key for the name in another case is a changed key, not a new host"
        );
        assert_eq!(
            kh.check("LOCALHOST", 2222, &key(ED)),
            Verdict::Known { line: 2 }
        );
        assert_eq!(
            kh.check("plain.LAB", 22, &key(ED)),
            Verdict::Known { line: 3 }
        );
        // Recorded lowercased, hashed or not, so OpenSSH finds it.
        let recorded = kh.line_for("LOCALHOST", 2222, &key(ED)).unwrap();
        let again = KnownHosts::parse(&recorded);
        assert_eq!(
            again.check("localhost", 2222, &key(ED)),
            Verdict::Known { line: 1 }
        );
        let plain = KnownHosts::default()
            .line_for("Node2.LAB", 2222, &key(ED))
            .unwrap();
        assert!(plain.starts_with("[node2.lab]:2222 "), "{plain}");
    }

    #[test]
    fn revoked_keys_and_cert_authorities() {
        let kh = KnownHosts::parse(&format!(
            "10.0.0.1 ssh-ed25519 {ED}\n@revoked * ssh-ed25519 {ED}\n\
             @cert-authority *.lab ssh-ed25519 {ED2}\n"
        ));
        assert_eq!(
            kh.check("10.0.0.1", 22, &key(ED)),
            Verdict::Revoked { line: 2 }
        );
        assert_eq!(
            kh.check("x.lab", 22, &key(ED2)),
            Verdict::CertAuthorityOnly { line: 3 },
            "a CA line is not a host key"
        );
    }

    #[test]
    fn recording_is_atomic_keeps_the_format_and_refuses_symlinks() {
        let dir = std::env::temp_dir().join(format!("lvslab-kh-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("known_hosts");
        trust_new(&path, "10.0.0.1", 22, &key(ED)).unwrap();
        assert_eq!(
            trust_new(&path, "10.0.0.2", 2222, &key(ED2)).unwrap(),
            Verdict::Known { line: 2 }
        );
        assert_eq!(
            trust_new(&path, "10.0.0.2", 2222, &key(ED2)).unwrap(),
            Verdict::Known { line: 2 },
            "recorded once"
        );
        assert!(matches!(
            trust_new(&path, "10.0.0.2", 2222, &key(ED)).unwrap(),
            Verdict::Changed { line: 2, .. }
        ));
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            format!("10.0.0.1 ssh-ed25519 {ED}\n[10.0.0.2]:2222 ssh-ed25519 {ED2}\n")
        );
        let hashed = dir.join("hashed");
        std::fs::write(
            &hashed,
            format!("{} ssh-ed25519 {ED}", hash_name("a").unwrap()),
        )
        .unwrap();
        trust_new(&hashed, "10.0.0.3", 22, &key(ED2)).unwrap();
        let text = std::fs::read_to_string(&hashed).unwrap();
        assert!(!text.contains("10.0.0.3"), "stays hashed: {text}");
        assert_eq!(
            KnownHosts::parse(&text).check("10.0.0.3", 22, &key(ED2)),
            Verdict::Known { line: 2 }
        );
        let link = dir.join("link");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        assert!(trust_new(&link, "10.0.0.4", 22, &key(ED)).is_err());
        let leftovers: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().contains(".lvslab-"))
            .collect();
        assert!(leftovers.is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn runs_recording_at_once_lose_nothing_and_write_back_no_stale_copy() {
        let dir = std::env::temp_dir().join(format!("lvslab-kh-race-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("known_hosts");
        // Threads open the file each on their own, so their flocks exclude each other as
        // those of separate processes do.
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let path = path.clone();
                std::thread::spawn(move || {
                    trust_new(&path, &format!("10.0.0.{i}"), 22, &key(ED)).unwrap()
                })
            })
            .collect();
        for t in threads {
            assert!(matches!(t.join().unwrap(), Verdict::Known { .. }));
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for i in 0..8 {
            let name = format!("10.0.0.{i} ");
            assert_eq!(text.matches(&name).count(), 1, "{text}");
        }

        // A writer that takes no lock (ssh-keygen -R) replaced the file after it was read: the
        // copy made from what was read is not renamed over it.
        let held = std::fs::metadata(&path).unwrap();
        std::fs::write(dir.join("new"), "10.0.0.1 ssh-ed25519 X\n").unwrap();
        std::fs::rename(dir.join("new"), &path).unwrap();
        assert!(!replace(&dir, &path, &held, "stale\n").unwrap());
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "10.0.0.1 ssh-ed25519 X\n"
        );
        let held = std::fs::metadata(&path).unwrap();
        assert!(replace(&dir, &path, &held, "fresh\n").unwrap());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "fresh\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
