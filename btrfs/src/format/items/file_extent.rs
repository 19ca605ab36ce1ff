//! File extent items (`EXTENT_DATA`, key type 108, in a subvolume's tree): which bytes of a
//! file live where.
//!
//! The layout is `struct btrfs_file_extent_item` of `linux/btrfs_tree.h` (packed, 53 bytes),
//! which the committed bindings do not carry, so its offsets are restated here:
//!
//! | offset | field | |
//! |---:|---|---|
//! | 0 | `generation` u64 | transaction that created the extent |
//! | 8 | `ram_bytes` u64 | bytes of the extent uncompressed |
//! | 16 | `compression` u8 | 0 none, 1 zlib, 2 lzo, 3 zstd |
//! | 17 | `encryption` u8, `other_encoding` u16 | unused (0) |
//! | 20 | `type` u8 | 0 inline, 1 regular, 2 preallocated |
//! | 21 | `disk_bytenr` u64 | logical address of the disk extent; 0 = a hole |
//! | 29 | `disk_num_bytes` u64 | size of the whole disk extent (compressed size) |
//! | 37 | `offset` u64 | where in the (uncompressed) extent this file range starts |
//! | 45 | `num_bytes` u64 | bytes of the file this item covers |
//!
//! An inline extent stops after `type`: its data (compressed if `compression` says so)
//! follows at offset 21, and the item is `21 + data` bytes long.

use crate::le::{u64_at, u8_at, ShortRead};

/// Size of a regular or preallocated file extent item.
pub const FILE_EXTENT_ITEM_SIZE: usize = 53;
/// Where an inline extent's data starts (the fields before `disk_bytenr`).
pub const FILE_EXTENT_INLINE_HEADER: usize = 21;

/// A file extent's compression (`btrfs_file_extent_item::compression`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Compression {
    /// Stored as written.
    None,
    /// zlib.
    Zlib,
    /// LZO.
    Lzo,
    /// zstd.
    Zstd,
    /// A value this crate does not know.
    Other(u8),
}

impl From<u8> for Compression {
    fn from(v: u8) -> Self {
        match v {
            0 => Compression::None,
            1 => Compression::Zlib,
            2 => Compression::Lzo,
            3 => Compression::Zstd,
            v => Compression::Other(v),
        }
    }
}

/// Where a regular or preallocated file extent's bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskRef {
    /// Logical address of the disk extent (never 0: a hole is [`FileExtentKind::Hole`]).
    pub disk_bytenr: u64,
    /// Size of the whole disk extent, however little of it this item uses (the compressed
    /// size for a compressed extent); logical bytes, once whatever the profile's copies.
    pub disk_num_bytes: u64,
    /// Offset into the uncompressed extent where this item's range starts.
    pub offset: u64,
    /// Bytes of the file this item covers.
    pub num_bytes: u64,
}

/// What a file extent item describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileExtentKind {
    /// Data stored in the item itself, in the tree's leaf.
    Inline {
        /// Bytes of data in the item (compressed if the item is).
        data_len: u64,
    },
    /// A data extent written to disk.
    Regular(DiskRef),
    /// A preallocated (fallocate) extent: reserved on disk, reads as zeros.
    Prealloc(DiskRef),
    /// A hole (`disk_bytenr` 0) of `num_bytes` bytes: no disk extent.
    Hole {
        /// Bytes of the file the hole covers.
        num_bytes: u64,
    },
}

/// A decoded `EXTENT_DATA` item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileExtentItem {
    /// The transaction that created the extent.
    pub generation: u64,
    /// Bytes of the extent uncompressed (for inline data: the file bytes it holds).
    pub ram_bytes: u64,
    /// The compression of the extent's data.
    pub compression: Compression,
    /// Inline, regular, preallocated or a hole.
    pub kind: FileExtentKind,
}

/// The item type byte is neither inline (0), regular (1) nor preallocated (2), or the item is
/// shorter than its type needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BadFileExtent {
    /// Too short for its fields.
    #[error("file extent item too short: {0}")]
    Short(ShortRead),
    /// An extent type this crate does not know.
    #[error("unknown file extent type {0}")]
    UnknownType(u8),
}

impl From<ShortRead> for BadFileExtent {
    fn from(e: ShortRead) -> Self {
        BadFileExtent::Short(e)
    }
}

impl FileExtentItem {
    /// Decodes an `EXTENT_DATA` item's bytes.
    pub fn decode(b: &[u8]) -> Result<Self, BadFileExtent> {
        let generation = u64_at(b, 0)?;
        let ram_bytes = u64_at(b, 8)?;
        let compression = Compression::from(u8_at(b, 16)?);
        let kind = match u8_at(b, 20)? {
            0 => FileExtentKind::Inline {
                data_len: (b.len() - FILE_EXTENT_INLINE_HEADER) as u64,
            },
            t @ (1 | 2) => {
                let disk = DiskRef {
                    disk_bytenr: u64_at(b, 21)?,
                    disk_num_bytes: u64_at(b, 29)?,
                    offset: u64_at(b, 37)?,
                    num_bytes: u64_at(b, 45)?,
                };
                if disk.disk_bytenr == 0 {
                    FileExtentKind::Hole {
                        num_bytes: disk.num_bytes,
                    }
                } else if t == 1 {
                    FileExtentKind::Regular(disk)
                } else {
                    FileExtentKind::Prealloc(disk)
                }
            }
            t => return Err(BadFileExtent::UnknownType(t)),
        };
        Ok(FileExtentItem {
            generation,
            ram_bytes,
            compression,
            kind,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(kind: u8, disk: [u64; 4], compression: u8) -> Vec<u8> {
        let mut b = vec![0u8; FILE_EXTENT_ITEM_SIZE];
        b[0..8].copy_from_slice(&7u64.to_le_bytes());
        b[8..16].copy_from_slice(&131072u64.to_le_bytes());
        b[16] = compression;
        b[20] = kind;
        for (i, v) in disk.iter().enumerate() {
            b[21 + 8 * i..29 + 8 * i].copy_from_slice(&v.to_le_bytes());
        }
        b
    }

    #[test]
    fn decodes_each_kind_and_refuses_short_or_unknown_items() {
        let reg = FileExtentItem::decode(&item(1, [1 << 20, 16384, 4096, 8192], 3)).unwrap();
        assert_eq!(reg.generation, 7);
        assert_eq!(reg.ram_bytes, 131072);
        assert_eq!(reg.compression, Compression::Zstd);
        assert_eq!(
            reg.kind,
            FileExtentKind::Regular(DiskRef {
                disk_bytenr: 1 << 20,
                disk_num_bytes: 16384,
                offset: 4096,
                num_bytes: 8192
            })
        );
        let pre = FileExtentItem::decode(&item(2, [2 << 20, 4096, 0, 4096], 0)).unwrap();
        assert!(matches!(pre.kind, FileExtentKind::Prealloc(d) if d.disk_bytenr == 2 << 20));
        let hole = FileExtentItem::decode(&item(1, [0, 0, 0, 65536], 0)).unwrap();
        assert_eq!(hole.kind, FileExtentKind::Hole { num_bytes: 65536 });
        let mut inline = item(0, [0; 4], 0);
        inline.truncate(FILE_EXTENT_INLINE_HEADER + 10);
        let inl = FileExtentItem::decode(&inline).unwrap();
        assert_eq!(inl.kind, FileExtentKind::Inline { data_len: 10 });
        assert!(matches!(
            FileExtentItem::decode(&item(1, [1, 2, 3, 4], 0)[..40]),
            Err(BadFileExtent::Short(_))
        ));
        assert_eq!(
            FileExtentItem::decode(&item(9, [1, 2, 3, 4], 0)),
            Err(BadFileExtent::UnknownType(9))
        );
        assert_eq!(Compression::from(77), Compression::Other(77));
    }
}
