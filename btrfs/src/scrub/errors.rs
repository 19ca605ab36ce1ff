//! The kernel's returns of `BTRFS_IOC_SCRUB` mapped to typed errors.

use crate::error::{Error, ErrorKind};
use crate::fs::Filesystem;
use rustix::io::Errno;

/// Maps a failed `BTRFS_IOC_SCRUB` on `devid`.
pub(super) fn scrub_error(fs: &Filesystem, op: &'static str, devid: u64, errno: Errno) -> Error {
    let path = fs.path().to_path_buf();
    match errno {
        Errno::INPROGRESS => Error::new(
            op,
            path,
            ErrorKind::ScrubAlreadyRunning { devid: Some(devid) },
        ),
        Errno::NODEV => Error::new(op, path, ErrorKind::NoSuchDevice { devid }),
        Errno::NOTCONN => Error::new(op, path, ErrorKind::ScrubNotRunning),
        Errno::IO => Error::new(op, path, ErrorKind::Sys { errno }),
        Errno::OPNOTSUPP => Error::new(
            op,
            path,
            ErrorKind::KernelRejected {
                hint: Some("this kernel does not support a scrub flag that was asked for"),
            },
        ),
        errno => fs.err(op, errno),
    }
}
