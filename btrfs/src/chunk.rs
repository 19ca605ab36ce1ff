//! Chunks: the chunk tree's items, which map logical ranges to device stripes.

use crate::error::{Error, Result};
use crate::fs::Filesystem;
use crate::profile::{BlockGroupKind, Profile};
use crate::size::ByteSize;
use crate::tree_search::{le, SearchRange};
use btrfs_sys as sys;

/// One stripe of a chunk: where on which device it lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Stripe {
    /// The device id.
    pub devid: u64,
    /// Physical byte offset on the device.
    pub offset: u64,
}

/// A chunk (block group) from the chunk tree.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Chunk {
    /// Logical start address.
    pub logical: u64,
    /// Logical length.
    pub length: ByteSize,
    /// What it holds.
    pub kind: BlockGroupKind,
    /// Its profile.
    pub profile: Profile,
    /// Sub-stripes (2 for RAID10).
    pub sub_stripes: u16,
    /// Its stripes.
    pub stripes: Vec<Stripe>,
}

/// Byte offsets inside `struct btrfs_chunk` and `struct btrfs_stripe` (on-disk, little-endian).
const CHUNK_LEN: usize =
    std::mem::size_of::<sys::btrfs_chunk>() - std::mem::size_of::<sys::btrfs_stripe>();
const STRIPE_LEN: usize = std::mem::size_of::<sys::btrfs_stripe>();

impl Chunk {
    /// Decodes a `CHUNK_ITEM` whose key offset is `logical`.
    pub(crate) fn parse(logical: u64, b: &[u8]) -> Option<Chunk> {
        if b.len() < CHUNK_LEN {
            return None;
        }
        let flags = le::u64_at(b, 24);
        let num_stripes = le::u16_at(b, 44) as usize;
        if b.len() < CHUNK_LEN + num_stripes * STRIPE_LEN || num_stripes == 0 {
            return None;
        }
        let stripes = (0..num_stripes)
            .map(|i| {
                let s = CHUNK_LEN + i * STRIPE_LEN;
                Stripe {
                    devid: le::u64_at(b, s),
                    offset: le::u64_at(b, s + 8),
                }
            })
            .collect();
        Some(Chunk {
            logical,
            length: ByteSize(le::u64_at(b, 0)),
            kind: BlockGroupKind::from_flags(flags)?,
            profile: Profile::from_flags(flags),
            sub_stripes: le::u16_at(b, 46),
            stripes,
        })
    }

    /// Bytes each stripe occupies on its device: the length for mirrored profiles, the length
    /// divided by the data stripes for striped ones.
    pub fn stripe_size(&self) -> ByteSize {
        let n = self.stripes.len() as u64;
        let data_stripes = match self.profile {
            Profile::Single
            | Profile::Dup
            | Profile::Raid1
            | Profile::Raid1c3
            | Profile::Raid1c4 => 1,
            Profile::Raid0 => n,
            Profile::Raid10 => n / u64::from(self.sub_stripes.max(1)),
            Profile::Raid5 | Profile::Raid6 => n - self.profile.parity(),
        };
        ByteSize(self.length.0 / data_stripes.max(1))
    }

    /// Raw bytes the chunk occupies on all devices together.
    pub fn raw_size(&self) -> ByteSize {
        ByteSize(self.stripe_size().0 * self.stripes.len() as u64)
    }
}

impl Filesystem {
    /// Every chunk, by logical address (privileged: reads the chunk tree with TREE_SEARCH).
    pub fn chunks(&self) -> Result<Vec<Chunk>> {
        let first = u64::from(sys::BTRFS_FIRST_CHUNK_TREE_OBJECTID);
        let range = SearchRange::items(
            sys::BTRFS_CHUNK_TREE_OBJECTID.into(),
            (first, first),
            sys::BTRFS_CHUNK_ITEM_KEY as u8,
        );
        self.tree_search(range)
            .map(|item| {
                let item = item?;
                Chunk::parse(item.offset, &item.data).ok_or_else(|| Error::Decode {
                    op: "read chunk tree",
                    path: self.path().into(),
                    detail: format!(
                        "chunk item at {} has {} bytes",
                        item.offset,
                        item.data.len()
                    ),
                })
            })
            .collect()
    }
}

/// A block group: a chunk's logical range and how much of it is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct BlockGroup {
    /// Logical start address (same as its chunk's).
    pub logical: u64,
    /// Logical length.
    pub length: ByteSize,
    /// Bytes used inside it.
    pub used: ByteSize,
    /// What it holds.
    pub kind: BlockGroupKind,
    /// Its profile.
    pub profile: Profile,
}

impl BlockGroup {
    /// How full it is, in percent (0–100), as balance's `usage` filter sees it.
    pub fn usage_percent(&self) -> f64 {
        self.used.ratio_of(self.length) * 100.0
    }
}

impl Filesystem {
    /// Every block group with its used bytes, by logical address (privileged). Reads the
    /// block group tree when the filesystem has one, else the extent tree.
    pub fn block_groups(&self) -> Result<Vec<BlockGroup>> {
        let mut groups = Vec::new();
        for tree in [
            sys::BTRFS_BLOCK_GROUP_TREE_OBJECTID,
            sys::BTRFS_EXTENT_TREE_OBJECTID,
        ] {
            let range = SearchRange {
                types: (
                    sys::BTRFS_BLOCK_GROUP_ITEM_KEY as u8,
                    sys::BTRFS_BLOCK_GROUP_ITEM_KEY as u8,
                ),
                ..SearchRange::whole_tree(tree.into())
            };
            for item in self.tree_search(range) {
                let item = match item {
                    Ok(item) => item,
                    // No block group tree on this filesystem: fall through to the extent tree.
                    Err(e) if e.errno() == Some(nix::errno::Errno::ENOENT) => break,
                    Err(e) => return Err(e),
                };
                let flags = le::u64_at(&item.data, 16);
                let kind = BlockGroupKind::from_flags(flags).ok_or_else(|| Error::Decode {
                    op: "read block groups",
                    path: self.path().into(),
                    detail: format!("block group {} has flags {flags:#x}", item.objectid),
                })?;
                groups.push(BlockGroup {
                    logical: item.objectid,
                    length: ByteSize(item.offset),
                    used: ByteSize(le::u64_at(&item.data, 0)),
                    kind,
                    profile: Profile::from_flags(flags),
                });
            }
            if !groups.is_empty() {
                break;
            }
        }
        Ok(groups)
    }
}
