//! Loop devices, through the kernel's loop ioctls directly: a free device from
//! `/dev/loop-control` (never a guessed number), attached with `LOOP_CONFIGURE` (falling back to
//! `LOOP_SET_FD` + `LOOP_SET_STATUS64` on kernels before 5.8), always with autoclear, so the
//! kernel detaches the device if the process dies; `LOOP_CLR_FD` on drop.
//!
//! Our own small layer rather than a crate: the loop crates on crates.io (`loopdev`,
//! `loopdev-3`, `loopdev-erikh`) all run bindgen in their build scripts, which needs libclang on
//! every machine. The bindings of `linux/loop.h` are generated once and committed
//! ([`sys`]); `tests/loop_bindings.rs` checks them against the C header.

mod ioctl;

/// bindgen output for `linux/loop.h` (allowlisted items only), committed.
#[allow(
    missing_docs,
    non_camel_case_types,
    non_upper_case_globals,
    dead_code,
    unsafe_code,
    clippy::all,
    clippy::undocumented_unsafe_blocks
)]
pub mod sys {
    include!("bindings.rs");
}

use nix::errno::Errno;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How many times [`LoopDevice::attach`] asks for another free device when a concurrent
/// process takes the one it was given.
const ATTACH_ATTEMPTS: usize = 32;

/// `/dev/loop-control`.
#[derive(Debug)]
pub struct LoopControl {
    file: File,
}

impl LoopControl {
    /// Opens `/dev/loop-control` (needs root).
    pub fn open() -> io::Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/loop-control")
            .map_err(|e| annotate(e, "open /dev/loop-control"))?;
        Ok(LoopControl { file })
    }

    /// The number of a free loop device, created by the kernel if none is free.
    pub fn next_free(&self) -> io::Result<u32> {
        ioctl::get_free(self.file.as_fd())
            .map_err(|e| annotate(e.into(), "LOOP_CTL_GET_FREE on /dev/loop-control"))
    }
}

/// A loop device this process attached, detached on drop.
#[derive(Debug)]
pub struct LoopDevice {
    file: File,
    path: PathBuf,
    number: u32,
    attached: bool,
}

impl LoopDevice {
    /// Attaches `backing` (opened read-write) to a free loop device with autoclear. Retries with
    /// another free device when a concurrent process takes the same one first (`EBUSY`).
    pub fn attach(backing: &Path) -> io::Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(backing)
            .map_err(|e| annotate(e, &format!("open {}", backing.display())))?;
        let control = LoopControl::open()?;
        let mut last_busy = None;
        for _ in 0..ATTACH_ATTEMPTS {
            let number = control.next_free()?;
            let path = PathBuf::from(format!("/dev/loop{number}"));
            let device = open_device_node(&path)?;
            match configure(&device, &file, backing) {
                Ok(()) => {
                    return Ok(LoopDevice {
                        file: device,
                        path,
                        number,
                        attached: true,
                    })
                }
                Err(Errno::EBUSY) => last_busy = Some(path),
                Err(e) => {
                    return Err(annotate(
                        e.into(),
                        &format!("attach {} to {}", backing.display(), path.display()),
                    ))
                }
            }
        }
        Err(io::Error::other(format!(
            "attach {}: every free loop device was taken by another process first (last: {})",
            backing.display(),
            last_busy.map_or_else(|| "none".into(), |p| p.display().to_string())
        )))
    }

    /// The device node, e.g. `/dev/loop9`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The device number N of `/dev/loopN`.
    pub fn number(&self) -> u32 {
        self.number
    }

    /// Whether the kernel has autoclear set for this device (read back with
    /// `LOOP_GET_STATUS64`).
    pub fn autoclear(&self) -> io::Result<bool> {
        let info = ioctl::get_status64(self.file.as_fd()).map_err(|e| {
            annotate(
                e.into(),
                &format!("LOOP_GET_STATUS64 on {}", self.path.display()),
            )
        })?;
        Ok(info.lo_flags & sys::LO_FLAGS_AUTOCLEAR != 0)
    }

    /// The backing file the kernel reports (`/sys/block/loopN/loop/backing_file`).
    pub fn backing_file(&self) -> io::Result<PathBuf> {
        let sys = format!("/sys/block/loop{}/loop/backing_file", self.number);
        let text =
            std::fs::read_to_string(&sys).map_err(|e| annotate(e, &format!("read {sys}")))?;
        Ok(PathBuf::from(text.trim_end_matches('\n')))
    }

    /// Detaches now. The kernel defers it until the last opener (e.g. a mount) closes the
    /// device; autoclear would do the same when this handle closes.
    pub fn detach(&mut self) -> io::Result<()> {
        if !self.attached {
            return Ok(());
        }
        match ioctl::clr_fd(self.file.as_fd()) {
            // ENXIO: nothing attached any more (autoclear already ran).
            Ok(()) | Err(Errno::ENXIO) => {
                self.attached = false;
                Ok(())
            }
            Err(e) => Err(annotate(
                e.into(),
                &format!("LOOP_CLR_FD on {}", self.path.display()),
            )),
        }
    }
}

impl Drop for LoopDevice {
    fn drop(&mut self) {
        let _ = self.detach();
    }
}

/// Opens a loop device node. The node appears through devtmpfs when `LOOP_CTL_GET_FREE` creates
/// a new device; give it a moment rather than failing on a brand-new device.
fn open_device_node(path: &Path) -> io::Result<File> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match OpenOptions::new().read(true).write(true).open(path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            result => return result.map_err(|e| annotate(e, &format!("open {}", path.display()))),
        }
    }
}

/// Attaches `backing` to `device` with autoclear: `LOOP_CONFIGURE`, or `LOOP_SET_FD` +
/// `LOOP_SET_STATUS64` where the kernel does not know it (before 5.8: `EINVAL` or `ENOTTY`).
fn configure(device: &File, backing: &File, backing_path: &Path) -> Result<(), Errno> {
    let mut info = sys::loop_info64 {
        lo_flags: sys::LO_FLAGS_AUTOCLEAR,
        ..Default::default()
    };
    // The kernel shows this name in LOOP_GET_STATUS64; truncated like losetup does.
    let name = backing_path.as_os_str().as_bytes();
    let n = name.len().min(info.lo_file_name.len() - 1);
    info.lo_file_name[..n].copy_from_slice(&name[..n]);
    let fd = u32::try_from(std::os::fd::AsRawFd::as_raw_fd(backing)).map_err(|_| Errno::EBADF)?;
    let config = sys::loop_config {
        fd,
        info,
        ..Default::default()
    };
    match ioctl::configure(device.as_fd(), &config) {
        Err(Errno::EINVAL | Errno::ENOTTY) => {}
        result => return result,
    }
    ioctl::set_fd(device.as_fd(), backing.as_fd())?;
    if let Err(e) = ioctl::set_status64(device.as_fd(), &info) {
        let _ = ioctl::clr_fd(device.as_fd());
        return Err(e);
    }
    Ok(())
}

/// Adds what was being done to an I/O error, keeping its kind.
fn annotate(e: io::Error, what: &str) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}
