//! Helpers shared by the kernel tests.

use btrfs_kit::{BlockGroup, BlockGroupKind, Filesystem};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use testkit::ensure;
use testkit::harness::Failed;

/// One mebibyte.
pub const MIB: u64 = 1 << 20;

/// Writes `size` bytes of seeded pseudo-random data to `path`, fsyncs, returns its SHA-256.
pub fn write_file(path: &Path, size: u64, seed: u64) -> std::io::Result<[u8; 32]> {
    let mut file = std::fs::File::create(path)?;
    let mut hasher = Sha256::new();
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut buf = vec![0u8; MIB as usize];
    let mut left = size;
    while left > 0 {
        for word in buf.chunks_exact_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes());
        }
        let n = left.min(buf.len() as u64) as usize;
        file.write_all(&buf[..n])?;
        hasher.update(&buf[..n]);
        left -= n as u64;
    }
    file.sync_all()?;
    Ok(hasher.finalize().into())
}

/// Writes 1 MiB blocks to a new file at `path` until ENOSPC, fsyncs (tolerating ENOSPC there
/// too), and returns the bytes written. Any other error fails.
pub fn write_until_full(path: &Path) -> Result<u64, Failed> {
    let mut file = std::fs::File::create(path)?;
    let block = vec![0xA5u8; MIB as usize];
    let mut written = 0u64;
    loop {
        match file.write(&block) {
            Ok(0) => break,
            Ok(n) => written += n as u64,
            Err(e) if e.raw_os_error() == Some(nix::libc::ENOSPC) => break,
            Err(e) => return Err(format!("write until full: {e} (expected ENOSPC)").into()),
        }
    }
    match file.sync_all() {
        Err(e) if e.raw_os_error() != Some(nix::libc::ENOSPC) => {
            Err(format!("fsync after filling: {e}").into())
        }
        _ => Ok(written),
    }
}

/// SHA-256 of a file's content, read through an open handle.
pub fn sha256_of(mut reader: impl Read) -> std::io::Result<[u8; 32]> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; MIB as usize];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            return Ok(hasher.finalize().into());
        }
        hasher.update(&buf[..n]);
    }
}

/// The data block groups, by logical address.
pub fn data_groups(fs: &Filesystem) -> Result<Vec<BlockGroup>, Failed> {
    Ok(fs
        .block_groups()?
        .into_iter()
        .filter(|g| g.kind == BlockGroupKind::Data)
        .collect())
}

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

/// How an unprivileged probe reports one call: `ok`, `permission-denied` or `other: ...`.
pub fn probe_result(r: Result<(), btrfs_kit::Error>) -> String {
    match r {
        Ok(()) => "ok".to_string(),
        Err(e) if matches!(e.kind(), btrfs_kit::ErrorKind::PermissionDenied { .. }) => {
            "permission-denied".to_string()
        }
        Err(e) => format!("other: {e}"),
    }
}

/// In a probe child: opens `path`, or prints `open=...` and gives `None`.
pub fn probe_open(path: &std::ffi::OsStr) -> Option<Filesystem> {
    match Filesystem::open(path) {
        Ok(fs) => Some(fs),
        Err(e) => {
            println!("open={}", probe_result(Err(e)));
            None
        }
    }
}

/// Runs this binary as `nobody` with `envs` selecting a probe and checks that it printed each
/// `call=result` line of `expected`.
pub fn expect_probe(
    envs: &[(&str, &std::ffi::OsStr)],
    expected: &[(&str, &str)],
) -> Result<(), Failed> {
    let out = run_as_nobody(envs)?;
    let text = String::from_utf8_lossy(&out.stdout);
    ensure!(
        out.status.success(),
        "probe failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (call, result) in expected {
        let line = format!("{call}={result}");
        ensure!(
            text.lines().any(|l| l == line),
            "expected {line:?} in probe output:\n{text}"
        );
    }
    Ok(())
}

/// The uid and gid of `nobody`.
pub const NOBODY: u32 = 65534;

/// Runs this test binary again as uid/gid `nobody`, with `envs` telling it which probe to run.
///
/// It execs `/proc/self/exe`: the magic link needs no search permission on the binary's folders
/// and no copy of the binary, so no other thread can hold a copy open for writing at exec time
/// (which made exec fail with ETXTBSY when tests copied the binary in parallel).
pub fn run_as_nobody(envs: &[(&str, &std::ffi::OsStr)]) -> std::io::Result<std::process::Output> {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new("/proc/self/exe");
    for (key, value) in envs {
        cmd.env(key, value);
    }
    cmd.uid(NOBODY).gid(NOBODY).output()
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

/// SHA-256 of the file at `path`.
pub fn hash(path: &Path) -> Result<[u8; 32], Failed> {
    Ok(sha256_of(std::fs::File::open(path)?)?)
}

/// Bytes used in data block groups, as SPACE_INFO reports them.
pub fn data_used(fs: &Filesystem) -> Result<u64, Failed> {
    Ok(fs
        .space_info()?
        .iter()
        .filter(|s| s.kind == BlockGroupKind::Data)
        .map(|s| s.used.bytes())
        .sum())
}

/// An example binary built by `cargo test` next to this test binary.
pub fn example(name: &str) -> Result<PathBuf, Failed> {
    let exe = std::env::current_exe()?;
    let dir = exe
        .parent()
        .and_then(|d| d.parent())
        .ok_or("no target dir")?;
    let path = dir.join("examples").join(name);
    ensure!(
        path.exists(),
        "{} is missing: build it with `cargo test` or `cargo build --examples`",
        path.display(),
    );
    Ok(path)
}

/// Runs the example `name` with `args` and returns its output.
pub fn run(name: &str, args: &[&str]) -> Result<Output, Failed> {
    Ok(Command::new(example(name)?).args(args).output()?)
}

/// A program's stdout parsed as one JSON document (the error shows stdout and stderr).
pub fn json(out: &Output) -> Result<serde_json::Value, Failed> {
    serde_json::from_slice(&out.stdout).map_err(|e| {
        format!(
            "bad JSON ({e}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
        .into()
    })
}
