//! Device ioctls: error counters and adding a device. Same rules as the parent module.

use super::subvol::copy_name;
use super::IoctlResult;
use btrfs_sys as sys;
use btrfs_sys::ioctl as req;
use std::os::fd::BorrowedFd;

mod raw {
    use super::{req, sys};
    bad_ioctl!(
        readwrite,
        get_dev_stats,
        req::BTRFS_IOC_GET_DEV_STATS,
        sys::btrfs_ioctl_get_dev_stats
    );
    bad_ioctl!(
        write,
        add_dev,
        req::BTRFS_IOC_ADD_DEV,
        sys::btrfs_ioctl_vol_args
    );
}

/// `BTRFS_IOC_GET_DEV_STATS` for `devid`, asking for every counter the kernel has; with
/// `reset`, the kernel returns the values and zeroes them (CAP_SYS_ADMIN). `ENODEV` when there
/// is no such device or its counters are not loaded yet.
pub(crate) fn get_dev_stats(
    fd: BorrowedFd<'_>,
    devid: u64,
    reset: bool,
) -> IoctlResult<sys::btrfs_ioctl_get_dev_stats> {
    let mut args = sys::btrfs_ioctl_get_dev_stats {
        devid,
        nr_items: sys::BTRFS_DEV_STAT_VALUES_MAX.into(),
        flags: if reset {
            sys::BTRFS_DEV_STATS_RESET.into()
        } else {
            0
        },
        ..Default::default()
    };
    // SAFETY: `args` is an owned, correctly sized btrfs_ioctl_get_dev_stats (1032 bytes); the
    // kernel writes at most `nr_items` values into it.
    unsafe { raw::get_dev_stats(fd, &mut args) }?;
    Ok(args)
}

/// `BTRFS_IOC_ADD_DEV`: add the block device at `path` (bytes, no NUL) to the filesystem. The
/// kernel opens the device itself, exclusively. May return a positive `btrfs_err_code`
/// (another exclusive operation runs).
pub(crate) fn add_dev(fd: BorrowedFd<'_>, path: &[u8]) -> IoctlResult {
    let mut args = sys::btrfs_ioctl_vol_args::default();
    copy_name(&mut args.name, path)?;
    // SAFETY: `args` is a correctly sized btrfs_ioctl_vol_args the kernel only reads.
    unsafe { raw::add_dev(fd, &args) }
}
