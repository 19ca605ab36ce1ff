//! Item keys (17 bytes) and key pointers of interior nodes (33 bytes).

use crate::le::{put_u64, put_u8, u64_at, u8_at, ShortRead};

/// An item key: `(objectid, type, offset)`, ordered field by field as in every btrfs tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Key {
    /// Object id: inode number, tree id, logical address, device id...
    pub objectid: u64,
    /// Item type, one of [`super::consts::key`].
    pub item_type: u8,
    /// Type-specific offset.
    pub offset: u64,
}

impl Key {
    /// Encoded size: objectid (8) + type (1) + offset (8).
    pub const SIZE: usize = 8 + 1 + 8;

    /// A key from its three parts.
    pub const fn new(objectid: u64, item_type: u8, offset: u64) -> Self {
        Key {
            objectid,
            item_type,
            offset,
        }
    }

    /// Writes the key at `off`.
    pub fn encode(&self, buf: &mut [u8], off: usize) {
        put_u64(buf, off, self.objectid);
        put_u8(buf, off + 8, self.item_type);
        put_u64(buf, off + 9, self.offset);
    }

    /// Reads a key at `off`; an error when `buf` holds fewer than [`Key::SIZE`] bytes there.
    pub fn decode(buf: &[u8], off: usize) -> Result<Self, ShortRead> {
        Ok(Key {
            objectid: u64_at(buf, off)?,
            item_type: u8_at(buf, off + 8)?,
            offset: u64_at(buf, off + 9)?,
        })
    }
}
const _: () = assert!(Key::SIZE == 17);

/// One child pointer of an interior node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyPtr {
    /// The first key of the child.
    pub key: Key,
    /// Logical address of the child block.
    pub blockptr: u64,
    /// Generation the child was written in.
    pub generation: u64,
}

impl KeyPtr {
    /// Encoded size: key + blockptr + generation.
    pub const SIZE: usize = Key::SIZE + 8 + 8;

    /// Writes the pointer at `off`.
    pub fn encode(&self, buf: &mut [u8], off: usize) {
        self.key.encode(buf, off);
        put_u64(buf, off + Key::SIZE, self.blockptr);
        put_u64(buf, off + Key::SIZE + 8, self.generation);
    }

    /// Reads a pointer at `off`; an error when `buf` ends before it does.
    pub fn decode(buf: &[u8], off: usize) -> Result<Self, ShortRead> {
        Ok(KeyPtr {
            key: Key::decode(buf, off)?,
            blockptr: u64_at(buf, off + Key::SIZE)?,
            generation: u64_at(buf, off + Key::SIZE + 8)?,
        })
    }
}
const _: () = assert!(KeyPtr::SIZE == 33);
const _: () = assert!(Key::SIZE == core::mem::size_of::<btrfs_sys::btrfs_disk_key>());

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_like_btrfs_and_round_trips() {
        let a = Key::new(5, 1, 9);
        let b = Key::new(5, 2, 0);
        let c = Key::new(6, 0, 0);
        assert!(a < b && b < c);
        let mut buf = [0u8; KeyPtr::SIZE];
        let p = KeyPtr {
            key: a,
            blockptr: 1 << 20,
            generation: 7,
        };
        p.encode(&mut buf, 0);
        assert_eq!(KeyPtr::decode(&buf, 0), Ok(p));
        assert!(KeyPtr::decode(&buf, 1).is_err());
        assert_eq!(buf[8], 1);
    }
}
