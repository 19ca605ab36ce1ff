//! `BTRFS_IOC_TREE_SEARCH_V2`: a tree search into a buffer of the caller's size, so that a walk
//! over a whole tree takes a few calls instead of one per 4 KiB of items. Same rules as the
//! parent module.

use super::IoctlResult;
use btrfs_sys as sys;
use btrfs_sys::ioctl as req;
use std::mem::size_of;
use std::os::fd::BorrowedFd;

mod raw {
    use super::{req, sys};
    bad_ioctl!(
        readwrite,
        tree_search_v2,
        req::BTRFS_IOC_TREE_SEARCH_V2,
        sys::btrfs_ioctl_search_args_v2
    );
}

/// The fixed part of the argument: the key and `buf_size`, before the buffer.
const HEAD: usize = size_of::<sys::btrfs_ioctl_search_args_v2>();

/// An owned `struct btrfs_ioctl_search_args_v2` followed by its result buffer, in one
/// 8-byte-aligned allocation, reused across calls.
pub(crate) struct SearchV2Args {
    words: Vec<u64>,
    buf_size: usize,
}

impl SearchV2Args {
    /// Arguments with a result buffer of `buf_size` bytes (rounded up to 8).
    pub(crate) fn new(buf_size: usize) -> Self {
        let buf_size = buf_size.next_multiple_of(8);
        SearchV2Args {
            words: vec![0; (HEAD + buf_size) / 8],
            buf_size,
        }
    }

    fn head(&self) -> &sys::btrfs_ioctl_search_args_v2 {
        // SAFETY: `words` is 8-byte aligned (as the struct) and at least HEAD bytes long, and
        // every bit pattern is a valid value of the struct (integers and a zero-sized array).
        unsafe {
            &*self
                .words
                .as_ptr()
                .cast::<sys::btrfs_ioctl_search_args_v2>()
        }
    }

    fn head_mut(&mut self) -> &mut sys::btrfs_ioctl_search_args_v2 {
        // SAFETY: as in `head`, and the borrow of `self` is exclusive.
        unsafe {
            &mut *self
                .words
                .as_mut_ptr()
                .cast::<sys::btrfs_ioctl_search_args_v2>()
        }
    }

    /// Sets the search key for the next call (and the buffer's size, which the kernel may
    /// have changed).
    pub(crate) fn set_key(&mut self, key: sys::btrfs_ioctl_search_key) {
        let buf_size = self.buf_size as u64;
        let head = self.head_mut();
        head.key = key;
        head.buf_size = buf_size;
    }

    /// How many items the last call returned.
    pub(crate) fn nr_items(&self) -> u32 {
        self.head().key.nr_items
    }

    /// The result buffer: `nr_items` search headers, each followed by its item.
    pub(crate) fn buf(&self) -> &[u8] {
        &bytemuck::cast_slice::<u64, u8>(&self.words)[HEAD..HEAD + self.buf_size]
    }
}

/// `BTRFS_IOC_TREE_SEARCH_V2` with `args`' key into its buffer. EOVERFLOW: the first item does
/// not fit the buffer (the kernel then says the size it needs in `buf_size`).
pub(crate) fn tree_search_v2(fd: BorrowedFd<'_>, args: &mut SearchV2Args) -> IoctlResult<()> {
    let len = args.words.len() * 8;
    debug_assert!(len >= HEAD + args.head().buf_size as usize);
    // SAFETY: the pointer is to an exclusively borrowed allocation of HEAD + buf_size bytes
    // holding the struct followed by its buffer; the kernel reads the struct and writes at most
    // `buf_size` bytes after it (and the key back), all before returning.
    unsafe {
        raw::tree_search_v2(
            fd,
            args.words
                .as_mut_ptr()
                .cast::<sys::btrfs_ioctl_search_args_v2>(),
        )
    }?;
    Ok(())
}
