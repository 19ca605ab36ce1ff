//! Scrub ioctls: start one device's scrub (blocking), read its progress, cancel every scrub of
//! the filesystem. Same rules as the parent module.

use super::IoctlResult;
use btrfs_sys as sys;
use btrfs_sys::ioctl as req;
use std::os::fd::BorrowedFd;

mod raw {
    use super::{req, sys};
    bad_ioctl!(
        readwrite,
        scrub,
        req::BTRFS_IOC_SCRUB,
        sys::btrfs_ioctl_scrub_args
    );
    bad_ioctl!(none, scrub_cancel, req::BTRFS_IOC_SCRUB_CANCEL);
    bad_ioctl!(
        readwrite,
        scrub_progress,
        req::BTRFS_IOC_SCRUB_PROGRESS,
        sys::btrfs_ioctl_scrub_args
    );
}

/// `BTRFS_IOC_SCRUB`: scrub device `args.devid` over physical `[args.start, args.end)`; blocks
/// until it ends. The kernel writes the final counters into `args.progress` also when it
/// returns an error (e.g. `ECANCELED`).
pub(crate) fn scrub(fd: BorrowedFd<'_>, args: &mut sys::btrfs_ioctl_scrub_args) -> IoctlResult {
    // SAFETY: `args` is an exclusive reference to a correctly sized btrfs_ioctl_scrub_args
    // (1024 bytes); the kernel copies it in and back out before returning.
    unsafe { raw::scrub(fd, args) }
}

/// `BTRFS_IOC_SCRUB_CANCEL`: cancel every running scrub of the filesystem and wait until they
/// have stopped (`ENOTCONN` when none runs).
pub(crate) fn scrub_cancel(fd: BorrowedFd<'_>) -> IoctlResult {
    // SAFETY: the request takes no argument.
    unsafe { raw::scrub_cancel(fd) }
}

/// `BTRFS_IOC_SCRUB_PROGRESS`: the counters of the scrub running on `devid` (`ENOTCONN` when
/// none runs there, `ENODEV` when there is no such device).
pub(crate) fn scrub_progress(
    fd: BorrowedFd<'_>,
    devid: u64,
) -> IoctlResult<sys::btrfs_scrub_progress> {
    let mut args = sys::btrfs_ioctl_scrub_args {
        devid,
        ..Default::default()
    };
    // SAFETY: `args` is an owned, correctly sized btrfs_ioctl_scrub_args the kernel fills.
    unsafe { raw::scrub_progress(fd, &mut args) }?;
    Ok(args.progress)
}
