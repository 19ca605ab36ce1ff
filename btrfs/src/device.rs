//! Adding a device to a mounted filesystem (`BTRFS_IOC_ADD_DEV`), as `btrfs device add` does.
//!
//! Before the ioctl the device is checked and prepared in user space, like btrfs-progs does:
//! it must be a block device that is not mounted or held by another program, it must not carry
//! a filesystem or other signature (unless overwriting is asked for), and its first and last
//! MiB and every btrfs superblock copy are zeroed so no stale signature survives. The kernel
//! then opens the device itself (exclusively), writes its superblock and makes it part of the
//! filesystem. New chunks use it at once; existing chunks stay where they are until a balance
//! (e.g. a convert to raid1) moves them. Unlike btrfs-progs it does not discard the device.

use crate::error::{Error, ErrorKind, Result};
use crate::fs::Filesystem;
use crate::info::DeviceInfo;
use crate::ioctl;
use crate::mkfs::device;
use rustix::io::Errno;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileTypeExt;
use std::path::Path;

const OP: &str = "add device";

impl Filesystem {
    /// Adds the block device at `path` to the filesystem and returns it as the kernel now
    /// lists it. Refuses a device with a filesystem or other signature
    /// ([`ErrorKind::ExistingFilesystem`]); see [`add_device_overwriting`](Self::add_device_overwriting).
    /// Needs CAP_SYS_ADMIN; it is an exclusive operation (fails while a balance, resize or
    /// other device operation runs).
    pub fn add_device(&self, path: impl AsRef<Path>) -> Result<DeviceInfo> {
        self.add_device_impl(path.as_ref(), false)
    }

    /// [`add_device`](Self::add_device), overwriting whatever signature the device holds.
    pub fn add_device_overwriting(&self, path: impl AsRef<Path>) -> Result<DeviceInfo> {
        self.add_device_impl(path.as_ref(), true)
    }

    fn add_device_impl(&self, path: &Path, overwrite: bool) -> Result<DeviceInfo> {
        let meta = std::fs::metadata(path).map_err(|e| {
            Error::from_errno(
                OP,
                path,
                Errno::from_raw_os_error(e.raw_os_error().unwrap_or(0)),
            )
        })?;
        if !meta.file_type().is_block_device() {
            return Err(Error::invalid_arguments(
                OP,
                format!(
                    "{} is not a block device; attach a file with a loop device first",
                    path.display()
                ),
            ));
        }
        {
            // Exclusive while we check and wipe; closed before the kernel opens it.
            let mut target = device::open_for(OP, path, None)?;
            if !overwrite {
                target.refuse_signatures()?;
            }
            target.wipe()?;
            target.sync()?;
        }
        match ioctl::add_dev(self.fd(), path.as_os_str().as_bytes()) {
            Ok(0) => {}
            Ok(code) => return Err(self.btrfs_error_code(OP, code)),
            Err(errno) => return Err(add_error(path, errno)),
        }
        let canonical = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        self.devices()?
            .into_iter()
            .find(|d| d.path == path || d.path.canonicalize().is_ok_and(|p| p == canonical))
            .ok_or_else(|| {
                Error::new(
                    OP,
                    self.path(),
                    ErrorKind::Decode {
                        detail: format!(
                            "the kernel added {} but does not list it among the devices",
                            path.display()
                        ),
                    },
                )
            })
    }
}

/// Maps a failed `ADD_DEV`.
fn add_error(path: &Path, errno: Errno) -> Error {
    let path = path.to_path_buf();
    match errno {
        Errno::EXIST => Error::new(OP, path, ErrorKind::AlreadyExists),
        Errno::BUSY => Error::new(OP, path, ErrorKind::DeviceBusy { detail: "the kernel could not open it exclusively (mounted, part of another filesystem, or held by another program)".into() }),
        Errno::INVAL => Error::new(OP, path, ErrorKind::KernelRejected { hint: Some("the device may be too small, or the filesystem a seed or of a kind that cannot grow") }),
        errno => Error::from_errno(OP, path, errno),
    }
}
