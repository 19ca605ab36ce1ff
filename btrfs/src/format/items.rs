//! Item payloads: inode, root, device, chunk, device extent, block group, extent, free space,
//! inode reference and directory entry. Each has a fixed encoded size checked at compile time
//! against the uapi header's struct where it has one.

use super::consts::{key, EXTENT_FLAG_TREE_BLOCK, FT_DIR};
use super::key::Key;
use super::le::{
    get_u16, get_u32, get_u64, get_u8, get_uuid, put_bytes, put_u16, put_u32, put_u64, put_u8,
};
use btrfs_sys as sys;
use core::mem::size_of;
use uuid::Uuid;

/// Seconds and nanoseconds since the epoch (12 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Timespec {
    /// Seconds.
    pub sec: u64,
    /// Nanoseconds.
    pub nsec: u32,
}

impl Timespec {
    /// Encoded size.
    pub const SIZE: usize = 8 + 4;

    fn encode(&self, buf: &mut [u8], off: usize) {
        put_u64(buf, off, self.sec);
        put_u32(buf, off + 8, self.nsec);
    }
}
const _: () = assert!(Timespec::SIZE == size_of::<sys::btrfs_timespec>());

/// An inode (160 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InodeItem {
    /// Transaction that created it.
    pub generation: u64,
    /// Size in bytes.
    pub size: u64,
    /// Bytes allocated.
    pub nbytes: u64,
    /// Link count.
    pub nlink: u32,
    /// Mode bits, file type included.
    pub mode: u32,
    /// atime, ctime and mtime.
    pub time: Timespec,
    /// Creation time.
    pub otime: Timespec,
}

impl InodeItem {
    /// Encoded size.
    pub const SIZE: usize = 5 * 8 + 4 * 4 + 3 * 8 + 4 * 8 + 4 * Timespec::SIZE;

    /// Writes the inode at `off` (uid, gid, rdev, flags, transid and sequence are zero).
    pub fn encode(&self, buf: &mut [u8], off: usize) {
        put_u64(buf, off, self.generation);
        put_u64(buf, off + 16, self.size);
        put_u64(buf, off + 24, self.nbytes);
        put_u32(buf, off + 40, self.nlink);
        put_u32(buf, off + 52, self.mode);
        self.time.encode(buf, off + 112);
        self.time.encode(buf, off + 124);
        self.time.encode(buf, off + 136);
        self.otime.encode(buf, off + 148);
    }

    /// The encoded bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = vec![0u8; Self::SIZE];
        self.encode(&mut b, 0);
        b
    }
}
const _: () = assert!(InodeItem::SIZE == 160);
const _: () = assert!(InodeItem::SIZE == size_of::<sys::btrfs_inode_item>());

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

    /// Reads the root block's address and level.
    pub fn decode_location(b: &[u8]) -> Option<(u64, u8)> {
        (b.len() >= Self::SIZE).then(|| (get_u64(b, Self::BYTENR), get_u8(b, Self::LEVEL)))
    }
}
const _: () = assert!(RootItem::SIZE == 439);
const _: () = assert!(RootItem::SIZE == size_of::<sys::btrfs_root_item>());

/// A device (98 bytes), in the chunk tree and embedded in the superblock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DevItem {
    /// Device id.
    pub devid: u64,
    /// Usable size.
    pub total_bytes: u64,
    /// Bytes in device extents.
    pub bytes_used: u64,
    /// Sector size (also io_align and io_width).
    pub sector_size: u32,
    /// Device uuid.
    pub uuid: Uuid,
    /// Filesystem uuid.
    pub fsid: Uuid,
}

impl DevItem {
    /// Encoded size.
    pub const SIZE: usize = 3 * 8 + 3 * 4 + 3 * 8 + 4 + 1 + 1 + 16 + 16;

    /// Writes the item at `off`.
    pub fn encode(&self, buf: &mut [u8], off: usize) {
        put_u64(buf, off, self.devid);
        put_u64(buf, off + 8, self.total_bytes);
        put_u64(buf, off + 16, self.bytes_used);
        put_u32(buf, off + 24, self.sector_size);
        put_u32(buf, off + 28, self.sector_size);
        put_u32(buf, off + 32, self.sector_size);
        put_bytes(buf, off + 66, self.uuid.as_bytes());
        put_bytes(buf, off + 82, self.fsid.as_bytes());
    }

    /// Reads the item at `off`.
    pub fn decode(buf: &[u8], off: usize) -> Self {
        DevItem {
            devid: get_u64(buf, off),
            total_bytes: get_u64(buf, off + 8),
            bytes_used: get_u64(buf, off + 16),
            sector_size: get_u32(buf, off + 32),
            uuid: get_uuid(buf, off + 66),
            fsid: get_uuid(buf, off + 82),
        }
    }

    /// The encoded bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = vec![0u8; Self::SIZE];
        self.encode(&mut b, 0);
        b
    }
}
const _: () = assert!(DevItem::SIZE == 98);
const _: () = assert!(DevItem::SIZE == size_of::<sys::btrfs_dev_item>());

/// One stripe of a chunk (32 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stripe {
    /// Device id.
    pub devid: u64,
    /// Physical offset on the device.
    pub offset: u64,
    /// Device uuid.
    pub dev_uuid: Uuid,
}

impl Stripe {
    /// Encoded size.
    pub const SIZE: usize = 8 + 8 + 16;
}
const _: () = assert!(Stripe::SIZE == size_of::<sys::btrfs_stripe>());

/// A chunk: a logical range and where its copies live (48 bytes + 32 per stripe).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// Logical length.
    pub length: u64,
    /// Stripe length (64 KiB).
    pub stripe_len: u64,
    /// Block group type and profile flags.
    pub flags: u64,
    /// Sector size.
    pub sector_size: u32,
    /// The stripes.
    pub stripes: Vec<Stripe>,
}

impl Chunk {
    /// Encoded size without stripes.
    pub const BASE_SIZE: usize = 4 * 8 + 3 * 4 + 2 + 2;

    /// Encoded size of this chunk.
    pub fn size(&self) -> usize {
        Self::BASE_SIZE + self.stripes.len() * Stripe::SIZE
    }

    /// The encoded bytes (owner: the extent tree; io_align and io_width: the stripe length;
    /// sub_stripes: 1).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = vec![0u8; self.size()];
        put_u64(&mut b, 0, self.length);
        put_u64(&mut b, 8, super::consts::objectid::EXTENT_TREE);
        put_u64(&mut b, 16, self.stripe_len);
        put_u64(&mut b, 24, self.flags);
        put_u32(&mut b, 32, self.stripe_len as u32);
        put_u32(&mut b, 36, self.stripe_len as u32);
        put_u32(&mut b, 40, self.sector_size);
        put_u16(&mut b, 44, self.stripes.len() as u16);
        put_u16(&mut b, 46, 1);
        for (i, s) in self.stripes.iter().enumerate() {
            let o = Self::BASE_SIZE + i * Stripe::SIZE;
            put_u64(&mut b, o, s.devid);
            put_u64(&mut b, o + 8, s.offset);
            put_bytes(&mut b, o + 16, s.dev_uuid.as_bytes());
        }
        b
    }

    /// Reads a chunk at `off`, `None` if `buf` is too short for its stripes.
    pub fn decode(buf: &[u8], off: usize) -> Option<Self> {
        if buf.len() < off + Self::BASE_SIZE {
            return None;
        }
        let n = get_u16(buf, off + 44) as usize;
        if n == 0 || buf.len() < off + Self::BASE_SIZE + n * Stripe::SIZE {
            return None;
        }
        let stripes = (0..n)
            .map(|i| {
                let o = off + Self::BASE_SIZE + i * Stripe::SIZE;
                Stripe {
                    devid: get_u64(buf, o),
                    offset: get_u64(buf, o + 8),
                    dev_uuid: get_uuid(buf, o + 16),
                }
            })
            .collect();
        Some(Chunk {
            length: get_u64(buf, off),
            stripe_len: get_u64(buf, off + 16),
            flags: get_u64(buf, off + 24),
            sector_size: get_u32(buf, off + 40),
            stripes,
        })
    }
}
const _: () = assert!(Chunk::BASE_SIZE == 48);
const _: () = assert!(Chunk::BASE_SIZE + Stripe::SIZE == size_of::<sys::btrfs_chunk>());

/// A device extent: one stripe of a chunk, keyed `(devid, DEV_EXTENT, physical)` (48 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DevExtent {
    /// Logical address of the chunk.
    pub chunk_offset: u64,
    /// Length of the stripe.
    pub length: u64,
    /// The chunk tree's uuid.
    pub chunk_tree_uuid: Uuid,
}

impl DevExtent {
    /// Encoded size.
    pub const SIZE: usize = 4 * 8 + 16;

    /// The encoded bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = vec![0u8; Self::SIZE];
        put_u64(&mut b, 0, super::consts::objectid::CHUNK_TREE);
        put_u64(&mut b, 8, super::consts::objectid::FIRST_CHUNK_TREE);
        put_u64(&mut b, 16, self.chunk_offset);
        put_u64(&mut b, 24, self.length);
        put_bytes(&mut b, 32, self.chunk_tree_uuid.as_bytes());
        b
    }

    /// Decodes the item, `None` if too short.
    pub fn decode(b: &[u8]) -> Option<Self> {
        (b.len() >= Self::SIZE).then(|| DevExtent {
            chunk_offset: get_u64(b, 16),
            length: get_u64(b, 24),
            chunk_tree_uuid: get_uuid(b, 32),
        })
    }
}
const _: () = assert!(DevExtent::SIZE == size_of::<sys::btrfs_dev_extent>());

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
        put_u64(&mut b, 8, super::consts::objectid::FIRST_CHUNK_TREE);
        put_u64(&mut b, 16, self.flags);
        b
    }

    /// Decodes the item, `None` if too short.
    pub fn decode(b: &[u8]) -> Option<Self> {
        (b.len() >= Self::SIZE).then(|| BlockGroupItem {
            used: get_u64(b, 0),
            flags: get_u64(b, 16),
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

/// Reads the extent count of a free-space info item.
pub fn free_space_info_count(b: &[u8]) -> Option<u32> {
    (b.len() >= 8).then(|| get_u32(b, 0))
}

/// An inode reference: directory index and name.
pub fn inode_ref(index: u64, name: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8; 10 + name.len()];
    put_u64(&mut b, 0, index);
    put_u16(&mut b, 8, name.len() as u16);
    put_bytes(&mut b, 10, name);
    b
}
const _: () = assert!(10 == size_of::<sys::btrfs_inode_ref>());

/// A directory entry pointing at `location`, of directory type.
pub fn dir_item(location: Key, name: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8; 30 + name.len()];
    location.encode(&mut b, 0);
    put_u16(&mut b, 27, name.len() as u16);
    put_u8(&mut b, 29, FT_DIR);
    put_bytes(&mut b, 30, name);
    b
}
const _: () = assert!(30 == size_of::<sys::btrfs_dir_item>());

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_round_trip() {
        let c = Chunk {
            length: 8 << 20,
            stripe_len: 65536,
            flags: 2 | 32,
            sector_size: 4096,
            stripes: vec![
                Stripe {
                    devid: 1,
                    offset: 1 << 20,
                    dev_uuid: Uuid::from_u128(3),
                },
                Stripe {
                    devid: 1,
                    offset: 9 << 20,
                    dev_uuid: Uuid::from_u128(3),
                },
            ],
        };
        let b = c.to_bytes();
        assert_eq!(b.len(), 112);
        assert_eq!(Chunk::decode(&b, 0), Some(c));
        assert_eq!(Chunk::decode(&b[..100], 0), None);
    }

    #[test]
    fn dev_item_round_trip() {
        let d = DevItem {
            devid: 1,
            total_bytes: 1 << 30,
            bytes_used: 5 << 20,
            sector_size: 4096,
            uuid: Uuid::from_u128(7),
            fsid: Uuid::from_u128(8),
        };
        assert_eq!(DevItem::decode(&d.to_bytes(), 0), d);
    }

    #[test]
    fn root_item_location_and_generation_v2() {
        let r = RootItem {
            generation: 1,
            bytenr: 1 << 22,
            level: 0,
            refs: 1,
            ..Default::default()
        };
        let b = r.to_bytes();
        assert_eq!(RootItem::decode_location(&b), Some((1 << 22, 0)));
        // generation_v2 sits right after the level byte.
        assert_eq!(get_u64(&b, 239), 1);
        assert_eq!(get_u32(&b, 216), 1);
    }

    #[test]
    fn extent_item_shapes() {
        let (k, b) = tree_block_extent(1 << 20, 16384, 1, 5, Key::default(), true);
        assert_eq!(
            (k.item_type, k.offset, b.len()),
            (key::METADATA_ITEM, 0, 33)
        );
        let (k, b) = tree_block_extent(1 << 20, 16384, 1, 5, Key::default(), false);
        assert_eq!(
            (k.item_type, k.offset, b.len()),
            (key::EXTENT_ITEM, 16384, 51)
        );
        assert_eq!(dir_item(Key::default(), b"default").len(), 37);
        assert_eq!(inode_ref(0, b"..").len(), 12);
    }
}
