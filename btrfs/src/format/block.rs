//! Tree blocks: the 101-byte header, 25-byte leaf items, and building and parsing whole blocks.
//!
//! A leaf is the header, then `nritems` items (key, data offset, data size) growing forward,
//! with item data packed from the end of the block backwards. Data offsets count from the end
//! of the header. An interior node (level > 0) holds key pointers after the header instead.

use super::consts::{HEADER_FLAG_WRITTEN, MIXED_BACKREF_REV};
use super::csum::CSUM_SIZE;
use super::key::{Key, KeyPtr};
use crate::info::ChecksumType;
use crate::le::{
    array_at, put_bytes, put_u32, put_u64, put_u8, u32_at, u64_at, u8_at, uuid_at, ShortRead,
};
use uuid::Uuid;

/// The header at the start of every tree block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Checksum of the rest of the block.
    pub csum: [u8; CSUM_SIZE],
    /// The filesystem's (metadata) uuid.
    pub fsid: Uuid,
    /// Logical address of this block.
    pub bytenr: u64,
    /// Flags, with the back reference revision in the top byte.
    pub flags: u64,
    /// The chunk tree's uuid.
    pub chunk_tree_uuid: Uuid,
    /// Transaction the block was written in.
    pub generation: u64,
    /// Id of the tree owning the block.
    pub owner: u64,
    /// Number of items (leaf) or key pointers (node).
    pub nritems: u32,
    /// 0 for a leaf.
    pub level: u8,
}

impl Header {
    /// Encoded size.
    pub const SIZE: usize = CSUM_SIZE + 16 + 8 + 8 + 16 + 8 + 8 + 4 + 1;
    /// Flags of a freshly written block.
    pub const NEW_BLOCK_FLAGS: u64 = HEADER_FLAG_WRITTEN | (MIXED_BACKREF_REV << 56);

    /// Writes the header at the start of `buf` (checksum included as it is in `self`).
    pub fn encode(&self, buf: &mut [u8]) {
        put_bytes(buf, 0, &self.csum);
        put_bytes(buf, 32, self.fsid.as_bytes());
        put_u64(buf, 48, self.bytenr);
        put_u64(buf, 56, self.flags);
        put_bytes(buf, 64, self.chunk_tree_uuid.as_bytes());
        put_u64(buf, 80, self.generation);
        put_u64(buf, 88, self.owner);
        put_u32(buf, 96, self.nritems);
        put_u8(buf, 100, self.level);
    }

    /// Reads the header at the start of `buf`; an error when `buf` is shorter than
    /// [`Header::SIZE`].
    pub fn decode(buf: &[u8]) -> Result<Self, ShortRead> {
        Ok(Header {
            csum: array_at(buf, 0)?,
            fsid: uuid_at(buf, 32)?,
            bytenr: u64_at(buf, 48)?,
            flags: u64_at(buf, 56)?,
            chunk_tree_uuid: uuid_at(buf, 64)?,
            generation: u64_at(buf, 80)?,
            owner: u64_at(buf, 88)?,
            nritems: u32_at(buf, 96)?,
            level: u8_at(buf, 100)?,
        })
    }
}
const _: () = assert!(Header::SIZE == 101);

/// A leaf item's descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Item {
    /// The item's key.
    pub key: Key,
    /// Offset of its data, from the end of the header.
    pub offset: u32,
    /// Size of its data.
    pub size: u32,
}

impl Item {
    /// Encoded size.
    pub const SIZE: usize = Key::SIZE + 4 + 4;

    /// Writes the item at `off`.
    pub fn encode(&self, buf: &mut [u8], off: usize) {
        self.key.encode(buf, off);
        put_u32(buf, off + Key::SIZE, self.offset);
        put_u32(buf, off + Key::SIZE + 4, self.size);
    }

    /// Reads an item at `off`; an error when `buf` ends before it does.
    pub fn decode(buf: &[u8], off: usize) -> Result<Self, ShortRead> {
        Ok(Item {
            key: Key::decode(buf, off)?,
            offset: u32_at(buf, off + Key::SIZE)?,
            size: u32_at(buf, off + Key::SIZE + 4)?,
        })
    }
}
const _: () = assert!(Item::SIZE == 25);

/// A leaf's items: keys with their data, in key order.
pub type LeafItems = Vec<(Key, Vec<u8>)>;

/// What identifies a block besides its items: where it lives and who owns it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockId {
    /// The filesystem's uuid.
    pub fsid: Uuid,
    /// The chunk tree's uuid.
    pub chunk_tree_uuid: Uuid,
    /// Logical address.
    pub bytenr: u64,
    /// Owning tree.
    pub owner: u64,
    /// Transaction id.
    pub generation: u64,
}

/// The items do not fit in one leaf of the given size.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("tree {owner}: {needed} bytes of items do not fit in a {nodesize}-byte leaf")]
pub struct LeafFull {
    /// The tree.
    pub owner: u64,
    /// Bytes the items need, header included.
    pub needed: usize,
    /// The leaf size.
    pub nodesize: usize,
}

/// Builds a checksummed leaf of `nodesize` bytes holding `items`, which are sorted here by key.
pub fn build_leaf(
    id: &BlockId,
    items: &mut [(Key, Vec<u8>)],
    nodesize: usize,
    csum: ChecksumType,
) -> Result<Vec<u8>, LeafFull> {
    items.sort_by_key(|(k, _)| *k);
    let needed = Header::SIZE
        + items
            .iter()
            .map(|(_, d)| Item::SIZE + d.len())
            .sum::<usize>();
    if needed > nodesize {
        return Err(LeafFull {
            owner: id.owner,
            needed,
            nodesize,
        });
    }
    let mut buf = vec![0u8; nodesize];
    let mut data_end = nodesize;
    for (i, (key, data)) in items.iter().enumerate() {
        data_end -= data.len();
        put_bytes(&mut buf, data_end, data);
        Item {
            key: *key,
            offset: (data_end - Header::SIZE) as u32,
            size: data.len() as u32,
        }
        .encode(&mut buf, Header::SIZE + i * Item::SIZE);
    }
    let header = Header {
        csum: [0; CSUM_SIZE],
        fsid: id.fsid,
        bytenr: id.bytenr,
        flags: Header::NEW_BLOCK_FLAGS,
        chunk_tree_uuid: id.chunk_tree_uuid,
        generation: id.generation,
        owner: id.owner,
        nritems: items.len() as u32,
        level: 0,
    };
    header.encode(&mut buf);
    seal(&mut buf, csum);
    Ok(buf)
}

/// Computes the checksum over `block[32..]` and stores it at the start.
pub fn seal(block: &mut [u8], csum: ChecksumType) {
    let sum = csum
        .checksum(&block[CSUM_SIZE..])
        .expect("known checksum type");
    block[..CSUM_SIZE].copy_from_slice(&sum);
}

/// Whether the stored checksum of `block` matches its contents.
pub fn checksum_ok(block: &[u8], csum: ChecksumType) -> bool {
    match csum.checksum(&block[CSUM_SIZE..]) {
        Some(sum) => block[..CSUM_SIZE] == sum,
        None => false,
    }
}

/// The contents of a parsed tree block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlockContents {
    /// A leaf: keys with their data.
    Leaf(LeafItems),
    /// An interior node: child pointers.
    Node(Vec<KeyPtr>),
}

/// A block whose layout is inconsistent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("corrupt tree block at {bytenr}: {detail}")]
pub struct BadBlock {
    /// Logical address.
    pub bytenr: u64,
    /// What is wrong.
    pub detail: String,
}

/// Parses a tree block, checking that every item lies inside it.
pub fn parse_block(block: &[u8]) -> Result<(Header, BlockContents), BadBlock> {
    let bad = |bytenr, detail: String| BadBlock { bytenr, detail };
    if block.len() < Header::SIZE {
        return Err(bad(0, format!("only {} bytes", block.len())));
    }
    let header = Header::decode(block).map_err(|e| bad(0, e.to_string()))?;
    let short = |e: ShortRead| bad(header.bytenr, e.to_string());
    let n = header.nritems as usize;
    if header.level > 0 {
        if Header::SIZE + n * KeyPtr::SIZE > block.len() {
            return Err(bad(header.bytenr, format!("{n} key pointers overflow")));
        }
        let ptrs = (0..n)
            .map(|i| KeyPtr::decode(block, Header::SIZE + i * KeyPtr::SIZE).map_err(short))
            .collect::<Result<_, _>>()?;
        return Ok((header, BlockContents::Node(ptrs)));
    }
    if Header::SIZE + n * Item::SIZE > block.len() {
        return Err(bad(header.bytenr, format!("{n} items overflow")));
    }
    let mut items = Vec::with_capacity(n);
    for i in 0..n {
        let item = Item::decode(block, Header::SIZE + i * Item::SIZE).map_err(short)?;
        let start = Header::SIZE + item.offset as usize;
        let end = start + item.size as usize;
        if end > block.len() || start < Header::SIZE + n * Item::SIZE {
            return Err(bad(
                header.bytenr,
                format!("item {i} data {start}..{end} out of place"),
            ));
        }
        items.push((item.key, block[start..end].to_vec()));
    }
    if items.windows(2).any(|w| w[0].0 >= w[1].0) {
        return Err(bad(header.bytenr, "keys not strictly ascending".into()));
    }
    Ok((header, BlockContents::Leaf(items)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaf_round_trip_and_layout() {
        let id = BlockId {
            fsid: Uuid::from_u128(1),
            chunk_tree_uuid: Uuid::from_u128(2),
            bytenr: 1 << 20,
            owner: 5,
            generation: 1,
        };
        let mut items = vec![
            (Key::new(2, 1, 0), vec![9u8; 24]),
            (Key::new(1, 1, 0), vec![7u8; 10]),
        ];
        let leaf = build_leaf(&id, &mut items, 4096, ChecksumType::Crc32c).unwrap();
        assert!(checksum_ok(&leaf, ChecksumType::Crc32c));
        let first = Item::decode(&leaf, Header::SIZE).unwrap();
        // The first item's data sits at the very end of the block.
        assert_eq!(first.offset as usize + 10 + Header::SIZE, 4096);
        let (h, c) = parse_block(&leaf).unwrap();
        assert_eq!((h.bytenr, h.owner, h.nritems, h.level), (1 << 20, 5, 2, 0));
        assert_eq!(h.flags, 1 | (1 << 56));
        assert_eq!(c, BlockContents::Leaf(items));
        let mut corrupt = leaf.clone();
        corrupt[200] ^= 1;
        assert!(!checksum_ok(&corrupt, ChecksumType::Crc32c));
    }

    #[test]
    fn rejects_overfull_leaf() {
        let id = BlockId {
            fsid: Uuid::nil(),
            chunk_tree_uuid: Uuid::nil(),
            bytenr: 0,
            owner: 1,
            generation: 1,
        };
        let mut items = vec![(Key::new(1, 1, 0), vec![0u8; 4000])];
        let err = build_leaf(&id, &mut items, 4096, ChecksumType::Crc32c).unwrap_err();
        assert_eq!(err.needed, 101 + 25 + 4000);
    }
}
