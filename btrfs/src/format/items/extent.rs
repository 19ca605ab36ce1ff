//! Block groups, tree block extent items and free-space tree headers.

use crate::format::consts::{key, EXTENT_FLAG_TREE_BLOCK};
use crate::format::key::Key;
use crate::le::{put_u32, put_u64, put_u8, u32_at, u64_at};
use btrfs_sys as sys;
use core::mem::size_of;

/// A block group, keyed `(logical, BLOCK_GROUP_ITEM, length)` (24 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockGroupItem {
    /// Bytes allocated to extents.
    pub used: u64,
    /// Type and profile flags.
    pub flags: u64,
}

impl BlockGroupItem {
    /// Encoded size.
    pub const SIZE: usize = 3 * 8;

    /// The encoded bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = vec![0u8; Self::SIZE];
        put_u64(&mut b, 0, self.used);
        put_u64(&mut b, 8, crate::format::consts::objectid::FIRST_CHUNK_TREE);
        put_u64(&mut b, 16, self.flags);
        b
    }

    /// Decodes the item, `None` if too short.
    pub fn decode(b: &[u8]) -> Option<Self> {
        Some(BlockGroupItem {
            used: u64_at(b, 0).ok()?,
            flags: u64_at(b, 16).ok()?,
        })
    }
}
const _: () = assert!(BlockGroupItem::SIZE == size_of::<sys::btrfs_block_group_item>());

/// Extent item header size (refs, generation, flags).
pub const EXTENT_ITEM_SIZE: usize = 3 * 8;
const _: () = assert!(EXTENT_ITEM_SIZE == size_of::<sys::btrfs_extent_item>());
/// Inline reference size: type + offset.
pub const INLINE_REF_SIZE: usize = 1 + 8;
const _: () = assert!(INLINE_REF_SIZE == size_of::<sys::btrfs_extent_inline_ref>());
/// Tree block info size (first key + level), present without skinny metadata.
pub const TREE_BLOCK_INFO_SIZE: usize = Key::SIZE + 1;
const _: () = assert!(TREE_BLOCK_INFO_SIZE == size_of::<sys::btrfs_tree_block_info>());

/// The extent item of one tree block owned by `owner`, with a single inline tree block
/// reference. With `skinny` the key is `(bytenr, METADATA_ITEM, level)`; without it,
/// `(bytenr, EXTENT_ITEM, nodesize)` and the data carries a tree block info (first key, level).
pub fn tree_block_extent(
    bytenr: u64,
    nodesize: u64,
    generation: u64,
    owner: u64,
    first_key: Key,
    skinny: bool,
) -> (Key, Vec<u8>) {
    let info = if skinny { 0 } else { TREE_BLOCK_INFO_SIZE };
    let mut b = vec![0u8; EXTENT_ITEM_SIZE + info + INLINE_REF_SIZE];
    put_u64(&mut b, 0, 1);
    put_u64(&mut b, 8, generation);
    put_u64(&mut b, 16, EXTENT_FLAG_TREE_BLOCK);
    if !skinny {
        first_key.encode(&mut b, EXTENT_ITEM_SIZE);
        // level 0
    }
    put_u8(&mut b, EXTENT_ITEM_SIZE + info, key::TREE_BLOCK_REF);
    put_u64(&mut b, EXTENT_ITEM_SIZE + info + 1, owner);
    let k = if skinny {
        Key::new(bytenr, key::METADATA_ITEM, 0)
    } else {
        Key::new(bytenr, key::EXTENT_ITEM, nodesize)
    };
    (k, b)
}

/// Free-space tree header of a block group: extent count and flags (8 bytes).
pub fn free_space_info(extent_count: u32) -> Vec<u8> {
    let mut b = vec![0u8; 8];
    put_u32(&mut b, 0, extent_count);
    b
}
const _: () = assert!(8 == size_of::<sys::btrfs_free_space_info>());

/// Reads the extent count of a free-space info item, `None` if shorter than the item (count
/// and flags).
pub fn free_space_info_count(b: &[u8]) -> Option<u32> {
    if b.len() < size_of::<sys::btrfs_free_space_info>() {
        return None;
    }
    u32_at(b, 0).ok()
}
