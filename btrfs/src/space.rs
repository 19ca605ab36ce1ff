//! Space info per block group kind and profile: `BTRFS_IOC_SPACE_INFO` (works without root).

use crate::error::{Error, ErrorKind, Result};
use crate::fs::Filesystem;
use crate::ioctl;
use crate::profile::{BlockGroupKind, Profile};
use crate::size::ByteSize;

/// One line of `btrfs filesystem df`: the space of one kind and profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct SpaceInfo {
    /// What the block groups hold.
    pub kind: BlockGroupKind,
    /// Their profile.
    pub profile: Profile,
    /// Logical bytes allocated to block groups of this kind and profile.
    pub total: ByteSize,
    /// Logical bytes used inside them.
    pub used: ByteSize,
}

impl Filesystem {
    /// Whether data and metadata share block groups (mixed block groups, `mkfs.btrfs -M`, common
    /// on small filesystems): the space info has a data+metadata entry. Balances then need the
    /// same filters for data and metadata, which [`Filesystem::balance`] takes care of.
    ///
    /// [`Filesystem::balance`]: crate::Filesystem::balance
    pub fn is_mixed(&self) -> Result<bool> {
        Ok(self
            .space_info()?
            .iter()
            .any(|s| s.kind == BlockGroupKind::Mixed))
    }

    /// Space info for each block group kind and profile, as `btrfs filesystem df` shows it. The
    /// global reserve is the entry of kind [`BlockGroupKind::GlobalReserve`].
    pub fn space_info(&self) -> Result<Vec<SpaceInfo>> {
        let raw = ioctl::space_info(self.fd()).map_err(|e| self.err("space info", e))?;
        raw.iter()
            .map(|s| {
                let kind = BlockGroupKind::from_flags(s.flags).ok_or_else(|| {
                    Error::new(
                        "space info",
                        self.path(),
                        ErrorKind::Decode {
                            detail: format!("block group flags {:#x} name no kind", s.flags),
                        },
                    )
                })?;
                Ok(SpaceInfo {
                    kind,
                    profile: Profile::from_flags(s.flags),
                    total: ByteSize(s.total_bytes),
                    used: ByteSize(s.used_bytes),
                })
            })
            .collect()
    }
}
