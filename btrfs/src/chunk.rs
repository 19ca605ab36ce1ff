//! Chunks: the chunk tree's items, which map logical ranges to device stripes.

use crate::error::Result;
use crate::format::items;
use crate::fs::Filesystem;
use crate::le;
use crate::profile::{BlockGroupKind, Profile};
use crate::size::ByteSize;
use crate::tree_search::SearchRange;
use btrfs_sys as sys;
use std::mem::offset_of;

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

impl Chunk {
    /// Decodes a `CHUNK_ITEM` whose key offset is `logical` (with the one chunk-item decoder,
    /// `format::items::Chunk::decode`); `Err` says what is wrong with it.
    pub(crate) fn parse(logical: u64, b: &[u8]) -> Result<Chunk, String> {
        let item = items::Chunk::decode(b, 0).map_err(|e| format!("{} bytes: {e}", b.len()))?;
        let flags = item.flags;
        Ok(Chunk {
            logical,
            length: ByteSize(item.length),
            kind: BlockGroupKind::from_flags(flags)
                .ok_or_else(|| format!("flags {flags:#x} name no chunk kind"))?,
            profile: Profile::from_flags(flags),
            sub_stripes: item.sub_stripes,
            stripes: item
                .stripes
                .iter()
                .map(|s| Stripe {
                    devid: s.devid,
                    offset: s.offset,
                })
                .collect(),
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
                Chunk::parse(item.offset, &item.data).map_err(|e| {
                    self.decode_err(
                        "read chunk tree",
                        format!("chunk item at {}: {e}", item.offset),
                    )
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
                    Err(e) if e.errno() == Some(rustix::io::Errno::NOENT) => break,
                    Err(e) => return Err(e),
                };
                type G = sys::btrfs_block_group_item;
                let undecodable = |detail: String| {
                    self.decode_err(
                        "read block groups",
                        format!("block group {}: {detail}", item.objectid),
                    )
                };
                let field = |off: usize| {
                    le::u64_at(&item.data, off).map_err(|e| undecodable(e.to_string()))
                };
                let flags = field(offset_of!(G, flags))?;
                let kind = BlockGroupKind::from_flags(flags)
                    .ok_or_else(|| undecodable(format!("unknown flags {flags:#x}")))?;
                groups.push(BlockGroup {
                    logical: item.objectid,
                    length: ByteSize(item.offset),
                    used: ByteSize(field(offset_of!(G, used))?),
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
