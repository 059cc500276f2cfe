//! A writer for the newc cpio format, the one the Linux kernel unpacks as an initramfs.
//!
//! Two uses: the cached base archive (a whole root filesystem, walked from disk) and the small
//! per-run archive (guest /init, scenario, lvslab binary) appended to a copy of it. The kernel
//! unpacks concatenated archives in order, later entries replacing earlier ones, as long as each
//! archive starts on a 4-byte boundary: every archive written here ends padded to 512 bytes.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

const MAGIC: &str = "070701";
const TRAILER: &str = "TRAILER!!!";
const S_IFREG: u32 = 0o100000;
const S_IFDIR: u32 = 0o040000;

/// Streams entries of one newc archive into `out`. Call [`Writer::finish`] to write the trailer.
pub struct Writer<W: Write> {
    out: W,
    written: u64,
    next_ino: u32,
    /// The mtime of entries made from memory (`dir`, `file`).
    now: u32,
}

/// The header fields that differ between entries.
struct Header<'a> {
    name: &'a str,
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: u32,
    size: u64,
    rdev: (u32, u32),
}

impl<W: Write> Writer<W> {
    pub fn new(out: W) -> Self {
        Self {
            out,
            written: 0,
            next_ino: 1,
            now: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .ok()
                .and_then(|d| u32::try_from(d.as_secs()).ok())
                .unwrap_or(0),
        }
    }

    /// A directory owned by root. Parents must come before their children.
    pub fn dir(&mut self, name: &str, permissions: u32) -> io::Result<()> {
        self.header(&Header {
            mode: S_IFDIR | permissions,
            mtime: self.now,
            ..Header::root(name)
        })
    }

    /// A regular file owned by root, with its whole content.
    pub fn file(&mut self, name: &str, permissions: u32, data: &[u8]) -> io::Result<()> {
        let size = data.len() as u64;
        self.header(&Header {
            mode: S_IFREG | permissions,
            mtime: self.now,
            size,
            ..Header::root(name)
        })?;
        self.data(data)?;
        self.pad(4)
    }

    /// Every entry below `root` (not `root` itself), as it is on disk: owners, modes, mtimes,
    /// symlinks, device nodes. Names are relative (`etc/passwd`). Hard links become separate
    /// files (the unpacked tree is the same); sockets are skipped.
    pub fn tree(&mut self, root: &Path) -> io::Result<()> {
        self.walk(root, "")
    }

    fn walk(&mut self, dir: &Path, prefix: &str) -> io::Result<()> {
        let mut entries = fs::read_dir(dir)?.collect::<io::Result<Vec<_>>>()?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let file_name = entry.file_name();
            let Some(file_name) = file_name.to_str() else {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("file name is not UTF-8: {}", entry.path().display()),
                ));
            };
            let name = format!("{prefix}{file_name}");
            let path = entry.path();
            let meta = fs::symlink_metadata(&path)?;
            let file_type = meta.file_type();
            if file_type.is_socket() {
                continue;
            }
            let header = Header {
                name: &name,
                mode: meta.mode(),
                uid: meta.uid(),
                gid: meta.gid(),
                mtime: u32::try_from(meta.mtime()).unwrap_or(0),
                size: 0,
                rdev: (0, 0),
            };
            if file_type.is_dir() {
                self.header(&header)?;
                self.walk(&path, &format!("{name}/"))?;
            } else if file_type.is_symlink() {
                let target = fs::read_link(&path)?;
                let target = target.as_os_str().as_encoded_bytes();
                self.header(&Header {
                    size: target.len() as u64,
                    ..header
                })?;
                self.data(target)?;
                self.pad(4)?;
            } else if file_type.is_file() {
                self.header(&Header {
                    size: meta.len(),
                    ..header
                })?;
                let copied = io::copy(&mut fs::File::open(&path)?, &mut self.out)?;
                if copied != meta.len() {
                    return Err(io::Error::other(format!(
                        "{} changed size while being archived",
                        path.display()
                    )));
                }
                self.written += copied;
                self.pad(4)?;
            } else {
                // Character and block devices, FIFOs: the header alone describes them.
                let rdev = meta.rdev();
                self.header(&Header {
                    rdev: (major(rdev), minor(rdev)),
                    ..header
                })?;
            }
        }
        Ok(())
    }

    /// Writes the trailer, pads to 512 bytes and returns the underlying writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.header(&Header {
            mode: 0,
            ..Header::root(TRAILER)
        })?;
        self.pad(512)?;
        self.out.flush()?;
        Ok(self.out)
    }

    fn header(&mut self, h: &Header<'_>) -> io::Result<()> {
        let size = u32::try_from(h.size).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} is over 4 GiB", h.name),
            )
        })?;
        let ino = if h.name == TRAILER { 0 } else { self.next_ino };
        self.next_ino += 1;
        let nlink = if h.mode & S_IFDIR == S_IFDIR { 2 } else { 1 };
        let namesize = h.name.len() + 1;
        let fields = [
            ino,
            h.mode,
            h.uid,
            h.gid,
            nlink,
            h.mtime,
            size,
            0,
            0,
            h.rdev.0,
            h.rdev.1,
            namesize as u32,
            0,
        ];
        let mut header = String::with_capacity(110);
        header.push_str(MAGIC);
        for field in fields {
            header.push_str(&format!("{field:08x}"));
        }
        self.data(header.as_bytes())?;
        self.data(h.name.as_bytes())?;
        self.data(&[0])?;
        self.pad(4)
    }

    fn data(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    fn pad(&mut self, alignment: u64) -> io::Result<()> {
        let rest = (alignment - self.written % alignment) % alignment;
        self.data(&vec![0; rest as usize])
    }
}

impl Header<'_> {
    fn root(name: &str) -> Header<'_> {
        Header {
            name,
            mode: 0,
            uid: 0,
            gid: 0,
            mtime: 0,
            size: 0,
            rdev: (0, 0),
        }
    }
}

/// glibc's `gnu_dev_major` / `gnu_dev_minor` encoding of a 64-bit device number.
fn major(dev: u64) -> u32 {
    (((dev >> 32) & 0xffff_f000) | ((dev >> 8) & 0x0000_0fff)) as u32
}

fn minor(dev: u64) -> u32 {
    (((dev >> 12) & 0xffff_ff00) | (dev & 0x0000_00ff)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(archive: &[u8], entry_offset: usize, index: usize) -> u32 {
        let start = entry_offset + 6 + index * 8;
        let text = std::str::from_utf8(&archive[start..start + 8]).expect("hex");
        u32::from_str_radix(text, 16).expect("hex field")
    }

    #[test]
    fn entries_are_aligned_and_the_archive_ends_on_512_bytes() {
        let mut w = Writer::new(Vec::new());
        w.dir("lvslab-vm", 0o755).expect("dir");
        w.file("lvslab-vm/scenario", 0o755, b"#!/bin/sh\necho hi\n")
            .expect("file");
        w.file("init", 0o755, b"x").expect("file");
        let archive = w.finish().expect("finish");
        assert_eq!(archive.len() % 512, 0);
        assert!(archive.starts_with(b"070701"));
        // First entry: a directory named "lvslab-vm" (10 bytes with NUL).
        assert_eq!(field(&archive, 0, 1), S_IFDIR | 0o755);
        assert_eq!(field(&archive, 0, 11), 10);
        // Header 110 + name 10 = 120, already 4-aligned: the second entry starts there.
        assert_eq!(&archive[120..126], b"070701");
        assert_eq!(field(&archive, 120, 1), S_IFREG | 0o755);
        assert_eq!(field(&archive, 120, 6), 18);
        // Header 110 + name 19 + pad 3 + data 18 + pad 2: the third entry starts 4-aligned.
        assert_eq!(&archive[272..278], b"070701");
        let trailer = archive
            .windows(TRAILER.len())
            .position(|w| w == TRAILER.as_bytes());
        assert!(trailer.is_some(), "trailer present");
    }

    #[test]
    fn device_numbers_split_like_glibc() {
        // glibc's gnu_dev_makedev.
        fn makedev(major: u64, minor: u64) -> u64 {
            ((major & 0xffff_f000) << 32)
                | ((major & 0xfff) << 8)
                | ((minor & 0xffff_ff00) << 12)
                | (minor & 0xff)
        }
        assert_eq!(makedev(4, 64), 0x440); // tty0
        for (maj, min) in [(4, 64), (259, 1), (4097, 0x1234)] {
            let dev = makedev(maj, min);
            assert_eq!((major(dev), minor(dev)), (maj as u32, min as u32));
        }
    }

    /// GNU cpio, when installed, must list what we wrote.
    #[test]
    fn gnu_cpio_reads_a_tree() {
        let Ok(cpio) = which("cpio") else { return };
        let dir = std::env::temp_dir().join(format!("lvslab-cpio-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("etc")).expect("mkdir");
        fs::write(dir.join("etc/hostname"), "node1\n").expect("write");
        std::os::unix::fs::symlink("etc/hostname", dir.join("link")).expect("symlink");
        let mut w = Writer::new(Vec::new());
        w.tree(&dir).expect("tree");
        let archive = w.finish().expect("finish");
        let _ = fs::remove_dir_all(&dir);
        let mut child = std::process::Command::new(cpio)
            .args(["-t", "--quiet"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("spawn cpio");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(&archive)
            .expect("feed cpio");
        let out = child.wait_with_output().expect("cpio output");
        assert!(out.status.success());
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "etc\netc/hostname\nlink\n"
        );
    }

    fn which(program: &str) -> Result<std::path::PathBuf, ()> {
        let path = std::env::var_os("PATH").ok_or(())?;
        std::env::split_paths(&path)
            .map(|d| d.join(program))
            .find(|p| p.is_file())
            .ok_or(())
    }
}
