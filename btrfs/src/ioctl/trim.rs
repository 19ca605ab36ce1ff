//! `FITRIM`: discard the unused space of a mounted filesystem. Same rules as the parent module.

use super::IoctlResult;
use btrfs_sys as sys;
use btrfs_sys::ioctl as req;
use std::os::fd::BorrowedFd;

mod raw {
    use super::{req, sys};
    bad_ioctl!(readwrite, fitrim, req::FITRIM, sys::fstrim_range);
}

/// `FITRIM` over the filesystem's logical bytes `range.start..range.start + range.len`,
/// discarding free extents of at least `range.minlen` bytes. On return the kernel has set
/// `range.len` to the number of bytes it trimmed (and raised `range.minlen` to the devices'
/// discard granularity).
pub(crate) fn fitrim(fd: BorrowedFd<'_>, range: &mut sys::fstrim_range) -> IoctlResult {
    // SAFETY: `range` is an exclusive reference to a correctly sized struct fstrim_range
    // (24 bytes) that the kernel copies in and back out before returning.
    unsafe { raw::fitrim(fd, range) }
}
