//! Files and paths: their state, their content, written atomically, removed.

use super::{ParseError, Read, argv, quote};

/// Prints `absent`, `notafile`, or `<mode octal> <owner>:<group> <sha256> -` of a regular file.
pub fn file_stat(path: &str) -> Read<FileStat> {
    let p = quote(path);
    let line = format!(
        "if [ -f {p} ]; then printf '%s ' \"$(stat -c '%a %U:%G' {p})\"; sha256sum < {p}; elif [ -e {p} ]; then echo notafile; else echo absent; fi"
    );
    Read::new(line, parse_file_stat)
}

/// A path as [`file_stat`] finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileStat {
    /// Nothing there (or a symlink to nothing).
    Absent,
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

/// Prints the file's content (for diffs; the bytes as they are, not read).
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
}
