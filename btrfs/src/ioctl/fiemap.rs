//! `FS_IOC_FIEMAP`: the extent map of a file. Same rules as the parent module.

use super::IoctlResult;
use btrfs_sys as sys;
use btrfs_sys::ioctl as req;
use std::os::fd::BorrowedFd;

/// How many extents one `FS_IOC_FIEMAP` call may return into a [`FiemapBuffer`].
pub(crate) const FIEMAP_BATCH: usize = 256;

/// A `struct fiemap` header followed by room for [`FIEMAP_BATCH`] extents, laid out as the kernel
/// expects the flexible array member `fm_extents` (at offset 32, 8-byte aligned).
#[repr(C)]
pub(crate) struct FiemapBuffer {
    head: sys::fiemap,
    extents: [sys::fiemap_extent; FIEMAP_BATCH],
}

const _: () = assert!(std::mem::offset_of!(FiemapBuffer, extents) == 32);
const _: () = assert!(std::mem::size_of::<sys::fiemap>() == 32);

impl FiemapBuffer {
    /// A zeroed buffer on the heap (about 14 KiB): allocate once, reuse for many calls.
    pub(crate) fn new() -> Box<Self> {
        Box::new(FiemapBuffer {
            head: sys::fiemap::default(),
            extents: [sys::fiemap_extent::default(); FIEMAP_BATCH],
        })
    }

    /// The extents the last successful call mapped.
    pub(crate) fn mapped(&self) -> &[sys::fiemap_extent] {
        let n = (self.head.fm_mapped_extents as usize).min(FIEMAP_BATCH);
        &self.extents[..n]
    }

    /// The request flags as the kernel left them (on `EBADR`: the flags it does not support).
    pub(crate) fn flags(&self) -> u32 {
        self.head.fm_flags
    }
}

mod raw {
    use super::{req, sys};
    bad_ioctl!(readwrite, fiemap, req::FS_IOC_FIEMAP, sys::fiemap);
}

/// `FS_IOC_FIEMAP` for the bytes `start..start + length` with request flags `flags`
/// (`FIEMAP_FLAG_*`); the mapped extents are then in `buf.mapped()`.
pub(crate) fn fiemap(
    fd: BorrowedFd<'_>,
    buf: &mut FiemapBuffer,
    start: u64,
    length: u64,
    flags: u32,
) -> IoctlResult<()> {
    buf.head = sys::fiemap {
        fm_start: start,
        fm_length: length,
        fm_flags: flags,
        fm_mapped_extents: 0,
        fm_extent_count: FIEMAP_BATCH as u32,
        fm_reserved: 0,
        fm_extents: Default::default(),
    };
    // SAFETY: `buf` is an exclusive, owned FiemapBuffer: a struct fiemap header whose
    // fm_extent_count (FIEMAP_BATCH) matches the room for extents that directly follows it, so
    // the kernel writes only within the buffer; it keeps no reference after returning.
    unsafe { raw::fiemap(fd, &mut buf.head) }?;
    Ok(())
}
