//! Item payloads: inode, root, device, chunk, device extent, block group, extent, free space,
//! inode reference, directory entry and file extent. Each has a fixed encoded size checked at compile time
//! against the uapi header's struct where it has one.

mod extent;
mod file_extent;
mod inode;
mod root;
mod volume;

pub use extent::{
    free_space_info, free_space_info_count, tree_block_extent, BlockGroupItem, EXTENT_ITEM_SIZE,
    INLINE_REF_SIZE, TREE_BLOCK_INFO_SIZE,
};
pub use file_extent::{
    BadFileExtent, Compression, DiskRef, FileExtentItem, FileExtentKind, FILE_EXTENT_INLINE_HEADER,
    FILE_EXTENT_ITEM_SIZE,
};
pub use inode::{dir_item, inode_ref, InodeItem, Timespec};
pub use root::RootItem;
pub use volume::{BadChunk, Chunk, DevExtent, DevItem, Stripe};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::consts::key;
    use crate::format::key::Key;
    use crate::le::{u32_at, u64_at};
    use uuid::Uuid;

    #[test]
    fn chunk_round_trip() {
        let c = Chunk {
            length: 8 << 20,
            stripe_len: 65536,
            flags: 2 | 32,
            sector_size: 4096,
            sub_stripes: 1,
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
        assert_eq!(Chunk::decode(&b, 0), Ok(c));
        assert!(matches!(
            Chunk::decode(&b[..100], 0),
            Err(BadChunk::Short(_))
        ));
        let mut none = b.clone();
        none[44..46].copy_from_slice(&0u16.to_le_bytes());
        assert_eq!(Chunk::decode(&none, 0), Err(BadChunk::NoStripes));
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
        assert_eq!(DevItem::decode(&d.to_bytes(), 0), Ok(d));
        assert!(DevItem::decode(&d.to_bytes()[..97], 0).is_err());
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
        assert_eq!(u64_at(&b, 239), Ok(1));
        assert_eq!(u32_at(&b, 216), Ok(1));
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
