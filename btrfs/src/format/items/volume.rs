//! Devices, chunks with their stripes, and device extents.

use crate::le::{put_bytes, put_u16, put_u32, put_u64, u16_at, u32_at, u64_at, uuid_at, ShortRead};
use btrfs_sys as sys;
use core::mem::size_of;
use uuid::Uuid;

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

    /// Reads the item at `off`; an error when `buf` ends before it does.
    pub fn decode(buf: &[u8], off: usize) -> Result<Self, ShortRead> {
        Ok(DevItem {
            devid: u64_at(buf, off)?,
            total_bytes: u64_at(buf, off + 8)?,
            bytes_used: u64_at(buf, off + 16)?,
            sector_size: u32_at(buf, off + 32)?,
            uuid: uuid_at(buf, off + 66)?,
            fsid: uuid_at(buf, off + 82)?,
        })
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
    /// Stripes per mirror group: 2 for RAID10, 1 otherwise.
    pub sub_stripes: u16,
    /// The stripes.
    pub stripes: Vec<Stripe>,
}

/// Why bytes are not a chunk item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BadChunk {
    /// A field, or a stripe the item counts, lies past the end of the bytes.
    #[error(transparent)]
    Short(#[from] ShortRead),
    /// The item counts no stripes.
    #[error("no stripes")]
    NoStripes,
}

impl Chunk {
    /// Encoded size without stripes.
    pub const BASE_SIZE: usize = 4 * 8 + 3 * 4 + 2 + 2;

    /// Encoded size of this chunk.
    pub fn size(&self) -> usize {
        Self::BASE_SIZE + self.stripes.len() * Stripe::SIZE
    }

    /// The encoded bytes (owner: the extent tree; io_align and io_width: the stripe length).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = vec![0u8; self.size()];
        put_u64(&mut b, 0, self.length);
        put_u64(&mut b, 8, crate::format::consts::objectid::EXTENT_TREE);
        put_u64(&mut b, 16, self.stripe_len);
        put_u64(&mut b, 24, self.flags);
        put_u32(&mut b, 32, self.stripe_len as u32);
        put_u32(&mut b, 36, self.stripe_len as u32);
        put_u32(&mut b, 40, self.sector_size);
        put_u16(&mut b, 44, self.stripes.len() as u16);
        put_u16(&mut b, 46, self.sub_stripes);
        for (i, s) in self.stripes.iter().enumerate() {
            let o = Self::BASE_SIZE + i * Stripe::SIZE;
            put_u64(&mut b, o, s.devid);
            put_u64(&mut b, o + 8, s.offset);
            put_bytes(&mut b, o + 16, s.dev_uuid.as_bytes());
        }
        b
    }

    /// Reads the chunk item at `off`: the one decoder of chunk items, for images and for the
    /// kernel's tree-search results alike.
    pub fn decode(buf: &[u8], off: usize) -> Result<Self, BadChunk> {
        let n = usize::from(u16_at(buf, off + 44)?);
        if n == 0 {
            return Err(BadChunk::NoStripes);
        }
        let stripes = (0..n)
            .map(|i| {
                let o = off + Self::BASE_SIZE + i * Stripe::SIZE;
                Ok(Stripe {
                    devid: u64_at(buf, o)?,
                    offset: u64_at(buf, o + 8)?,
                    dev_uuid: uuid_at(buf, o + 16)?,
                })
            })
            .collect::<Result<Vec<_>, ShortRead>>()?;
        Ok(Chunk {
            length: u64_at(buf, off)?,
            stripe_len: u64_at(buf, off + 16)?,
            flags: u64_at(buf, off + 24)?,
            sector_size: u32_at(buf, off + 40)?,
            sub_stripes: u16_at(buf, off + 46)?,
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
        put_u64(&mut b, 0, crate::format::consts::objectid::CHUNK_TREE);
        put_u64(&mut b, 8, crate::format::consts::objectid::FIRST_CHUNK_TREE);
        put_u64(&mut b, 16, self.chunk_offset);
        put_u64(&mut b, 24, self.length);
        put_bytes(&mut b, 32, self.chunk_tree_uuid.as_bytes());
        b
    }

    /// Decodes the item, `None` if too short.
    pub fn decode(b: &[u8]) -> Option<Self> {
        Some(DevExtent {
            chunk_offset: u64_at(b, 16).ok()?,
            length: u64_at(b, 24).ok()?,
            chunk_tree_uuid: uuid_at(b, 32).ok()?,
        })
    }
}
const _: () = assert!(DevExtent::SIZE == size_of::<sys::btrfs_dev_extent>());
