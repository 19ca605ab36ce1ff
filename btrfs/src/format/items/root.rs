//! Root items: where each tree's root block is, in the root tree.

use super::inode::{InodeItem, Timespec};
use crate::format::key::Key;
use crate::le::{put_bytes, put_u32, put_u64, put_u8, u64_at, u8_at};
use btrfs_sys as sys;
use core::mem::size_of;
use uuid::Uuid;

/// A tree's root item in the root tree (439 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RootItem {
    /// The embedded inode (of the tree's root directory, for subvolumes).
    pub inode: InodeItem,
    /// Generation of the root block.
    pub generation: u64,
    /// Root directory's inode number (256 for subvolumes, 0 otherwise).
    pub root_dirid: u64,
    /// Logical address of the root block.
    pub bytenr: u64,
    /// Bytes of tree blocks.
    pub bytes_used: u64,
    /// Reference count.
    pub refs: u32,
    /// Level of the root block.
    pub level: u8,
    /// Subvolume uuid (nil for internal trees).
    pub uuid: Uuid,
    /// Creation and change time.
    pub time: Timespec,
}

impl RootItem {
    /// Encoded size.
    pub const SIZE: usize = InodeItem::SIZE
        + 7 * 8
        + 4
        + Key::SIZE
        + 2
        + 8
        + 3 * 16
        + 4 * 8
        + 4 * Timespec::SIZE
        + 8 * 8;
    const BYTENR: usize = InodeItem::SIZE + 16;
    const LEVEL: usize = InodeItem::SIZE + 7 * 8 + 4 + Key::SIZE + 1;

    /// The encoded bytes. `generation_v2` equals `generation`, which marks the extended fields
    /// (uuids, times) as valid.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = vec![0u8; Self::SIZE];
        self.inode.encode(&mut b, 0);
        let o = InodeItem::SIZE;
        put_u64(&mut b, o, self.generation);
        put_u64(&mut b, o + 8, self.root_dirid);
        put_u64(&mut b, Self::BYTENR, self.bytenr);
        put_u64(&mut b, o + 32, self.bytes_used);
        put_u32(&mut b, o + 56, self.refs);
        put_u8(&mut b, Self::LEVEL, self.level);
        put_u64(&mut b, Self::LEVEL + 1, self.generation);
        put_bytes(&mut b, Self::LEVEL + 9, self.uuid.as_bytes());
        let times = Self::LEVEL + 9 + 48 + 32;
        self.time.encode(&mut b, times);
        self.time.encode(&mut b, times + Timespec::SIZE);
        b
    }

    /// Reads the root block's address and level; `None` unless `b` is a whole (not legacy-sized)
    /// root item.
    pub fn decode_location(b: &[u8]) -> Option<(u64, u8)> {
        if b.len() < Self::SIZE {
            return None;
        }
        Some((u64_at(b, Self::BYTENR).ok()?, u8_at(b, Self::LEVEL).ok()?))
    }
}
const _: () = assert!(RootItem::SIZE == 439);
const _: () = assert!(RootItem::SIZE == size_of::<sys::btrfs_root_item>());
