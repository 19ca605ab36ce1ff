//! Trim (`FITRIM`): tell the devices which blocks the filesystem does not use, so thin
//! provisioning (LVM thin pools, sparse image files, SSDs) can reclaim them.
//!
//! ```no_run
//! use btrfs_kit::{trim::TrimOptions, ByteSize, Filesystem};
//!
//! # fn main() -> Result<(), btrfs_kit::Error> {
//! let fs = Filesystem::open("/var/lib/docker")?;
//! let trimmed = fs.trim(&TrimOptions::default().minimum_extent(ByteSize(64 * 1024)))?;
//! println!("trimmed {}", trimmed.trimmed);
//! # Ok(())
//! # }
//! ```
//!
//! btrfs trims the free space inside its block groups and the unallocated space of every device
//! that supports discard. It needs `CAP_SYS_ADMIN`.

use crate::error::{Error, ErrorKind, Result};
use crate::fs::Filesystem;
use crate::ioctl;
use crate::size::ByteSize;
use btrfs_sys as sys;
use rustix::io::Errno;

/// What to trim. The default trims everything, with the devices' own minimum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrimOptions {
    /// First filesystem (logical) address to consider.
    pub start: ByteSize,
    /// How many bytes of the address space to consider (`None`: all).
    pub length: Option<ByteSize>,
    /// Skip free extents shorter than this (0: the devices' discard granularity). Large values
    /// make the trim faster and skip small holes.
    pub minimum_extent: ByteSize,
}

impl Default for TrimOptions {
    fn default() -> Self {
        TrimOptions {
            start: ByteSize::ZERO,
            length: None,
            minimum_extent: ByteSize::ZERO,
        }
    }
}

impl TrimOptions {
    /// Skips free extents shorter than `minimum`.
    pub fn minimum_extent(mut self, minimum: ByteSize) -> Self {
        self.minimum_extent = minimum;
        self
    }

    /// Considers only the logical addresses `start..start + length`.
    pub fn range(mut self, start: ByteSize, length: ByteSize) -> Self {
        self.start = start;
        self.length = Some(length);
        self
    }
}

/// What a trim did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct TrimOutcome {
    /// Bytes the kernel discarded.
    pub trimmed: ByteSize,
    /// The minimum extent length used: the requested one, raised to the devices' discard
    /// granularity.
    pub minimum_extent: ByteSize,
}

/// The smallest range the kernel accepts (one sector of 4 KiB; smaller lengths are EINVAL).
const MIN_LENGTH: u64 = 4096;

impl Filesystem {
    /// Discards the unused space of the filesystem (`FITRIM`), returning the bytes trimmed.
    ///
    /// Errors: [`ErrorKind::DiscardUnsupported`] when no device supports discard,
    /// [`ErrorKind::PermissionDenied`] without `CAP_SYS_ADMIN`, [`ErrorKind::ReadOnly`] on a `nologreplay`
    /// mount, [`ErrorKind::InvalidArguments`] for a
    /// length shorter than 4 KiB or a range that overflows.
    pub fn trim(&self, options: &TrimOptions) -> Result<TrimOutcome> {
        const OP: &str = "trim (FITRIM)";
        let length = options.length.map_or(u64::MAX, |l| l.0);
        if length < MIN_LENGTH {
            return Err(Error::invalid_arguments(
                OP,
                format!("the length must be at least {MIN_LENGTH} bytes, got {length}"),
            ));
        }
        if options.length.is_some() && options.start.0.checked_add(length).is_none() {
            return Err(Error::invalid_arguments(
                OP,
                "start + length overflows the 64-bit address space",
            ));
        }
        let mut range = sys::fstrim_range {
            start: options.start.0,
            len: length,
            minlen: options.minimum_extent.0,
        };
        ioctl::fitrim(self.fd(), &mut range).map_err(|errno| match errno {
            Errno::OPNOTSUPP => Error::new(OP, self.path(), ErrorKind::DiscardUnsupported),
            Errno::PERM | Errno::ACCESS => Error::new(
                OP,
                self.path(),
                ErrorKind::PermissionDenied {
                    errno,
                    needs: crate::error::NEEDS_ADMIN,
                },
            ),
            errno => self.err(OP, errno),
        })?;
        Ok(TrimOutcome {
            trimmed: ByteSize(range.len),
            minimum_extent: ByteSize(range.minlen),
        })
    }
}
