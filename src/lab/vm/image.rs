//! The VM image cache: a stock Debian kernel that has IPVS (the cloud flavour, downloaded and
//! unpacked, never installed on this machine) and a minimal root filesystem built with mmdebstrap,
//! packed once as a newc cpio archive.
//!
//! Layout of the cache directory (`/var/cache/lvslab/vm`, or `$LVSLAB_VM_CACHE`):
//! ```text
//! lock                 flock: one process builds, copies from or cleans the cache at a time
//! <key>/vmlinuz        the guest kernel
//! <key>/base.cpio      the root filesystem with the kernel's modules
//! <key>/image.json     what it was built from
//! build-<pid>/         a build in progress; renamed to <key>/ when complete
//! runs/<pid>-<n>/      one VM run (see `super::run_vm`)
//! ```
//! The key names the recipe (a hash of everything below that shapes the image) and the kernel
//! package version: a new kernel in the apt lists or a changed recipe builds a new image.

use std::fs;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Instant;

use miette::{Context, IntoDiagnostic, miette};
use sha2::{Digest, Sha256};
use tokio::process::Command;

use super::{VmEvent, cpio, sources};

/// Bump when the way the image is built changes in a way the constants below do not show
/// (the build steps, the cpio writer).
const RECIPE_VERSION: u32 = 1;
/// The guest's Debian release. The lvslab binary is copied in: it needs a glibc no newer
/// than this release's (a binary built on Debian 12 runs here).
pub const SUITE: &str = "bookworm";
/// Its dependency names the current kernel package (`linux-image-<abi>-cloud-amd64`).
const KERNEL_META_PACKAGE: &str = "linux-image-cloud-amd64";
/// Everything the guest's scenarios and the namespace lab use: the packages of the programs
/// that hosts, the namespace lab and the guest run (one list, `crate::programs`). The image's
/// build checks that each of those programs, and each of the base system's, is there.
pub fn guest_packages() -> Vec<String> {
    use crate::programs::{self, Place};
    programs::packages(
        programs::PROGRAMS.iter().copied().filter(|p| {
            [Place::Host, Place::Lab, Place::Guest]
                .iter()
                .any(|place| p.runs_in(*place))
        }),
        "debian",
    )
}
/// Documentation and translations: a smaller archive boots faster under TCG.
const DPKG_EXCLUDES: &[&str] = &[
    "/usr/share/doc/*",
    "/usr/share/man/*",
    "/usr/share/info/*",
    "/usr/share/locale/*",
];
/// A throwaway root filesystem needs no fsync per file; no translated package descriptions.
const MMDEBSTRAP_OPTIONS: &[&str] = &[
    "--dpkgopt=force-unsafe-io",
    "--aptopt=Acquire::Languages \"none\"",
];
/// Module subtrees copied into the guest: IPVS and netfilter, bridge (net/), libcrc32c (lib/),
/// crc32c (crypto/), overlay for the namespace lab's per-node /etc, virtio.
const MODULE_TREES: &[&str] = &[
    "kernel/net",
    "kernel/lib",
    "kernel/crypto",
    "kernel/fs/overlayfs",
    "kernel/drivers/virtio",
];
/// Directories whose top-level modules only are copied: veth, dummy, macvlan, virtio_net, ...
/// (not the hardware drivers below them).
const MODULE_FILES_IN: &[&str] = &["kernel/drivers/net"];
/// The module index files depmod needs next to the modules.
const MODULE_INDEX_FILES: &[&str] = &[
    "modules.builtin",
    "modules.builtin.modinfo",
    "modules.order",
];

const DEFAULT_CACHE_DIR: &str = "/var/cache/lvslab/vm";
/// Overrides the cache directory (e.g. a CI workspace directory that is kept between runs).
pub const CACHE_ENV: &str = "LVSLAB_VM_CACHE";

/// A complete image in the cache.
#[derive(Debug, Clone)]
pub struct Image {
    pub key: String,
    pub kernel: PathBuf,
    pub base_cpio: PathBuf,
}

/// Every program the hosts, the namespace lab and the guest run, and the base system's, found in
/// the new root (a minimal Debian: its Essential packages, apt, and the list's packages): the
/// list's packages are the right ones and its base programs really are base.
async fn check_programs(rootfs: &Path) -> miette::Result<()> {
    use crate::programs::{self, Place};
    let check = programs::shell_check(&[Place::Host, Place::Lab, Place::Guest]);
    let out = tool(
        Command::new("chroot")
            .arg(rootfs)
            .args(["/bin/sh", "-c", &check])
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            ),
    )
    .await
    .wrap_err("cannot look for the lab's programs in the guest's root filesystem")?;
    let missing: Vec<&str> = out
        .lines()
        .filter_map(|l| l.strip_prefix("missing "))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(miette!(
            "the guest's root filesystem, built with the packages of src/programs.rs, lacks {}: \
             that list names the wrong package for them (or BASE names a program a minimal \
             Debian does not have)",
            missing.join(", ")
        ))
    }
}

/// The kernel package the image is built from.
#[derive(Debug, Clone)]
struct KernelPackage {
    name: String,
    version: String,
}

/// The cache directory.
pub fn cache_dir() -> PathBuf {
    std::env::var_os(CACHE_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CACHE_DIR))
}

/// The cache, locked for this process until dropped.
pub struct Cache {
    dir: PathBuf,
    lock: fs::File,
}

impl Cache {
    /// Opens the cache and waits for its lock (another lvslab may be building the image).
    pub async fn lock(progress: &dyn Fn(VmEvent<'_>)) -> miette::Result<Cache> {
        let dir = cache_dir();
        fs::create_dir_all(&dir)
            .into_diagnostic()
            .wrap_err_with(|| {
                format!(
                    "cannot create the VM cache directory {} (run as root, or set {CACHE_ENV})",
                    dir.display()
                )
            })?;
        let lock_path = dir.join("lock");
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .into_diagnostic()
            .wrap_err_with(|| format!("cannot open {}", lock_path.display()))?;
        let lock = match lock.try_lock() {
            Ok(()) => lock,
            Err(_) => {
                progress(VmEvent::Step(
                    "waiting for another lvslab using the VM cache",
                ));
                tokio::task::spawn_blocking(move || lock.lock().map(|()| lock))
                    .await
                    .into_diagnostic()?
                    .into_diagnostic()
                    .wrap_err_with(|| format!("cannot lock {}", lock_path.display()))?
            }
        };
        let cache = Cache { dir, lock };
        cache.remove_stale(progress);
        Ok(cache)
    }

    /// The image for the current recipe and kernel, built first when it is not in the cache.
    pub async fn image(&self, progress: &dyn Fn(VmEvent<'_>)) -> miette::Result<Image> {
        let recipe = recipe_fingerprint();
        let kernel = match kernel_package().await {
            Ok(kernel) => kernel,
            Err(error) => {
                // Offline or no apt lists: an image of this recipe already built still serves.
                if let Some(image) = self.newest_image(&recipe) {
                    progress(VmEvent::Step(&format!(
                        "cannot ask apt for the current kernel ({error}); using cached image {}",
                        image.key
                    )));
                    return Ok(image);
                }
                return Err(error);
            }
        };
        let key = sanitize(&format!("{}_{}_{recipe}", kernel.name, kernel.version));
        let image = self.image_at(&key);
        if image.kernel.is_file() && image.base_cpio.is_file() {
            return Ok(image);
        }
        let started = Instant::now();
        progress(VmEvent::Step(&format!(
            "building the VM image once ({} {}, Debian {SUITE} root filesystem; about 35 s)",
            kernel.name, kernel.version
        )));
        let build = self.dir.join(format!("build-{}", std::process::id()));
        remove_tree(&build)?;
        fs::create_dir_all(&build)
            .into_diagnostic()
            .wrap_err_with(|| format!("cannot create {}", build.display()))?;
        let built = build_image(&build, &kernel, &recipe, progress).await;
        if let Err(error) = built {
            let _ = remove_tree(&build);
            return Err(error);
        }
        let final_dir = self.dir.join(&key);
        remove_tree(&final_dir)?;
        fs::rename(&build, &final_dir)
            .into_diagnostic()
            .wrap_err_with(|| format!("cannot move the new image to {}", final_dir.display()))?;
        self.remove_other_images(&key);
        progress(VmEvent::Step(&format!(
            "VM image {key} built in {:.1} s",
            started.elapsed().as_secs_f64()
        )));
        Ok(image)
    }

    fn image_at(&self, key: &str) -> Image {
        let dir = self.dir.join(key);
        Image {
            key: key.to_string(),
            kernel: dir.join("vmlinuz"),
            base_cpio: dir.join("base.cpio"),
        }
    }

    fn newest_image(&self, recipe: &str) -> Option<Image> {
        let entries = fs::read_dir(&self.dir).ok()?;
        entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let key = e.file_name().to_str()?.to_string();
                let modified = e.metadata().ok()?.modified().ok()?;
                key.ends_with(&format!("_{recipe}"))
                    .then_some((modified, key))
            })
            .map(|(modified, key)| (modified, self.image_at(&key)))
            .filter(|(_, image)| image.kernel.is_file() && image.base_cpio.is_file())
            .max_by_key(|(modified, _)| *modified)
            .map(|(_, image)| image)
    }

    /// Older images (another kernel or recipe): each is a few hundred MB.
    fn remove_other_images(&self, keep: &str) {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.filter_map(|e| e.ok()) {
            let name = entry.file_name().to_string_lossy().to_string();
            if name != keep && entry.path().join("image.json").is_file() {
                let _ = remove_tree(&entry.path());
            }
        }
    }

    /// Builds and runs left behind by processes that no longer exist (a crash, a kill).
    fn remove_stale(&self, progress: &dyn Fn(VmEvent<'_>)) {
        let mut stale = Vec::new();
        for (dir, prefix, sep) in [
            (self.dir.clone(), "build-", None),
            (self.dir.join("runs"), "", Some('-')),
        ] {
            let Ok(entries) = fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.filter_map(|e| e.ok()) {
                let name = entry.file_name().to_string_lossy().to_string();
                let Some(rest) = name.strip_prefix(prefix) else {
                    continue;
                };
                let pid = match sep {
                    Some(sep) => rest.split(sep).next().unwrap_or_default(),
                    None => rest,
                };
                let Ok(pid) = pid.parse::<u32>() else {
                    continue;
                };
                if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
                    stale.push(entry.path());
                }
            }
        }
        for path in stale {
            if let Err(error) = remove_tree(&path) {
                progress(VmEvent::Step(&format!(
                    "cannot remove stale {}: {error:?}",
                    path.display()
                )));
            }
        }
    }
}

impl Drop for Cache {
    fn drop(&mut self) {
        let _ = self.lock.unlock();
    }
}

/// Everything that shapes the image, hashed: a change rebuilds it.
fn recipe_fingerprint() -> String {
    let recipe = format!(
        "{RECIPE_VERSION}|{SUITE}|{KERNEL_META_PACKAGE}|{:?}|{DPKG_EXCLUDES:?}|\
         {MMDEBSTRAP_OPTIONS:?}|\
         {MODULE_TREES:?}|{MODULE_FILES_IN:?}|{MODULE_INDEX_FILES:?}",
        guest_packages()
    );
    let digest = Sha256::digest(recipe.as_bytes());
    digest.iter().take(5).map(|b| format!("{b:02x}")).collect()
}

/// Keeps a key usable as a file name and in qemu's arguments.
fn sanitize(key: &str) -> String {
    key.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// The current cloud kernel package and its candidate version, from the machine's apt lists.
async fn kernel_package() -> miette::Result<KernelPackage> {
    let depends =
        tool(Command::new("apt-cache").args(["depends", "--important", KERNEL_META_PACKAGE]))
            .await
            .wrap_err("cannot ask apt which kernel package is current (try `apt-get update`)")?;
    let name = depends
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Depends:"))
        .map(str::trim)
        .find(|p| p.starts_with("linux-image-"))
        .ok_or_else(|| miette!("apt-cache names no kernel package for {KERNEL_META_PACKAGE}"))?
        .to_string();
    let show = tool(Command::new("apt-cache").args(["show", "--no-all-versions", &name]))
        .await
        .wrap_err_with(|| format!("cannot ask apt about {name}"))?;
    let version = show
        .lines()
        .find_map(|l| l.strip_prefix("Version:"))
        .map(|v| v.trim().to_string())
        .ok_or_else(|| miette!("apt-cache shows no version of {name}"))?;
    Ok(KernelPackage { name, version })
}

async fn build_image(
    build: &Path,
    kernel: &KernelPackage,
    recipe: &str,
    progress: &dyn Fn(VmEvent<'_>),
) -> miette::Result<()> {
    // The kernel: downloaded and unpacked, never installed here.
    progress(VmEvent::Step(&format!(
        "downloading {} {}",
        kernel.name, kernel.version
    )));
    let debs = build.join("deb");
    fs::create_dir_all(&debs).into_diagnostic()?;
    tool(
        Command::new("apt-get")
            // Downloading as root into a directory _apt cannot write: no sandbox warning.
            .args(["-q", "-o", "APT::Sandbox::User=root", "download"])
            .arg(format!("{}={}", kernel.name, kernel.version))
            .current_dir(&debs),
    )
    .await
    .wrap_err_with(|| format!("cannot download {} {}", kernel.name, kernel.version))?;
    let deb = fs::read_dir(&debs)
        .into_diagnostic()?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .ok_or_else(|| miette!("apt-get download left no .deb in {}", debs.display()))?;
    let unpacked = build.join("kernel");
    tool(Command::new("dpkg").arg("-x").arg(&deb).arg(&unpacked))
        .await
        .wrap_err_with(|| format!("cannot unpack {}", deb.display()))?;
    let (kver, modules) = find_modules(&unpacked)?;
    let vmlinuz = unpacked.join("boot").join(format!("vmlinuz-{kver}"));
    fs::copy(&vmlinuz, build.join("vmlinuz"))
        .into_diagnostic()
        .wrap_err_with(|| format!("the kernel package has no {}", vmlinuz.display()))?;

    // The root filesystem. mmdebstrap mounts /proc, /sys, /dev inside its chroot: a private
    // mount namespace makes those mounts vanish with it, even when it is killed.
    let mirrors = sources::debian_mirrors(SUITE).map_err(|e| miette!("{e}"))?;
    progress(VmEvent::Step(&format!(
        "mmdebstrap {SUITE} from {}",
        mirrors.join(", ")
    )));
    let rootfs = build.join("rootfs");
    let log = build.join("mmdebstrap.log");
    let mut mmdebstrap = Command::new("unshare");
    mmdebstrap
        .args([
            "--mount",
            "--propagation",
            "private",
            "mmdebstrap",
            "--variant=apt",
        ])
        .arg(format!("--include={}", guest_packages().join(",")));
    mmdebstrap.args(MMDEBSTRAP_OPTIONS);
    for pattern in DPKG_EXCLUDES {
        mmdebstrap.arg(format!("--dpkgopt=path-exclude={pattern}"));
    }
    mmdebstrap.arg(SUITE).arg(&rootfs).args(&mirrors);
    tool_logged(&mut mmdebstrap, &log)
        .await
        .wrap_err("mmdebstrap could not build the guest's root filesystem")?;
    check_programs(&rootfs).await?;

    // The kernel's modules the lab needs, indexed for modprobe.
    progress(VmEvent::Step(
        "adding the kernel's modules, packing the root filesystem",
    ));
    let guest_modules = rootfs.join("usr/lib/modules").join(&kver);
    copy_modules(&modules, &guest_modules)?;
    tool(Command::new("depmod").arg("-b").arg(&rootfs).arg(&kver))
        .await
        .wrap_err("depmod failed on the guest's modules")?;

    let base = build.join("base.cpio");
    let rootfs_for_cpio = rootfs.clone();
    let base_for_cpio = base.clone();
    tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        let out = BufWriter::with_capacity(1 << 20, fs::File::create(&base_for_cpio)?);
        let mut writer = cpio::Writer::new(out);
        writer.tree(&rootfs_for_cpio)?;
        writer
            .finish()?
            .into_inner()
            .map_err(|e| e.into_error())?
            .sync_all()
    })
    .await
    .into_diagnostic()?
    .into_diagnostic()
    .wrap_err_with(|| format!("cannot pack {} into {}", rootfs.display(), base.display()))?;

    for dir in [&rootfs, &unpacked, &debs] {
        remove_tree(dir)?;
    }
    let manifest = serde_json::json!({
        "recipe": recipe,
        "recipe_version": RECIPE_VERSION,
        "suite": SUITE,
        "kernel_package": kernel.name,
        "kernel_version": kernel.version,
        "kernel_release": kver,
        "mirrors": mirrors,
        "packages": guest_packages(),
    });
    fs::write(build.join("image.json"), format!("{manifest:#}\n")).into_diagnostic()?;
    Ok(())
}

/// The kernel release (`6.1.0-NN-cloud-amd64`) and its module directory in an unpacked package.
fn find_modules(unpacked: &Path) -> miette::Result<(String, PathBuf)> {
    for base in ["lib/modules", "usr/lib/modules"] {
        let Ok(entries) = fs::read_dir(unpacked.join(base)) else {
            continue;
        };
        if let Some(entry) = entries
            .filter_map(|e| e.ok())
            .find(|e| e.path().join("kernel").is_dir())
        {
            return Ok((
                entry.file_name().to_string_lossy().to_string(),
                entry.path(),
            ));
        }
    }
    Err(miette!(
        "no lib/modules/<release>/kernel in the unpacked kernel package"
    ))
}

fn copy_modules(from: &Path, to: &Path) -> miette::Result<()> {
    let copy = || -> std::io::Result<()> {
        fs::create_dir_all(to)?;
        for file in MODULE_INDEX_FILES {
            if from.join(file).is_file() {
                fs::copy(from.join(file), to.join(file))?;
            }
        }
        for tree in MODULE_TREES {
            copy_tree(&from.join(tree), &to.join(tree))?;
        }
        for dir in MODULE_FILES_IN {
            fs::create_dir_all(to.join(dir))?;
            for entry in fs::read_dir(from.join(dir))? {
                let entry = entry?;
                if entry.file_type()?.is_file() {
                    fs::copy(entry.path(), to.join(dir).join(entry.file_name()))?;
                }
            }
        }
        Ok(())
    };
    copy()
        .into_diagnostic()
        .wrap_err_with(|| format!("cannot copy kernel modules into {}", to.display()))
}

/// Copies a tree of directories and regular files (kernel modules have nothing else).
fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    if !from.is_dir() {
        return Ok(());
    }
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            copy_tree(&entry.path(), &to.join(entry.file_name()))?;
        } else if kind.is_file() {
            fs::copy(entry.path(), to.join(entry.file_name()))?;
        }
    }
    Ok(())
}

/// Removes a directory tree, unless something is mounted inside it (a build killed in the middle
/// could have left its chroot's /dev or /proc mounted: deleting through those would be a disaster).
pub fn remove_tree(path: &Path) -> miette::Result<()> {
    if !path.exists() {
        return Ok(());
    }
    if let Some(mount) = mount_below(path) {
        return Err(miette!(
            "not removing {}: {} is mounted inside it (unmount it first)",
            path.display(),
            mount
        ));
    }
    fs::remove_dir_all(path)
        .into_diagnostic()
        .wrap_err_with(|| format!("cannot remove {}", path.display()))
}

fn mount_below(path: &Path) -> Option<String> {
    let canonical = fs::canonicalize(path).ok()?;
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").ok()?;
    mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .find(|mount| Path::new(mount).starts_with(&canonical))
        .map(str::to_string)
}

/// Runs a tool to completion; its stdout, or an error with its stderr.
async fn tool(cmd: &mut Command) -> miette::Result<String> {
    let shown = crate::process::describe(cmd);
    let done = crate::process::run(cmd, None, None)
        .await
        .into_diagnostic()?;
    if done.status.success() {
        Ok(done.stdout_str())
    } else {
        Err(miette!("{shown} failed ({}): {}", done.status, done.why()))
    }
}

/// Runs a long tool with its output in a log file; on failure the error shows the log's tail.
async fn tool_logged(cmd: &mut Command, log: &Path) -> miette::Result<()> {
    let shown = format!("{:?}", cmd.as_std());
    let file = fs::File::create(log).into_diagnostic()?;
    let status = cmd
        .stdin(Stdio::null())
        .stdout(file.try_clone().into_diagnostic()?)
        .stderr(file)
        .status()
        .await
        .into_diagnostic()
        .wrap_err_with(|| format!("cannot run {shown}"))?;
    if status.success() {
        return Ok(());
    }
    let text = fs::read_to_string(log).unwrap_or_default();
    let tail: Vec<&str> = text.lines().rev().take(15).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    Err(miette!(
        "{shown} failed ({status}); last lines of its output:\n{}",
        tail.join("\n")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_file_names() {
        assert_eq!(
            sanitize("linux-image-6.1.0-56-cloud-amd64_1:6.1.192+2_ab"),
            "linux-image-6.1.0-56-cloud-amd64_1-6.1.192-2_ab"
        );
    }

    #[test]
    fn the_recipe_fingerprint_is_stable_and_short() {
        assert_eq!(recipe_fingerprint(), recipe_fingerprint());
        assert_eq!(recipe_fingerprint().len(), 10);
    }

    #[test]
    fn no_removal_through_a_mount() {
        // /proc is always a mount point below /: removing / must be refused before touching it.
        assert!(mount_below(Path::new("/")).is_some());
    }
}
