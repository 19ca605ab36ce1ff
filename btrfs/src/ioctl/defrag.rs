//! `BTRFS_IOC_DEFRAG_RANGE`. Same rules as the parent module.

use super::IoctlResult;
use btrfs_sys as sys;
use btrfs_sys::ioctl as req;
use std::os::fd::BorrowedFd;

mod raw {
    use super::{req, sys};
    bad_ioctl!(
        write,
        defrag_range,
        req::BTRFS_IOC_DEFRAG_RANGE,
        sys::btrfs_ioctl_defrag_range_args
    );
}

/// `BTRFS_IOC_DEFRAG_RANGE` on the regular file `fd`: rewrite the extents of
/// `args.start..args.start + args.len` that are smaller than `args.extent_thresh`.
pub(crate) fn defrag_range(
    fd: BorrowedFd<'_>,
    args: &sys::btrfs_ioctl_defrag_range_args,
) -> IoctlResult {
    // SAFETY: `args` is a correctly sized btrfs_ioctl_defrag_range_args (48 bytes) that the
    // kernel only copies in.
    unsafe { raw::defrag_range(fd, args) }
}
