//! Quota and qgroup ioctls. Same rules as the parent module.

use super::IoctlResult;
use btrfs_sys as sys;
use btrfs_sys::ioctl as req;
use std::os::fd::BorrowedFd;

mod raw {
    use super::{req, sys};
    bad_ioctl!(
        readwrite,
        quota_ctl,
        req::BTRFS_IOC_QUOTA_CTL,
        sys::btrfs_ioctl_quota_ctl_args
    );
    bad_ioctl!(
        write,
        qgroup_assign,
        req::BTRFS_IOC_QGROUP_ASSIGN,
        sys::btrfs_ioctl_qgroup_assign_args
    );
    bad_ioctl!(
        write,
        qgroup_create,
        req::BTRFS_IOC_QGROUP_CREATE,
        sys::btrfs_ioctl_qgroup_create_args
    );
    bad_ioctl!(
        read,
        qgroup_limit,
        req::BTRFS_IOC_QGROUP_LIMIT,
        sys::btrfs_ioctl_qgroup_limit_args
    );
    bad_ioctl!(
        write,
        quota_rescan,
        req::BTRFS_IOC_QUOTA_RESCAN,
        sys::btrfs_ioctl_quota_rescan_args
    );
    bad_ioctl!(
        read,
        quota_rescan_status,
        req::BTRFS_IOC_QUOTA_RESCAN_STATUS,
        sys::btrfs_ioctl_quota_rescan_args
    );
    bad_ioctl!(none, quota_rescan_wait, req::BTRFS_IOC_QUOTA_RESCAN_WAIT);
}

/// `BTRFS_IOC_QUOTA_CTL` with `BTRFS_QUOTA_CTL_ENABLE` or `_DISABLE`.
pub(crate) fn quota_ctl(fd: BorrowedFd<'_>, cmd: u32) -> IoctlResult {
    let mut args = sys::btrfs_ioctl_quota_ctl_args {
        cmd: cmd.into(),
        status: 0,
    };
    // SAFETY: `args` is an owned, correctly sized btrfs_ioctl_quota_ctl_args.
    unsafe { raw::quota_ctl(fd, &mut args) }
}

/// `BTRFS_IOC_QGROUP_ASSIGN`: make `src` a member (assign) or not (remove) of `dst`. A
/// positive return means the quick accounting update failed: quotas need a rescan.
pub(crate) fn qgroup_assign(fd: BorrowedFd<'_>, assign: bool, src: u64, dst: u64) -> IoctlResult {
    let args = sys::btrfs_ioctl_qgroup_assign_args {
        assign: assign.into(),
        src,
        dst,
    };
    // SAFETY: `args` is a correctly sized btrfs_ioctl_qgroup_assign_args the kernel only reads.
    unsafe { raw::qgroup_assign(fd, &args) }
}

/// `BTRFS_IOC_QGROUP_CREATE`: create (or destroy) qgroup `qgroupid`.
pub(crate) fn qgroup_create(fd: BorrowedFd<'_>, create: bool, qgroupid: u64) -> IoctlResult {
    let args = sys::btrfs_ioctl_qgroup_create_args {
        create: create.into(),
        qgroupid,
    };
    // SAFETY: `args` is a correctly sized btrfs_ioctl_qgroup_create_args the kernel only reads.
    unsafe { raw::qgroup_create(fd, &args) }
}

/// `BTRFS_IOC_QGROUP_LIMIT`: set the limits of `qgroupid` (0: the fd's subvolume).
pub(crate) fn qgroup_limit(
    fd: BorrowedFd<'_>,
    qgroupid: u64,
    lim: sys::btrfs_qgroup_limit,
) -> IoctlResult {
    let mut args = sys::btrfs_ioctl_qgroup_limit_args { qgroupid, lim };
    // SAFETY: `args` is an owned, correctly sized btrfs_ioctl_qgroup_limit_args (declared _IOR,
    // but the kernel copies it in).
    unsafe { raw::qgroup_limit(fd, &mut args) }
}

/// `BTRFS_IOC_QUOTA_RESCAN`: start a rescan of all qgroups.
pub(crate) fn quota_rescan(fd: BorrowedFd<'_>) -> IoctlResult {
    let args = sys::btrfs_ioctl_quota_rescan_args::default();
    // SAFETY: `args` is a correctly sized btrfs_ioctl_quota_rescan_args the kernel only reads.
    unsafe { raw::quota_rescan(fd, &args) }
}

/// `BTRFS_IOC_QUOTA_RESCAN_STATUS`: (running, progress objectid).
pub(crate) fn quota_rescan_status(fd: BorrowedFd<'_>) -> IoctlResult<(bool, u64)> {
    let mut args = sys::btrfs_ioctl_quota_rescan_args::default();
    // SAFETY: `args` is an owned, correctly sized btrfs_ioctl_quota_rescan_args.
    unsafe { raw::quota_rescan_status(fd, &mut args) }?;
    Ok((args.flags != 0, args.progress))
}

/// `BTRFS_IOC_QUOTA_RESCAN_WAIT`: block until the running rescan (if any) ends.
pub(crate) fn quota_rescan_wait(fd: BorrowedFd<'_>) -> IoctlResult {
    // SAFETY: the request takes no argument.
    unsafe { raw::quota_rescan_wait(fd) }
}
