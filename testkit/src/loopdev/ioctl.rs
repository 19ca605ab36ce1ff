//! The loop ioctls, the only `unsafe` code of this crate. Each wrapper takes borrowed
//! descriptors and typed arguments; request numbers come from the committed bindings.
#![allow(unsafe_code)]

use super::sys;
use std::os::fd::{AsRawFd, BorrowedFd};

nix::ioctl_none_bad!(ctl_get_free, sys::LOOP_CTL_GET_FREE);
nix::ioctl_write_ptr_bad!(configure_raw, sys::LOOP_CONFIGURE, sys::loop_config);
nix::ioctl_write_int_bad!(set_fd_raw, sys::LOOP_SET_FD);
nix::ioctl_write_ptr_bad!(set_status64_raw, sys::LOOP_SET_STATUS64, sys::loop_info64);
nix::ioctl_read_bad!(get_status64_raw, sys::LOOP_GET_STATUS64, sys::loop_info64);
nix::ioctl_none_bad!(clr_fd_raw, sys::LOOP_CLR_FD);

/// `LOOP_CTL_GET_FREE` on `/dev/loop-control`: the number of a free loop device (created if
/// needed).
pub fn get_free(control: BorrowedFd<'_>) -> nix::Result<u32> {
    // SAFETY: LOOP_CTL_GET_FREE takes no argument; the descriptor is valid for the call.
    let n = unsafe { ctl_get_free(control.as_raw_fd()) }?;
    u32::try_from(n).map_err(|_| nix::errno::Errno::EINVAL)
}

/// `LOOP_CONFIGURE` (Linux 5.8+): attach `config.fd` and set the status in one call.
pub fn configure(device: BorrowedFd<'_>, config: &sys::loop_config) -> nix::Result<()> {
    // SAFETY: `config` points to a valid, initialised loop_config the kernel only reads.
    unsafe { configure_raw(device.as_raw_fd(), config) }.map(drop)
}

/// `LOOP_SET_FD`: attach `backing` to the loop device (the pre-5.8 way, before
/// [`set_status64`]).
pub fn set_fd(device: BorrowedFd<'_>, backing: BorrowedFd<'_>) -> nix::Result<()> {
    // SAFETY: the argument is a plain descriptor number, valid for the duration of the call.
    unsafe { set_fd_raw(device.as_raw_fd(), backing.as_raw_fd()) }.map(drop)
}

/// `LOOP_SET_STATUS64`: set the flags, offset, size limit and file name of an attached device.
pub fn set_status64(device: BorrowedFd<'_>, info: &sys::loop_info64) -> nix::Result<()> {
    // SAFETY: `info` points to a valid, initialised loop_info64 the kernel only reads.
    unsafe { set_status64_raw(device.as_raw_fd(), info) }.map(drop)
}

/// `LOOP_GET_STATUS64`: the status of an attached device (`ENXIO` when none is attached).
pub fn get_status64(device: BorrowedFd<'_>) -> nix::Result<sys::loop_info64> {
    let mut info = sys::loop_info64::default();
    // SAFETY: `info` is a valid, writable loop_info64 the kernel fills.
    unsafe { get_status64_raw(device.as_raw_fd(), &mut info) }?;
    Ok(info)
}

/// `LOOP_CLR_FD`: detach (deferred by the kernel until the last opener closes).
pub fn clr_fd(device: BorrowedFd<'_>) -> nix::Result<()> {
    // SAFETY: LOOP_CLR_FD takes no argument; the descriptor is valid for the call.
    unsafe { clr_fd_raw(device.as_raw_fd()) }.map(drop)
}
