//! Numbers of the on-disk format: item types, tree ids, flags, feature bits and fixed offsets.
//!
//! `linux/btrfs_tree.h` defines most of these too (a test checks they agree with `btrfs-sys`);
//! they are restated here with the types the encoders use.

/// `_BHRfS_M`, the superblock magic, little-endian.
pub const SUPER_MAGIC: u64 = u64::from_le_bytes(*b"_BHRfS_M");
/// Offset of the primary superblock.
pub const SUPER_OFFSET: u64 = 64 * 1024;
/// Size of a superblock.
pub const SUPER_SIZE: usize = 4096;
/// Bytes at the start of a device that btrfs never allocates.
pub const RESERVED_START: u64 = 1024 * 1024;
/// Stripe length of every chunk.
pub const STRIPE_LEN: u64 = 64 * 1024;

/// Offset of superblock copy `mirror` (0 = primary at 64 KiB, 1 at 64 MiB, 2 at 256 GiB).
pub const fn super_mirror_offset(mirror: u32) -> u64 {
    if mirror == 0 {
        SUPER_OFFSET
    } else {
        (16 * 1024) << (12 * mirror)
    }
}
/// Number of superblock copies a large enough device holds.
pub const SUPER_MIRRORS: u32 = 3;

/// Item key types.
pub mod key {
    /// An inode.
    pub const INODE_ITEM: u8 = 1;
    /// An inode's name in its parent directory.
    pub const INODE_REF: u8 = 12;
    /// A directory entry, keyed by name hash.
    pub const DIR_ITEM: u8 = 84;
    /// A directory entry, keyed by index.
    pub const DIR_INDEX: u8 = 96;
    /// A tree's root item, in the root tree.
    pub const ROOT_ITEM: u8 = 132;
    /// An extent (data, or tree block without skinny metadata).
    pub const EXTENT_ITEM: u8 = 168;
    /// A tree block extent with skinny metadata.
    pub const METADATA_ITEM: u8 = 169;
    /// Inline back reference from a tree block to its tree.
    pub const TREE_BLOCK_REF: u8 = 176;
    /// A block group.
    pub const BLOCK_GROUP_ITEM: u8 = 192;
    /// Free-space tree: per-block-group header.
    pub const FREE_SPACE_INFO: u8 = 198;
    /// Free-space tree: one free extent.
    pub const FREE_SPACE_EXTENT: u8 = 199;
    /// Free-space tree: a bitmap.
    pub const FREE_SPACE_BITMAP: u8 = 200;
    /// A device extent: one stripe of a chunk.
    pub const DEV_EXTENT: u8 = 204;
    /// A device.
    pub const DEV_ITEM: u8 = 216;
    /// A chunk: logical to physical mapping.
    pub const CHUNK_ITEM: u8 = 228;
    /// UUID tree: a subvolume's uuid.
    pub const UUID_KEY_SUBVOL: u8 = 251;
}

/// Tree ids and well-known object ids.
pub mod objectid {
    /// The root tree.
    pub const ROOT_TREE: u64 = 1;
    /// The extent tree.
    pub const EXTENT_TREE: u64 = 2;
    /// The chunk tree.
    pub const CHUNK_TREE: u64 = 3;
    /// The device tree.
    pub const DEV_TREE: u64 = 4;
    /// The default subvolume (top-level fs tree).
    pub const FS_TREE: u64 = 5;
    /// The root tree's directory (holds the `default` entry).
    pub const ROOT_TREE_DIR: u64 = 6;
    /// The checksum tree.
    pub const CSUM_TREE: u64 = 7;
    /// The UUID tree.
    pub const UUID_TREE: u64 = 9;
    /// The free-space tree.
    pub const FREE_SPACE_TREE: u64 = 10;
    /// The data relocation tree (-9).
    pub const DATA_RELOC_TREE: u64 = -9i64 as u64;
    /// Object id of the device items in the chunk tree.
    pub const DEV_ITEMS: u64 = 1;
    /// Object id of chunk items, and the chunk_objectid of block groups and dev extents.
    pub const FIRST_CHUNK_TREE: u64 = 256;
    /// The first free object id: the root directory's inode number.
    pub const FIRST_FREE: u64 = 256;
}

/// Block group and chunk type flags.
pub mod bg {
    /// Data.
    pub const DATA: u64 = 1;
    /// System (holds the chunk tree).
    pub const SYSTEM: u64 = 2;
    /// Metadata.
    pub const METADATA: u64 = 4;
    /// Two copies on one device.
    pub const DUP: u64 = 32;
}

/// Tree block header flag: the block was written.
pub const HEADER_FLAG_WRITTEN: u64 = 1;
/// Back reference revision of new blocks (mixed back references), in the top byte of flags.
pub const MIXED_BACKREF_REV: u64 = 1;
/// Extent item flag: the extent is a tree block.
pub const EXTENT_FLAG_TREE_BLOCK: u64 = 2;
/// Directory entry type of a directory.
pub const FT_DIR: u8 = 2;

/// Incompatible feature bits.
pub mod incompat {
    /// Mixed back references (always set).
    pub const MIXED_BACKREF: u64 = 1 << 0;
    /// Tree blocks larger than a page.
    pub const BIG_METADATA: u64 = 1 << 5;
    /// Extended inode references (many hard links).
    pub const EXTENDED_IREF: u64 = 1 << 6;
    /// Skinny metadata extent items.
    pub const SKINNY_METADATA: u64 = 1 << 8;
    /// No explicit hole extents.
    pub const NO_HOLES: u64 = 1 << 9;
}

/// Read-only-compatible feature bits.
pub mod compat_ro {
    /// The free-space tree exists.
    pub const FREE_SPACE_TREE: u64 = 1 << 0;
    /// The free-space tree is valid.
    pub const FREE_SPACE_TREE_VALID: u64 = 1 << 1;
}

#[cfg(test)]
mod tests {
    use super::*;
    use btrfs_sys as sys;

    #[test]
    fn agree_with_the_uapi_header() {
        assert_eq!(key::INODE_ITEM as u32, sys::BTRFS_INODE_ITEM_KEY);
        assert_eq!(key::INODE_REF as u32, sys::BTRFS_INODE_REF_KEY);
        assert_eq!(key::DIR_ITEM as u32, sys::BTRFS_DIR_ITEM_KEY);
        assert_eq!(key::ROOT_ITEM as u32, sys::BTRFS_ROOT_ITEM_KEY);
        assert_eq!(key::EXTENT_ITEM as u32, sys::BTRFS_EXTENT_ITEM_KEY);
        assert_eq!(key::METADATA_ITEM as u32, sys::BTRFS_METADATA_ITEM_KEY);
        assert_eq!(key::TREE_BLOCK_REF as u32, sys::BTRFS_TREE_BLOCK_REF_KEY);
        assert_eq!(
            key::BLOCK_GROUP_ITEM as u32,
            sys::BTRFS_BLOCK_GROUP_ITEM_KEY
        );
        assert_eq!(key::FREE_SPACE_INFO as u32, sys::BTRFS_FREE_SPACE_INFO_KEY);
        assert_eq!(
            key::FREE_SPACE_EXTENT as u32,
            sys::BTRFS_FREE_SPACE_EXTENT_KEY
        );
        assert_eq!(key::DEV_EXTENT as u32, sys::BTRFS_DEV_EXTENT_KEY);
        assert_eq!(key::DEV_ITEM as u32, sys::BTRFS_DEV_ITEM_KEY);
        assert_eq!(key::CHUNK_ITEM as u32, sys::BTRFS_CHUNK_ITEM_KEY);
        assert_eq!(key::UUID_KEY_SUBVOL as u32, sys::BTRFS_UUID_KEY_SUBVOL);
        assert_eq!(
            objectid::DATA_RELOC_TREE,
            sys::BTRFS_DATA_RELOC_TREE_OBJECTID as i64 as u64
        );
        assert_eq!(
            objectid::FREE_SPACE_TREE,
            sys::BTRFS_FREE_SPACE_TREE_OBJECTID as u64
        );
        assert_eq!(objectid::UUID_TREE, sys::BTRFS_UUID_TREE_OBJECTID as u64);
        assert_eq!(bg::DUP, sys::BTRFS_BLOCK_GROUP_DUP as u64);
        assert_eq!(FT_DIR as u32, sys::BTRFS_FT_DIR);
        assert_eq!(
            incompat::NO_HOLES,
            sys::BTRFS_FEATURE_INCOMPAT_NO_HOLES as u64
        );
        assert_eq!(
            compat_ro::FREE_SPACE_TREE_VALID,
            sys::BTRFS_FEATURE_COMPAT_RO_FREE_SPACE_TREE_VALID as u64
        );
    }

    #[test]
    fn mirror_offsets() {
        assert_eq!(super_mirror_offset(0), 64 << 10);
        assert_eq!(super_mirror_offset(1), 64 << 20);
        assert_eq!(super_mirror_offset(2), 256 << 30);
    }
}
