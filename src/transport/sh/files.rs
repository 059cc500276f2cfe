//! Files and paths: their state, their content, written atomically, removed.

use super::{ParseError, Read, argv, quote};

/// Prints `link` for a symbolic link (never followed: its target is not the file),
/// `absent`, `notafile`, or `<mode octal> <owner>:<group> <sha256> -` of a regular file.
pub fn file_stat(path: &str) -> Read<FileStat> {
    let p = quote(path);
    let line = format!(
        "if [ -L {p} ]; then echo link; elif [ -f {p} ]; then printf '%s ' \"$(stat -c '%a %U:%G' {p})\"; sha256sum < {p}; elif [ -e {p} ]; then echo notafile; else echo absent; fi"
    );
    Read::new(line, parse_file_stat)
}

/// A path as [`file_stat`] finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileStat {
    /// Nothing there.
    Absent,
    /// A symbolic link: replaced by the file, never written through; its target's mode, owner
    /// and content are not the file's.
    Link,
    /// Something that is not a regular file (a directory, a device, ...).
    NotAFile,
    File {
        /// Octal, as stat prints it: `644`.
        mode: String,
        /// `user:group`.
        owner: String,
        /// Of the content, in hex.
        sha256: String,
    },
}

fn parse_file_stat(text: &str) -> Result<FileStat, ParseError> {
    match text.trim() {
        "absent" => Ok(FileStat::Absent),
        "link" => Ok(FileStat::Link),
        "notafile" => Ok(FileStat::NotAFile),
        stat => match stat.split_whitespace().collect::<Vec<_>>()[..] {
            [mode, owner, sha256, "-"] => Ok(FileStat::File {
                mode: mode.to_string(),
                owner: owner.to_string(),
                sha256: sha256.to_string(),
            }),
            _ => Err(ParseError::new(
                "not absent, notafile or a file's mode, owner and checksum",
                text,
            )),
        },
    }
}

/// Refuses (exit 4) a destination whose directory, or one above it, is a symbolic link that
/// neither root nor the writer owns. Walks `$d` up with parameter expansion (no process each).
const LINKED_PARENT_REFUSED: &str = "x=$d; u=$(id -u); while [ -n \"$x\" ] && [ \"$x\" != / ] && [ \"$x\" != . ]; do \
     if [ -L \"$x\" ]; then o=$(stat -c %u \"$x\"); if [ \"$o\" != 0 ] && [ \"$o\" != \"$u\" ]; then \
     echo \"$x is a symbolic link owned by uid $o: not followed to write $p\" >&2; exit 4; fi; fi; \
     case $x in */*) x=${x%/*};; *) x=;; esac; done;";

/// Prints the file's content (for diffs; the bytes as they are, not read).
pub fn file_read(path: &str) -> String {
    format!("cat {}", quote(path))
}

/// Write stdin to `path` atomically: a private temp file beside it (mktemp: 0600, a name no one
/// can plant), owner then mode set (the task's, else the existing file's, else the login's and
/// 0644; chown before chmod, which would clear setuid/setgid), the optional validation command
/// run on it (`%s` stands for its path), its data synced, then renamed over `path`. The
/// previous version of a regular file is kept as `<path>.lvslab-prev`, copied the same way and
/// never more readable than the new file. A symbolic link at `path` is replaced, never written
/// through, and nothing of it (its target's mode, owner or content) is taken. A directory on
/// the way that is a symbolic link owned by another user than root or the writer is refused
/// (exit 4): whoever owns it decides where the file lands. A failed validation leaves the old
/// file untouched (exit 3).
pub fn file_write(
    path: &str,
    mode: Option<&str>,
    owner: Option<&str>,
    validate: Option<&str>,
) -> String {
    let p = quote(path);
    // `f`: the destination is a regular file (not a link to one) whose mode, owner and content
    // may be kept.
    let mut s = format!(
        "set -e; p={p}; d=$(dirname \"$p\"); {LINKED_PARENT_REFUSED} mkdir -p \"$d\"; b=; \
         f=; if [ -f \"$p\" ] && [ ! -L \"$p\" ]; then f=1; fi; \
         t=$(mktemp \"$d/.lvslab.XXXXXX\"); trap 'rm -f \"$t\" ${{b:+\"$b\"}}' EXIT; \
         trap 'exit 143' TERM INT HUP PIPE; cat > \"$t\"; "
    );
    match owner {
        Some(o) => s.push_str(&format!("chown {} \"$t\"; ", quote(o))),
        None => s.push_str(
            "if [ -n \"$f\" ]; then chown \"$(stat -c %u:%g \"$p\")\" \"$t\" 2>/dev/null || true; fi; ",
        ),
    }
    match mode {
        Some(m) => s.push_str(&format!("chmod {} \"$t\"; ", quote(m))),
        None => s.push_str(
            "if [ -n \"$f\" ]; then chmod \"$(stat -c %a \"$p\")\" \"$t\"; else chmod 644 \"$t\"; fi; ",
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
         if [ -n \"$f\" ]; then b=$(mktemp \"$d/.lvslab.XXXXXX\"); cat \"$p\" > \"$b\"; \
         chmod \"$(printf '%o' $(( 0$(stat -c %a \"$p\") & 0$(stat -c %a \"$t\") )))\" \"$b\"; \
         chown \"$(stat -c %u:%g \"$p\")\" \"$b\" 2>/dev/null || true; \
         sync \"$b\" 2>/dev/null || true; mv -fT \"$b\" \"$p.lvslab-prev\"; fi; \
         mv -fT \"$t\" \"$p\"; trap - EXIT",
    );
    s
}

/// Owner and mode of an existing regular file (the ones given): chown first, as chmod after it
/// keeps setuid/setgid; a symbolic link there now is refused, never followed.
pub fn file_chmod_chown(path: &str, mode: Option<&str>, owner: Option<&str>) -> String {
    let mut steps = vec![format!(
        "{{ [ ! -L {p} ] || {{ echo {msg} >&2; exit 1; }}; }}",
        p = quote(path),
        msg = quote(&format!("{path} is a symbolic link: not followed")),
    )];
    if let Some(o) = owner {
        steps.push(argv(&["chown", o, "--", path]));
    }
    if let Some(m) = mode {
        steps.push(argv(&["chmod", m, "--", path]));
    }
    steps.join(" && ")
}

/// Prints `absent`, `file`, `directory <mode octal>` or `other`.
pub fn path_kind(path: &str) -> Read<PathKind> {
    let p = quote(path);
    let line = format!(
        "if [ -d {p} ]; then echo \"directory $(stat -c %a {p})\"; elif [ -f {p} ]; then echo file; elif [ -e {p} ] || [ -L {p} ]; then echo other; else echo absent; fi"
    );
    Read::new(line, parse_path_kind)
}

/// What is at a path, as [`path_kind`] finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathKind {
    Absent,
    File,
    Directory {
        /// Octal, as stat prints it: `755`.
        mode: String,
    },
    /// Anything else, a symlink to nothing too.
    Other,
}

impl PathKind {
    /// The word the query prints first.
    pub fn word(&self) -> &'static str {
        match self {
            PathKind::Absent => "absent",
            PathKind::File => "file",
            PathKind::Directory { .. } => "directory",
            PathKind::Other => "other",
        }
    }
}

fn parse_path_kind(text: &str) -> Result<PathKind, ParseError> {
    match text.split_whitespace().collect::<Vec<_>>()[..] {
        ["absent"] => Ok(PathKind::Absent),
        ["file"] => Ok(PathKind::File),
        ["directory", mode] => Ok(PathKind::Directory { mode: mode.into() }),
        ["other"] => Ok(PathKind::Other),
        _ => Err(ParseError::new(
            "not absent, file, a directory's mode or other",
            text,
        )),
    }
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

/// Creates the (empty) file `path`: the stop flag of a drill's background loops.
pub fn touch(path: &str) -> String {
    format!(": > {}", quote(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::sh::tests::sh;

    /// Captured on this machine: a file of mode 640, an empty file of nobody's, a directory, a
    /// fifo, a symlink to nothing, nothing.
    #[test]
    fn a_path_s_state_and_kind() {
        let file = |mode: &str, owner: &str, sha256: &str| FileStat::File {
            mode: mode.into(),
            owner: owner.into(),
            sha256: sha256.into(),
        };
        let table = [
            (
                "640 root:root 2c8b08da5ce60398e1f19af0e5dccc744df274b826abe585eaba68c525434806  -\n",
                file(
                    "640",
                    "root:root",
                    "2c8b08da5ce60398e1f19af0e5dccc744df274b826abe585eaba68c525434806",
                ),
            ),
            (
                "644 nobody:nogroup e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855  -\n",
                file(
                    "644",
                    "nobody:nogroup",
                    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                ),
            ),
            // A directory or a fifo.
            ("notafile\n", FileStat::NotAFile),
            // Nothing, or a symlink to nothing.
            ("absent\n", FileStat::Absent),
        ];
        for (output, want) in table {
            assert_eq!(file_stat("/etc/x").parse(output), Ok(want), "{output:?}");
        }
        // stat failed (its error on stderr): the checksum alone.
        for bad in [
            "",
            " e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855  -\n",
        ] {
            assert!(file_stat("/etc/x").parse(bad).is_err(), "{bad:?}");
        }
        let table = [
            ("file\n", PathKind::File),
            (
                "directory 750\n",
                PathKind::Directory { mode: "750".into() },
            ),
            // A fifo, a symlink to nothing.
            ("other\n", PathKind::Other),
            ("absent\n", PathKind::Absent),
        ];
        for (output, want) in table {
            assert_eq!(path_kind("/x").parse(output), Ok(want), "{output:?}");
        }
        // stat failed (its error on stderr): no mode.
        for bad in ["", "directory \n", "directory\n"] {
            assert!(path_kind("/x").parse(bad).is_err(), "{bad:?}");
        }
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
        let (_, stat) = sh(file_stat(p).line());
        assert!(
            matches!(file_stat(p).parse(&stat), Ok(FileStat::File { mode, .. }) if mode == "640"),
            "{stat}"
        );
        let (_, kind) = sh(path_kind(dir.to_str().unwrap()).line());
        assert!(
            matches!(path_kind("/x").parse(&kind), Ok(PathKind::Directory { .. })),
            "{kind}"
        );
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

    /// `file_write` in `sh` with `stdin`; its exit status and stderr.
    fn write_with(cmd: &str, stdin: &str) -> (Option<i32>, String) {
        use std::io::Write;
        let mut child = std::process::Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn mode_of(path: &std::path::Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::symlink_metadata(path)
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    }

    /// A setuid file keeps its bit whoever owns it (chown clears it: it comes first), and a
    /// rewrite with the same mode and owner is as asked.
    #[test]
    fn setuid_survives_the_owner_being_set() {
        let dir = std::env::temp_dir().join(format!("lvslab-suid-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("tool");
        let p = path.to_str().unwrap();
        // The writer's own uid and gid: chown to them clears setuid as any other would.
        let (_, me) = sh("printf '%s:%s' \"$(id -u)\" \"$(id -g)\"");
        for content in ["#!/bin/sh\n", "#!/bin/sh\nexit 0\n"] {
            let (rc, err) = write_with(&file_write(p, Some("4755"), Some(&me), None), content);
            assert_eq!(rc, Some(0), "{err}");
            assert_eq!(mode_of(&path), 0o4755);
        }
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .unwrap();
        let (rc, _) = sh(&file_chmod_chown(p, Some("2755"), Some(&me)));
        assert_eq!(rc, 0);
        assert_eq!(mode_of(&path), 0o2755);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A symbolic link planted at the destination is replaced by the file: its target keeps
    /// its content and mode, nothing of the target is copied or taken, and chmod/chown refuse
    /// to follow it.
    #[test]
    fn a_planted_link_is_replaced_never_followed() {
        let dir = std::env::temp_dir().join(format!("lvslab-link-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let target = dir.join("shadow");
        std::fs::write(&target, "root only\n").unwrap();
        std::fs::set_permissions(&target, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        let path = dir.join("index.html");
        std::os::unix::fs::symlink(&target, &path).unwrap();
        let p = path.to_str().unwrap();
        let (_, stat) = sh(file_stat(p).line());
        assert_eq!(file_stat(p).parse(&stat), Ok(FileStat::Link));
        let (rc, _) = sh(&file_chmod_chown(p, Some("0777"), None));
        assert_ne!(rc, 0, "chmod through a link");
        assert_eq!(mode_of(&target), 0o600);
        let (rc, err) = write_with(&file_write(p, None, None, None), "page\n");
        assert_eq!(rc, Some(0), "{err}");
        assert!(
            !std::fs::symlink_metadata(&path)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "page\n");
        assert_eq!(mode_of(&path), 0o644, "not the link's mode");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "root only\n");
        assert_eq!(mode_of(&target), 0o600);
        assert!(
            !dir.join("index.html.lvslab-prev").exists(),
            "the target's content is not the file's previous version"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A directory on the way that is a link another user owns is refused (exit 4); one the
    /// writer owns is followed (as /var/run -> /run, root's).
    #[test]
    fn a_linked_directory_of_another_user_is_refused() {
        let dir = std::env::temp_dir().join(format!("lvslab-ldir-{}", std::process::id()));
        let real = dir.join("real");
        std::fs::create_dir_all(&real).unwrap();
        let via = dir.join("via");
        std::os::unix::fs::symlink(&real, &via).unwrap();
        let dest = via.join("f");
        let d = dest.to_str().unwrap();
        let (rc, err) = write_with(&file_write(d, None, None, None), "mine\n");
        assert_eq!(rc, Some(0), "a link the writer owns: {err}");
        assert_eq!(std::fs::read_to_string(real.join("f")).unwrap(), "mine\n");
        // Another owner for the link: only root can give one away.
        let (rc, _) = sh(&format!("chown -h 65534 {}", quote(via.to_str().unwrap())));
        if rc == 0 {
            let (rc, err) = write_with(&file_write(d, None, None, None), "theirs\n");
            assert_eq!(rc, Some(4), "{err}");
            assert!(err.contains("symbolic link owned by uid 65534"), "{err}");
            assert_eq!(std::fs::read_to_string(real.join("f")).unwrap(), "mine\n");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
