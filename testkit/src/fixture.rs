//! Test fixtures on real kernel parts: a sparse file in a tempdir, a loop device attached to
//! it, a filesystem made on it, mounted in a tempdir. Everything is released on `Drop`, also
//! after a panic: unmount, detach the loop device (it is also attached with autoclear, so the
//! kernel detaches it if the process dies), remove the tempdir.
//!
//! Only what a fixture created is ever touched: loop devices are obtained from
//! `/dev/loop-control` (never by number) and mounts are made in the fixture's own tempdir.

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Whether the process runs as root.
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Whether root tests must run (and fail if they cannot set up): as root, or with `CI=true`.
pub fn root_tests_required() -> bool {
    is_root() || std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// A sparse file of a given size in its own tempdir.
#[derive(Debug)]
pub struct SparseFile {
    path: PathBuf,
    dir: tempfile::TempDir,
}

impl SparseFile {
    /// Creates a sparse file of `size` bytes in a new tempdir.
    pub fn new(size: u64) -> io::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("btrfs-lvm-img-")
            .tempdir()?;
        let path = dir.path().join("disk.img");
        std::fs::File::create(&path)?.set_len(size)?;
        Ok(SparseFile { path, dir })
    }

    /// The image file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The tempdir holding the image.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Copies this unmounted btrfs image into a new tempdir (`cp --sparse=always`) and gives
    /// the copy a fresh random fsid (`btrfstune -f -u`), so the copy starts from a byte-identical
    /// layout yet can be mounted beside other copies: the kernel's device registry keys on the
    /// fsid. For benchmarks that compare two contenders on identical filesystems; the image
    /// must not be mounted while it is copied.
    pub fn clone_with_new_fsid(&self) -> io::Result<SparseFile> {
        let copy = SparseFile::new(0)?;
        run(Command::new("cp")
            .arg("--sparse=always")
            .arg(self.path())
            .arg(copy.path()))?;
        run(Command::new("btrfstune")
            .args(["-f", "-u"])
            .arg(copy.path()))?;
        Ok(copy)
    }
}

pub use crate::loopdev::LoopDevice;

/// A mount in a tempdir, unmounted on drop.
#[derive(Debug)]
pub struct Mount {
    target: tempfile::TempDir,
    mounted: bool,
}

impl Mount {
    /// Mounts `device` with filesystem type `fstype` and `options` on a new tempdir.
    pub fn new(device: &Path, fstype: &str, options: &str) -> io::Result<Self> {
        let target = tempfile::Builder::new()
            .prefix("btrfs-lvm-mnt-")
            .tempdir()?;
        let mut m = Mount {
            target,
            mounted: false,
        };
        m.mount_again(device, fstype, options)?;
        Ok(m)
    }

    /// Mounts `device` on the same mount point again after [`unmount`](Self::unmount), so
    /// paths below it stay valid.
    pub fn mount_again(&mut self, device: &Path, fstype: &str, options: &str) -> io::Result<()> {
        if self.mounted {
            return Err(io::Error::other("already mounted"));
        }
        let data = (!options.is_empty()).then_some(options);
        retry_while_busy(|| {
            mount(
                Some(device),
                self.target.path(),
                Some(fstype),
                MsFlags::empty(),
                data,
            )
        })
        .map_err(|e| {
            io::Error::other(format!(
                "mount {} on {}: {e}",
                device.display(),
                self.target.path().display()
            ))
        })?;
        self.mounted = true;
        Ok(())
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        self.target.path()
    }

    /// Unmounts now (e.g. to remount), reporting errors.
    pub fn unmount(&mut self) -> io::Result<()> {
        if self.mounted {
            retry_while_busy(|| umount2(self.target.path(), MntFlags::empty()))
                .map_err(io::Error::from)?;
            self.mounted = false;
        }
        Ok(())
    }
}

/// Retries `op` while it fails with EBUSY, for up to 5 s. A child process that another test
/// thread is starting holds copies of this process's descriptors between fork and exec, which
/// keeps a filesystem or loop device busy for a moment.
fn retry_while_busy(mut op: impl FnMut() -> nix::Result<()>) -> nix::Result<()> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match op() {
            Err(nix::errno::Errno::EBUSY) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            result => return result,
        }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if self.mounted
            && retry_while_busy(|| umount2(self.target.path(), MntFlags::empty())).is_err()
        {
            // Busy (e.g. a panicking test left a file open): detach lazily so the tempdir and
            // loop device still go away once the last user closes.
            let _ = umount2(self.target.path(), MntFlags::MNT_DETACH);
        }
    }
}

/// How to make the btrfs filesystem of a [`Scratch`].
#[derive(Debug, Clone, Default)]
pub struct BtrfsOptions {
    /// Metadata profile (`dup` or `single`); `None` leaves mkfs's default.
    pub metadata: Option<String>,
    /// Label.
    pub label: Option<String>,
    /// Mixed block groups.
    pub mixed: bool,
    /// Mount options.
    pub mount_options: String,
}

/// Which filesystem a [`Scratch`] holds.
#[derive(Debug, Clone)]
pub enum FsKind {
    /// btrfs, made by [`make_btrfs`].
    Btrfs(BtrfsOptions),
    /// ext4, made by `mkfs.ext4` (for comparisons and "not btrfs" tests).
    Ext4,
}

impl FsKind {
    /// The filesystem type and mount options to mount it with.
    fn mount_spec(&self) -> (&'static str, String) {
        match self {
            FsKind::Btrfs(o) => ("btrfs", o.mount_options.clone()),
            FsKind::Ext4 => ("ext4", String::new()),
        }
    }
}

/// Makes a btrfs filesystem on `device`. The one place the fixtures create btrfs: the native
/// formatter ([`btrfs_kit::mkfs`]), so no btrfs-progs binary is needed. Mixed block groups are
/// not supported by it and are refused.
pub fn make_btrfs(device: &Path, options: &BtrfsOptions) -> io::Result<()> {
    use btrfs_kit::mkfs::{mkfs, MkfsOptions};
    if options.mixed {
        return Err(io::Error::other(
            "the native mkfs does not support mixed block groups",
        ));
    }
    let mut o = MkfsOptions::default();
    o.force = true;
    if let Some(m) = &options.metadata {
        o.metadata = m.parse().map_err(io::Error::other)?;
    }
    if let Some(l) = &options.label {
        o.label = l.clone();
    }
    mkfs(device, &o).map_err(|e| io::Error::other(e.to_string()))?;
    Ok(())
}

fn run(cmd: &mut Command) -> io::Result<()> {
    let out = cmd
        .output()
        .map_err(|e| io::Error::other(format!("{cmd:?}: {e}")))?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "{cmd:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// A mounted scratch filesystem on a loop device over a sparse file.
#[derive(Debug)]
pub struct Scratch {
    // Field order is drop order: unmount, then detach, then delete the image.
    mount: Mount,
    device: LoopDevice,
    image: SparseFile,
    kind: FsKind,
}

impl Scratch {
    /// A btrfs filesystem of `size` bytes with default options.
    pub fn btrfs(size: u64) -> io::Result<Self> {
        Self::new(size, FsKind::Btrfs(BtrfsOptions::default()))
    }

    /// A filesystem of `size` bytes of the given kind, mounted.
    pub fn new(size: u64, kind: FsKind) -> io::Result<Self> {
        let image = SparseFile::new(size)?;
        let device = LoopDevice::attach(image.path())?;
        match &kind {
            FsKind::Btrfs(o) => make_btrfs(device.path(), o)?,
            FsKind::Ext4 => run(Command::new("mkfs.ext4")
                .args(["-q", "-F"])
                .arg(device.path()))?,
        }
        Self::mount_on(image, device, kind)
    }

    /// Attaches an existing filesystem image (e.g. from
    /// [`SparseFile::clone_with_new_fsid`]) and mounts it, without making a filesystem.
    pub fn mount_image(image: SparseFile, kind: FsKind) -> io::Result<Self> {
        let device = LoopDevice::attach(image.path())?;
        Self::mount_on(image, device, kind)
    }

    /// Mounts the filesystem on `device` (backed by `image`) in a new tempdir.
    fn mount_on(image: SparseFile, device: LoopDevice, kind: FsKind) -> io::Result<Self> {
        let (fstype, options) = kind.mount_spec();
        let mount = Mount::new(device.path(), fstype, &options)?;
        Ok(Scratch {
            mount,
            device,
            image,
            kind,
        })
    }

    /// Unmounts and detaches, keeping the image (e.g. as the template of
    /// [`SparseFile::clone_with_new_fsid`]).
    pub fn into_image(self) -> io::Result<SparseFile> {
        let Scratch {
            mut mount,
            device,
            image,
            ..
        } = self;
        mount.unmount()?;
        drop(device);
        Ok(image)
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        self.mount.path()
    }

    /// The loop device.
    pub fn device(&self) -> &Path {
        self.device.path()
    }

    /// The backing image file.
    pub fn image(&self) -> &Path {
        self.image.path()
    }

    /// Unmounts and mounts again (same device, same options).
    pub fn remount(&mut self) -> io::Result<()> {
        self.mount.unmount()?;
        let (fstype, options) = self.kind.mount_spec();
        self.mount = Mount::new(self.device.path(), fstype, &options)?;
        Ok(())
    }
}

pub use crate::multi::MultiScratch;
