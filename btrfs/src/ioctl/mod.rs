//! The one layer that calls `ioctl(2)`. Every `unsafe` block of the crate lives here.
//!
//! Each function takes a borrowed file descriptor and a properly sized, owned argument struct, so
//! the kernel only ever reads and writes memory we own for the duration of the call. Functions
//! return the raw `c_int` on success: a few btrfs ioctls return *positive* values (e.g.
//! `BTRFS_ERROR_DEV_EXCL_RUN_IN_PROGRESS`) that callers must check. Every call goes through
//! `rustix::ioctl::ioctl` (with [`RawCall`], which keeps that return value), the request numbers
//! come from `btrfs_sys::ioctl`, and errors are `rustix::io::Errno`.
#![allow(unsafe_code)]

use btrfs_sys as sys;
use btrfs_sys::ioctl as req;
use rustix::io::Errno;
use std::ffi::{c_int, c_void};
use std::os::fd::BorrowedFd;

/// One `ioctl(2)` call through `rustix::ioctl` that hands back the kernel's raw non-negative
/// return value (a few btrfs requests return positive codes callers must check).
struct RawCall {
    opcode: rustix::ioctl::Opcode,
    arg: *mut c_void,
}

// SAFETY: `opcode` and `arg` come from the `bad_ioctl!` wrappers below, whose callers uphold
// the request's contract (an owned, correctly sized argument, or an integer passed by value);
// the output is the raw return value, which needs no pointer.
unsafe impl rustix::ioctl::Ioctl for RawCall {
    type Output = c_int;
    const IS_MUTATING: bool = true;

    fn opcode(&self) -> rustix::ioctl::Opcode {
        self.opcode
    }

    fn as_ptr(&mut self) -> *mut c_void {
        self.arg
    }

    unsafe fn output_from_ptr(
        out: rustix::ioctl::IoctlOutput,
        _: *mut c_void,
    ) -> rustix::io::Result<c_int> {
        Ok(out)
    }
}

/// Issue `request` on `fd` with `arg` (a pointer, or an integer by value); the kernel's return
/// value or its errno.
///
/// # Safety
/// `arg` must satisfy the request: point to an owned, correctly sized argument valid for the
/// kernel's reads and writes for the duration of the call (or be the integer the request takes).
unsafe fn call(
    fd: BorrowedFd<'_>,
    request: btrfs_sys::ioctl::Request,
    arg: *mut c_void,
) -> IoctlResult {
    let opcode = request as rustix::ioctl::Opcode;
    // SAFETY: the caller upholds the request's contract for `arg` (this function's contract).
    unsafe { rustix::ioctl::ioctl(fd, RawCall { opcode, arg }) }
}

/// Declares `unsafe fn $name(fd, arg) -> IoctlResult` wrappers over [`call`], one per request
/// kind: `none` (no argument), `int` (an integer by value), `read` / `readwrite` (`*mut T`),
/// `write` (`*const T`).
macro_rules! bad_ioctl {
    (none, $name:ident, $req:expr) => {
        pub(super) unsafe fn $name(fd: std::os::fd::BorrowedFd<'_>) -> crate::ioctl::IoctlResult {
            // SAFETY: the request takes no argument.
            unsafe { crate::ioctl::call(fd, $req, std::ptr::null_mut()) }
        }
    };
    (int, $name:ident, $req:expr) => {
        pub(super) unsafe fn $name(
            fd: std::os::fd::BorrowedFd<'_>,
            data: std::ffi::c_int,
        ) -> crate::ioctl::IoctlResult {
            // SAFETY: the integer travels by value; no memory is shared with the kernel.
            unsafe { crate::ioctl::call(fd, $req, std::ptr::without_provenance_mut(data as usize)) }
        }
    };
    (read, $name:ident, $req:expr, $ty:ty) => {
        bad_ioctl!(readwrite, $name, $req, $ty);
    };
    (readwrite, $name:ident, $req:expr, $ty:ty) => {
        pub(super) unsafe fn $name(
            fd: std::os::fd::BorrowedFd<'_>,
            data: *mut $ty,
        ) -> crate::ioctl::IoctlResult {
            // SAFETY: the caller passes an owned, correctly sized argument (this fn's contract).
            unsafe { crate::ioctl::call(fd, $req, data.cast()) }
        }
    };
    (write, $name:ident, $req:expr, $ty:ty) => {
        pub(super) unsafe fn $name(
            fd: std::os::fd::BorrowedFd<'_>,
            data: *const $ty,
        ) -> crate::ioctl::IoctlResult {
            // SAFETY: the caller passes an owned, correctly sized argument the kernel only
            // reads (this fn's contract).
            unsafe { crate::ioctl::call(fd, $req, data.cast_mut().cast()) }
        }
    };
}

mod defrag;
mod device;
mod fiemap;
mod inspect;
mod quota;
mod scrub;
mod search;
mod subvol;
mod trim;

pub(crate) use defrag::*;
pub(crate) use device::*;
pub(crate) use fiemap::*;
pub(crate) use inspect::*;
pub(crate) use quota::*;
pub(crate) use scrub::*;
pub(crate) use search::*;
pub(crate) use subvol::*;
pub(crate) use trim::*;

/// The outcome of one ioctl call: the kernel's non-negative return value, or its errno.
pub(crate) type IoctlResult<T = c_int> = Result<T, Errno>;

mod raw {
    use super::{req, sys};
    bad_ioctl!(
        read,
        fs_info,
        req::BTRFS_IOC_FS_INFO,
        sys::btrfs_ioctl_fs_info_args
    );
    bad_ioctl!(
        readwrite,
        dev_info,
        req::BTRFS_IOC_DEV_INFO,
        sys::btrfs_ioctl_dev_info_args
    );
    bad_ioctl!(
        read,
        get_label,
        req::BTRFS_IOC_GET_FSLABEL,
        [u8; sys::BTRFS_LABEL_SIZE as usize]
    );
    bad_ioctl!(readwrite, space_info, req::BTRFS_IOC_SPACE_INFO, u64);
    bad_ioctl!(
        readwrite,
        tree_search,
        req::BTRFS_IOC_TREE_SEARCH,
        sys::btrfs_ioctl_search_args
    );
    bad_ioctl!(
        readwrite,
        balance_v2,
        req::BTRFS_IOC_BALANCE_V2,
        sys::btrfs_ioctl_balance_args
    );
    bad_ioctl!(int, balance_ctl, req::BTRFS_IOC_BALANCE_CTL);
    bad_ioctl!(
        read,
        balance_progress,
        req::BTRFS_IOC_BALANCE_PROGRESS,
        sys::btrfs_ioctl_balance_args
    );
    bad_ioctl!(none, sync, req::BTRFS_IOC_SYNC);
    bad_ioctl!(read, start_sync, req::BTRFS_IOC_START_SYNC, u64);
    bad_ioctl!(write, wait_sync, req::BTRFS_IOC_WAIT_SYNC, u64);
    bad_ioctl!(
        write,
        resize,
        req::BTRFS_IOC_RESIZE,
        sys::btrfs_ioctl_vol_args
    );
    bad_ioctl!(read, blkgetsize64, req::BLKGETSIZE64, u64);
    bad_ioctl!(read, getflags, req::FS_IOC_GETFLAGS, std::ffi::c_long);
}

/// `BTRFS_IOC_FS_INFO`, asking for checksum info and generation too.
pub(crate) fn fs_info(fd: BorrowedFd<'_>) -> IoctlResult<sys::btrfs_ioctl_fs_info_args> {
    let mut args = sys::btrfs_ioctl_fs_info_args {
        flags: (sys::BTRFS_FS_INFO_FLAG_CSUM_INFO | sys::BTRFS_FS_INFO_FLAG_GENERATION) as u64,
        ..Default::default()
    };
    // SAFETY: `args` is an owned, correctly sized btrfs_ioctl_fs_info_args; the kernel writes
    // only within it and keeps no reference after returning.
    unsafe { raw::fs_info(fd, &mut args) }?;
    Ok(args)
}

/// `BTRFS_IOC_DEV_INFO` for one device id (`ENODEV` when there is no such device).
pub(crate) fn dev_info(
    fd: BorrowedFd<'_>,
    devid: u64,
) -> IoctlResult<sys::btrfs_ioctl_dev_info_args> {
    let mut args = sys::btrfs_ioctl_dev_info_args {
        devid,
        ..Default::default()
    };
    // SAFETY: `args` is an owned, correctly sized btrfs_ioctl_dev_info_args for the call.
    unsafe { raw::dev_info(fd, &mut args) }?;
    Ok(args)
}

/// `BTRFS_IOC_GET_FSLABEL`: the label as raw NUL-padded bytes.
pub(crate) fn get_label(fd: BorrowedFd<'_>) -> IoctlResult<[u8; sys::BTRFS_LABEL_SIZE as usize]> {
    let mut label = [0u8; sys::BTRFS_LABEL_SIZE as usize];
    // SAFETY: the request's size is BTRFS_LABEL_SIZE bytes, exactly the buffer we pass.
    unsafe { raw::get_label(fd, &mut label) }?;
    Ok(label)
}

/// `BTRFS_IOC_SPACE_INFO` with the two-call pattern: ask for the count, then for that many
/// entries (again, if the count grew in between).
pub(crate) fn space_info(fd: BorrowedFd<'_>) -> IoctlResult<Vec<sys::btrfs_ioctl_space_info>> {
    const HEADER_WORDS: usize = std::mem::size_of::<sys::btrfs_ioctl_space_args>() / 8;
    const ENTRY_WORDS: usize = std::mem::size_of::<sys::btrfs_ioctl_space_info>() / 8;
    let mut slots = 0usize;
    loop {
        // A u64 buffer keeps the 8-byte alignment both structs need.
        let mut buf = vec![0u64; HEADER_WORDS + slots * ENTRY_WORDS];
        // Header word 0, space_slots: how many entries the buffer has room for.
        buf[0] = slots as u64;
        // SAFETY: `buf` holds the header plus `space_slots` entries; the kernel writes at most
        // `space_slots` entries after the header and records the real count in total_spaces.
        unsafe { raw::space_info(fd, buf.as_mut_ptr()) }?;
        let total = buf[1] as usize; // total_spaces
        if total <= slots {
            let entries = buf[HEADER_WORDS..HEADER_WORDS + total * ENTRY_WORDS]
                .chunks_exact(ENTRY_WORDS)
                .map(|w| sys::btrfs_ioctl_space_info {
                    flags: w[0],
                    total_bytes: w[1],
                    used_bytes: w[2],
                })
                .collect();
            return Ok(entries);
        }
        slots = total;
    }
}

/// `BTRFS_IOC_TREE_SEARCH` (v1): fills `args.buf` with items matching `args.key`.
pub(crate) fn tree_search(
    fd: BorrowedFd<'_>,
    args: &mut sys::btrfs_ioctl_search_args,
) -> IoctlResult<()> {
    // SAFETY: `args` is an exclusive reference to a correctly sized btrfs_ioctl_search_args;
    // the kernel writes results only into its 3992-byte buffer and the key.
    unsafe { raw::tree_search(fd, args) }?;
    Ok(())
}

/// `BTRFS_IOC_BALANCE_V2`: start or resume a balance; blocks until it ends. Returns the
/// kernel's return value, which may be positive (another exclusive operation runs).
pub(crate) fn balance_v2(
    fd: BorrowedFd<'_>,
    args: &mut sys::btrfs_ioctl_balance_args,
) -> IoctlResult {
    // SAFETY: `args` is an exclusive reference to a correctly sized btrfs_ioctl_balance_args
    // (1024 bytes); the kernel copies it in and back out before returning.
    unsafe { raw::balance_v2(fd, args) }
}

/// `BTRFS_IOC_BALANCE_CTL` with `BTRFS_BALANCE_CTL_PAUSE` or `BTRFS_BALANCE_CTL_CANCEL`.
pub(crate) fn balance_ctl(fd: BorrowedFd<'_>, cmd: u32) -> IoctlResult {
    // SAFETY: the argument is passed by value; no memory is shared with the kernel.
    unsafe { raw::balance_ctl(fd, cmd as c_int) }
}

/// `BTRFS_IOC_BALANCE_PROGRESS`: the running or paused balance's arguments, state and counters.
pub(crate) fn balance_progress(fd: BorrowedFd<'_>) -> IoctlResult<sys::btrfs_ioctl_balance_args> {
    let mut args = sys::btrfs_ioctl_balance_args::default();
    // SAFETY: `args` is an owned, correctly sized btrfs_ioctl_balance_args the kernel fills.
    unsafe { raw::balance_progress(fd, &mut args) }?;
    Ok(args)
}

/// `BTRFS_IOC_SYNC`: commit the running transaction and wait for it.
pub(crate) fn sync(fd: BorrowedFd<'_>) -> IoctlResult {
    // SAFETY: the request takes no argument.
    unsafe { raw::sync(fd) }
}

/// `BTRFS_IOC_START_SYNC`: start a commit; returns its transaction id.
pub(crate) fn start_sync(fd: BorrowedFd<'_>) -> IoctlResult<u64> {
    let mut transid = 0u64;
    // SAFETY: the kernel writes one u64 into `transid`.
    unsafe { raw::start_sync(fd, &mut transid) }?;
    Ok(transid)
}

/// `BTRFS_IOC_WAIT_SYNC`: wait until transaction `transid` (0: the current one) is committed.
pub(crate) fn wait_sync(fd: BorrowedFd<'_>, transid: u64) -> IoctlResult {
    // SAFETY: the kernel reads one u64 from `transid`.
    unsafe { raw::wait_sync(fd, &transid) }
}

/// `BTRFS_IOC_RESIZE`: `args.name` holds "[devid:]size|max|+size|-size".
pub(crate) fn resize(fd: BorrowedFd<'_>, args: &sys::btrfs_ioctl_vol_args) -> IoctlResult {
    // SAFETY: `args` is a correctly sized btrfs_ioctl_vol_args the kernel only reads.
    unsafe { raw::resize(fd, args) }
}

/// `BLKGETSIZE64` on an open block device: its size in bytes.
pub(crate) fn block_device_size(fd: BorrowedFd<'_>) -> IoctlResult<u64> {
    let mut size = 0u64;
    // SAFETY: the kernel writes one u64 into `size` (BLKGETSIZE64 always stores 8 bytes).
    unsafe { raw::blkgetsize64(fd, &mut size) }?;
    Ok(size)
}

/// `FS_IOC_GETFLAGS`: the inode attribute flags (`FS_APPEND_FL`, `FS_IMMUTABLE_FL`...).
pub(crate) fn inode_flags(fd: BorrowedFd<'_>) -> IoctlResult<u32> {
    let mut flags: std::ffi::c_long = 0;
    // SAFETY: `flags` is an owned, zeroed c_long; the kernel stores a 4-byte int into its
    // first bytes (the header's `long` notwithstanding), which fits.
    unsafe { raw::getflags(fd, &mut flags) }?;
    let bytes = flags.to_ne_bytes();
    Ok(u32::from_ne_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}

/// The two anonymous unions of a balance filter as raw words: (usage, limit). Each holds one
/// u64 or two u32s (`usage_min/usage_max`, `limit_min/limit_max`) in the same 8 bytes.
pub(crate) fn balance_args_unions(a: &sys::btrfs_balance_args) -> (u64, u64) {
    // SAFETY: both unions consist only of integers, so every bit pattern is a valid u64; the
    // fields are copied out of the packed struct by value, never referenced.
    unsafe { (a.__bindgen_anon_1.usage, a.__bindgen_anon_2.limit) }
}
