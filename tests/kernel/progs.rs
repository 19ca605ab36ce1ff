//! btrfs-progs as the oracle: the host's and the sid userland's `btrfs`, filesystems made by
//! its `mkfs.btrfs`, and reading numbers from its output.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use testkit::ensure;
use testkit::harness::Failed;

/// Which btrfs-progs answers as an oracle. The oracle tier asks both: where their outputs
/// differ, the test says which one is right and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progs {
    /// The host's (Debian 12: 6.2), `btrfs` on PATH.
    Debian,
    /// The cached Debian sid userland's (7.3: `testkit::userland`), chrooted in a private mount
    /// namespace with the filesystem's mount point bound at its own path. Run that way rather
    /// than through the userland's dynamic loader so that it sees only its own files
    /// (`/etc`, `/usr/share`, its `/var/lib/btrfs`, read-only: a scrub records no status file
    /// on the host) and the kernel's `/proc`, `/sys` and `/dev`, as on a sid machine.
    Sid,
}

impl Progs {
    /// Both, the host's first.
    pub const BOTH: [Progs; 2] = [Progs::Debian, Progs::Sid];

    /// Its name and version, for messages.
    pub fn name(self) -> String {
        match self {
            Progs::Debian => "btrfs-progs 6.2 (Debian 12)".to_string(),
            Progs::Sid => format!(
                "btrfs-progs {} (sid userland)",
                testkit::userland::Userland::sid()
                    .ok()
                    .and_then(|u| u.version("btrfs-progs"))
                    .unwrap_or_else(|| "?".to_string())
            ),
        }
    }

    /// Runs `btrfs ARGS PATH` (PATH a mount point or a file below one under `/tmp`, or a
    /// device) and returns its stdout; fails unless it exits 0.
    pub fn run(self, args: &[&str], path: &Path) -> Result<String, Failed> {
        let out = self.output(args, path)?;
        ensure!(
            out.status.success(),
            "{} {args:?} failed: {}",
            self.name(),
            String::from_utf8_lossy(&out.stderr),
        );
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Runs `btrfs ARGS PATH` (see [`Progs::run`]), whatever its exit status.
    pub fn output(self, args: &[&str], path: &Path) -> Result<Output, Failed> {
        let mut cmd = match self {
            Progs::Debian => Command::new("btrfs"),
            Progs::Sid => {
                let userland = testkit::userland::Userland::sid()?;
                // The tempdir a fixture mounted on: `/tmp/<name>`. Devices need no bind.
                let mut parts = path.components();
                let bind: Vec<PathBuf> = match (parts.next(), parts.next(), parts.next()) {
                    (_, Some(dir), Some(name)) if dir.as_os_str() == "tmp" => {
                        vec![Path::new("/tmp").join(name)]
                    }
                    (_, Some(dir), _) if dir.as_os_str() == "dev" => Vec::new(),
                    _ => return Err(format!("{}: not under /tmp or /dev", path.display()).into()),
                };
                let binds: Vec<&Path> = bind.iter().map(PathBuf::as_path).collect();
                userland.command("/usr/bin/btrfs", &binds)?
            }
        };
        Ok(cmd.args(args).arg(path).output().map_err(|e| {
            format!(
                "run {} {args:?} (the oracle; is it installed?): {e}",
                self.name()
            )
        })?)
    }
}

/// The numbers after `key` in `text` (e.g. `total=` → 123).
pub fn number_after(text: &str, key: &str) -> Option<u64> {
    let start = text.find(key)? + key.len();
    let digits: String = text[start..]
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// A filesystem made by `mkfs.btrfs` (the oracle) over several loop devices, mounted: for
/// multi-device figures in the oracle tier. Dropping it unmounts, makes the kernel forget the
/// devices (so a loop number reused by another test is never taken for one of ours), then
/// detaches them.
pub struct ProgsMultiDevice {
    mount: Option<testkit::fixture::Mount>,
    devices: Vec<Option<testkit::fixture::LoopDevice>>,
    _images: Vec<testkit::fixture::SparseFile>,
}

impl ProgsMultiDevice {
    /// `mkfs.btrfs -f ARGS DEV...` over one sparse file per size, then mounts the first
    /// device naming every device (`device=` options), so no device scan of others is needed.
    pub fn new(sizes: &[u64], mkfs_args: &[&str]) -> Result<Self, Failed> {
        let images = sizes
            .iter()
            .map(|&s| testkit::fixture::SparseFile::new(s))
            .collect::<std::io::Result<Vec<_>>>()?;
        let devices = images
            .iter()
            .map(|i| testkit::fixture::LoopDevice::attach(i.path()).map(Some))
            .collect::<std::io::Result<Vec<_>>>()?;
        let mut fs = ProgsMultiDevice {
            mount: None,
            devices,
            _images: images,
        };
        let out = Command::new("mkfs.btrfs")
            .arg("-f")
            .args(mkfs_args)
            .args(fs.present().iter().map(|d| d.as_os_str()))
            .output()
            .map_err(|e| format!("run mkfs.btrfs (the oracle; is btrfs-progs installed?): {e}"))?;
        ensure!(
            out.status.success(),
            "mkfs.btrfs {mkfs_args:?}: {}",
            String::from_utf8_lossy(&out.stderr),
        );
        fs.mount_present("")?;
        Ok(fs)
    }

    /// The paths of the devices still attached.
    fn present(&self) -> Vec<PathBuf> {
        self.devices
            .iter()
            .flatten()
            .map(|d| d.path().to_path_buf())
            .collect()
    }

    /// Mounts the first present device with `options` and a `device=` option per present one.
    fn mount_present(&mut self, options: &str) -> Result<(), Failed> {
        let present = self.present();
        let mut all: Vec<String> = present
            .iter()
            .map(|p| format!("device={}", p.display()))
            .collect();
        if !options.is_empty() {
            all.push(options.into());
        }
        let first = present.first().ok_or("no device left")?;
        self.mount = Some(testkit::fixture::Mount::new(
            first,
            "btrfs",
            &all.join(","),
        )?);
        Ok(())
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        self.mount
            .as_ref()
            .map_or(Path::new("/nonexistent"), |m| m.path())
    }

    /// Unmounts, removes device `index` for good (the kernel forgets it, its loop device is
    /// detached) and mounts the rest `-o degraded`: a real degraded mount with a missing device.
    pub fn remove_and_mount_degraded(&mut self, index: usize) -> Result<(), Failed> {
        self.unmount_and_forget()?;
        let mut gone = self.devices[index].take().ok_or("device already removed")?;
        gone.detach()?;
        self.mount_present("degraded")
    }

    /// Unmounts, then `btrfs device scan --forget` for each of our devices.
    fn unmount_and_forget(&mut self) -> Result<(), Failed> {
        if let Some(mut m) = self.mount.take() {
            m.unmount()?;
        }
        for dev in self.present() {
            let out = Command::new("btrfs")
                .args(["device", "scan", "--forget"])
                .arg(&dev)
                .output()?;
            // Not registered (never scanned, or already forgotten) is fine.
            ensure!(
                out.status.success() || String::from_utf8_lossy(&out.stderr).contains("No such"),
                "forget {}: {}",
                dev.display(),
                String::from_utf8_lossy(&out.stderr),
            );
        }
        Ok(())
    }
}

impl Drop for ProgsMultiDevice {
    fn drop(&mut self) {
        let _ = self.unmount_and_forget();
    }
}
