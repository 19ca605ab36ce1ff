//! A file's extent map through `FS_IOC_FIEMAP`: where each piece of the file lives, and whether
//! it is shared with another file (a snapshot or a reflink).
//!
//! ```no_run
//! use btrfs_kit::fiemap::{ExtentFlags, FiemapReader};
//!
//! # fn main() -> Result<(), btrfs_kit::Error> {
//! let mut reader = FiemapReader::new();
//! let extents = reader.extents_of_path("/var/lib/docker/some/file")?;
//! let shared = extents.iter().filter(|e| e.flags.contains(ExtentFlags::SHARED)).count();
//! println!("{} extents, {shared} shared", extents.len());
//! # Ok(())
//! # }
//! ```
//!
//! On btrfs the kernel merges extents that are contiguous both in the file and on disk and carry
//! the same flags into one record, as `filefrag -v` shows them. Works on any filesystem that
//! implements FIEMAP, and without root.

use crate::error::{Error, ErrorKind, Result};
use crate::ioctl::{self, FiemapBuffer};
use crate::size::ByteSize;
use btrfs_sys as sys;
use rustix::io::Errno;
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;

bitflags::bitflags! {
    /// What the kernel says about one extent (`FIEMAP_EXTENT_*`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    #[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize), serde(transparent))]
    pub struct ExtentFlags: u32 {
        /// The last extent of the file.
        const LAST = sys::FIEMAP_EXTENT_LAST;
        /// The location is not known yet.
        const UNKNOWN = sys::FIEMAP_EXTENT_UNKNOWN;
        /// Written but not yet allocated on disk (delayed allocation); implies `UNKNOWN`.
        const DELALLOC = sys::FIEMAP_EXTENT_DELALLOC;
        /// The data is encoded (on btrfs: compressed), so the physical size differs.
        const ENCODED = sys::FIEMAP_EXTENT_ENCODED;
        /// The data is encrypted.
        const DATA_ENCRYPTED = sys::FIEMAP_EXTENT_DATA_ENCRYPTED;
        /// Offsets are not block-aligned.
        const NOT_ALIGNED = sys::FIEMAP_EXTENT_NOT_ALIGNED;
        /// The data sits inside the metadata (btrfs inline extent).
        const DATA_INLINE = sys::FIEMAP_EXTENT_DATA_INLINE;
        /// The data is packed with other files' tails.
        const DATA_TAIL = sys::FIEMAP_EXTENT_DATA_TAIL;
        /// Allocated but never written (preallocated, reads as zeroes).
        const UNWRITTEN = sys::FIEMAP_EXTENT_UNWRITTEN;
        /// The filesystem merged several extents into this record.
        const MERGED = sys::FIEMAP_EXTENT_MERGED;
        /// The extent is shared with another file or snapshot (copy-on-write).
        const SHARED = sys::FIEMAP_EXTENT_SHARED;
        // Flags of newer kernels are kept, not dropped.
        const _ = !0;
    }
}

/// One extent of a file, as `FS_IOC_FIEMAP` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Extent {
    /// Offset in the file.
    pub logical: ByteSize,
    /// Address on disk: on btrfs a *logical* filesystem address (map it through the chunk tree to
    /// a device offset); 0 when unknown (`UNKNOWN`, `DELALLOC`).
    pub physical: ByteSize,
    /// Length in the file (for compressed extents, the uncompressed length).
    pub length: ByteSize,
    /// What the kernel says about it.
    pub flags: ExtentFlags,
}

impl Extent {
    /// The file offset just past this extent.
    pub fn logical_end(&self) -> u64 {
        self.logical.0.saturating_add(self.length.0)
    }

    /// Whether the extent is shared with another file or snapshot.
    pub fn is_shared(&self) -> bool {
        self.flags.contains(ExtentFlags::SHARED)
    }
}

/// Options of one extent-map request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FiemapRequest {
    /// First file offset to map.
    pub start: ByteSize,
    /// How many bytes to map (`None`: to the end of the file).
    pub length: Option<ByteSize>,
    /// Flush the file's dirty data first (`FIEMAP_FLAG_SYNC`), so recent writes show their
    /// final location instead of `DELALLOC`.
    pub sync: bool,
}

impl Default for FiemapRequest {
    fn default() -> Self {
        FiemapRequest {
            start: ByteSize::ZERO,
            length: None,
            sync: false,
        }
    }
}

impl FiemapRequest {
    /// The whole file, flushed first.
    pub fn synced() -> Self {
        FiemapRequest {
            sync: true,
            ..Default::default()
        }
    }
}

/// Reads extent maps, reusing one 14 KiB kernel buffer across files and calls.
pub struct FiemapReader {
    buf: Box<FiemapBuffer>,
}

impl Default for FiemapReader {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for FiemapReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FiemapReader").finish_non_exhaustive()
    }
}

impl FiemapReader {
    /// A reader with its buffer allocated.
    pub fn new() -> Self {
        FiemapReader {
            buf: FiemapBuffer::new(),
        }
    }

    /// Every extent of the file at `path` (opened read-only), not flushed first.
    pub fn extents_of_path(&mut self, path: impl AsRef<Path>) -> Result<Vec<Extent>> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|e| Error::from_io("map extents", path, &e))?;
        self.extents(file.as_fd(), path, &FiemapRequest::default())
    }

    /// The extents of the open file `fd` (`path` names it in errors) that `request` asks for.
    pub fn extents(
        &mut self,
        fd: BorrowedFd<'_>,
        path: &Path,
        request: &FiemapRequest,
    ) -> Result<Vec<Extent>> {
        let mut extents = Vec::new();
        self.for_each(fd, path, request, |e| extents.push(e))?;
        Ok(extents)
    }

    /// Calls `f` with each extent of `fd` in `request`, in file order, without collecting them.
    pub fn for_each(
        &mut self,
        fd: BorrowedFd<'_>,
        path: &Path,
        request: &FiemapRequest,
        mut f: impl FnMut(Extent),
    ) -> Result<()> {
        const OP: &str = "map extents (FS_IOC_FIEMAP)";
        let end = request
            .length
            .map_or(u64::MAX, |l| request.start.0.saturating_add(l.0));
        let flags = if request.sync {
            sys::FIEMAP_FLAG_SYNC
        } else {
            0
        };
        let mut cursor = request.start.0;
        while cursor < end {
            ioctl::fiemap(fd, &mut self.buf, cursor, end - cursor, flags)
                .map_err(|errno| fiemap_error(OP, path, errno, self.buf.flags()))?;
            let mapped = self.buf.mapped();
            let Some(last) = mapped.last() else {
                break;
            };
            let done =
                last.fe_flags & sys::FIEMAP_EXTENT_LAST != 0 || mapped.len() < ioctl::FIEMAP_BATCH;
            let next = last.fe_logical.saturating_add(last.fe_length);
            for e in mapped {
                f(Extent {
                    logical: ByteSize(e.fe_logical),
                    physical: ByteSize(e.fe_physical),
                    length: ByteSize(e.fe_length),
                    flags: ExtentFlags::from_bits_retain(e.fe_flags),
                });
            }
            if done || next <= cursor {
                break;
            }
            cursor = next;
        }
        Ok(())
    }
}

/// Maps an errno of `FS_IOC_FIEMAP` to an error that says what to do.
fn fiemap_error(op: &'static str, path: &Path, errno: Errno, flags_left: u32) -> Error {
    match errno {
        Errno::BADR => Error::invalid_arguments(op, format!(
                "{}: the filesystem does not support the request flags {flags_left:#x}; map without them",
                path.display()
            )),
        Errno::NOTTY | Errno::OPNOTSUPP => Error::new(op, path, ErrorKind::Unsupported { what: "the filesystem does not implement FIEMAP extent maps" }),
        errno => Error::from_errno(op, path, errno),
    }
}
