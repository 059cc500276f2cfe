//! File modes that make a file unsafe to trust, judged as OpenSSH judges them: a private key
//! others can read, and input (an inventory, a playbook directory) others can write, which
//! decides what runs as root on every host.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Refuses a private key that group or others may access, when this user owns it (OpenSSH's
/// rule and words: it ignores such a key).
pub fn key_protected(path: &Path) -> Result<(), String> {
    let meta =
        std::fs::metadata(path).map_err(|e| format!("cannot read key {}: {e}", path.display()))?;
    // SAFETY: geteuid has no preconditions and touches no memory of ours.
    let me = unsafe { libc::geteuid() };
    key_mode_ok(path, meta.mode(), meta.uid() == me)
}

fn key_mode_ok(path: &Path, mode: u32, owned: bool) -> Result<(), String> {
    if owned && mode & 0o077 != 0 {
        return Err(format!(
            "UNPROTECTED PRIVATE KEY FILE! Permissions {:04o} for '{}' are too open: it is required that your private key files are NOT accessible by others, so this key is ignored (as OpenSSH does); chmod 600 '{}'",
            mode & 0o7777,
            path.display(),
            path.display()
        ));
    }
    Ok(())
}

/// A warning when `path` (a file or directory) can be written by group or others: whoever
/// can write it decides what lvslab runs as root on the hosts. A directory's files and
/// subdirectories are looked at too; a symlink is judged by what it points to, and not
/// descended into below `path` (no loops).
pub fn writable_by_others(path: &Path, what: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo = vec![(path.to_path_buf(), true)];
    while let Some((p, top)) = todo.pop() {
        let Ok(meta) = std::fs::metadata(&p) else {
            continue;
        };
        let label = match (top, meta.is_dir()) {
            (true, _) => what.to_string(),
            (false, true) => format!("directory in the {what}"),
            (false, false) => format!("file in the {what}"),
        };
        if let Some(w) = writable_warning(&p, meta.mode(), &label) {
            out.push(w);
        }
        let is_link = !top && std::fs::symlink_metadata(&p).is_ok_and(|m| m.is_symlink());
        if meta.is_dir()
            && !is_link
            && let Ok(entries) = std::fs::read_dir(&p)
        {
            let mut children: Vec<_> = entries.flatten().map(|e| (e.path(), false)).collect();
            children.sort_unstable_by(|a, b| b.0.cmp(&a.0));
            todo.extend(children);
        }
    }
    out
}

fn writable_warning(path: &Path, mode: u32, what: &str) -> Option<String> {
    (mode & 0o022 != 0).then(|| {
        format!(
            "{what} {} is writable by {} (mode {:04o}): whoever can write it decides what runs as root on the hosts; chmod go-w '{}'",
            path.display(),
            if mode & 0o002 != 0 { "every user" } else { "its group" },
            mode & 0o7777,
            path.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_others_can_read_is_refused_as_openssh_refuses_it() {
        let p = Path::new("/k/id");
        let e = key_mode_ok(p, 0o100644, true).unwrap_err();
        assert!(
            e.contains("UNPROTECTED PRIVATE KEY FILE!")
                && e.contains("Permissions 0644 for '/k/id' are too open"),
            "{e}"
        );
        assert!(key_mode_ok(p, 0o100640, true).is_err());
        assert!(key_mode_ok(p, 0o100600, true).is_ok());
        assert!(key_mode_ok(p, 0o100400, true).is_ok());
        // Another user's key: OpenSSH does not judge its mode either.
        assert!(key_mode_ok(p, 0o100644, false).is_ok());
    }

    #[test]
    fn input_others_can_write_is_named_with_its_mode() {
        let p = Path::new("/i/inv.yml");
        let w = writable_warning(p, 0o100666, "inventory").unwrap();
        assert!(
            w.starts_with("inventory /i/inv.yml is writable by every user (mode 0666)"),
            "{w}"
        );
        let g = writable_warning(p, 0o100664, "inventory").unwrap();
        assert!(g.contains("writable by its group (mode 0664)"), "{g}");
        assert!(writable_warning(p, 0o100644, "inventory").is_none());
        assert!(writable_warning(p, 0o041777, "playbook directory").is_some());
    }

    #[test]
    fn a_directory_is_looked_at_with_its_files() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("lvslab-perms-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("templates")).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let file = dir.join("templates").join("a.j2");
        std::fs::write(&file, "x").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o646)).unwrap();
        // A link is judged by its target (0646 again), and a loop is not followed.
        std::os::unix::fs::symlink(&file, dir.join("link.j2")).unwrap();
        std::os::unix::fs::symlink(&dir, dir.join("templates").join("loop")).unwrap();
        let found = writable_by_others(&dir, "playbook directory");
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(
            found[0].starts_with(&format!(
                "file in the playbook directory {} is writable by every user (mode 0646)",
                dir.join("link.j2").display()
            )),
            "{found:?}"
        );
        assert!(found[1].contains("templates/a.j2 is writable"), "{found:?}");
    }
}
