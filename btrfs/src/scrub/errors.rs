//! The kernel's returns of `BTRFS_IOC_SCRUB` mapped to typed errors.

use crate::error::Error;
use crate::fs::Filesystem;
use nix::errno::Errno;

/// Maps a failed `BTRFS_IOC_SCRUB` on `devid`.
pub(super) fn scrub_error(fs: &Filesystem, op: &'static str, devid: u64, errno: Errno) -> Error {
    let path = fs.path().into();
    match errno {
        Errno::EINPROGRESS => Error::ScrubAlreadyRunning {
            op,
            path,
            devid: Some(devid),
        },
        Errno::ENODEV => Error::NoSuchDevice { op, path, devid },
        Errno::ENOTCONN => Error::ScrubNotRunning { op, path },
        Errno::EIO => Error::Sys { op, path, errno },
        Errno::EOPNOTSUPP => Error::KernelRejected {
            op,
            path,
            hint: Some("this kernel does not support a scrub flag that was asked for"),
        },
        errno => fs.err(op, errno),
    }
}
