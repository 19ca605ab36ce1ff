//! Reading a single-device btrfs image back: superblock, chunk map and whole trees.
//!
//! Used by the formatter's self-check and tests. Every tree block read is checked for its
//! checksum, its own address, the filesystem's uuid, and (with several copies) that all copies
//! are identical.

use super::block::{checksum_ok, parse_block, BadBlock, BlockContents, Header, LeafItems};
use super::consts::{key, objectid, SUPER_OFFSET, SUPER_SIZE};
use super::items::{Chunk, RootItem};
use super::key::Key;
use super::superblock::{BadSuperblock, Superblock};
use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};

/// Why an image could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// Reading the device failed.
    #[error("reading the image: {0}")]
    Io(#[from] std::io::Error),
    /// The superblock is invalid.
    #[error("superblock: {0}")]
    Superblock(#[from] BadSuperblock),
    /// A tree block is malformed.
    #[error(transparent)]
    Block(#[from] BadBlock),
    /// Something is inconsistent.
    #[error("{0}")]
    Corrupt(String),
}

/// An opened image: its superblock and chunk map.
#[derive(Debug)]
pub struct Image<R> {
    dev: R,
    /// The primary superblock.
    pub sb: Superblock,
    /// Chunks by logical start: from the system chunk array, then the chunk tree.
    pub chunks: BTreeMap<u64, Chunk>,
}

fn corrupt(msg: impl Into<String>) -> ImageError {
    ImageError::Corrupt(msg.into())
}

/// Parses the superblock's system chunk array into (logical, chunk) pairs.
pub fn parse_sys_chunk_array(array: &[u8]) -> Result<Vec<(u64, Chunk)>, ImageError> {
    let mut out = Vec::new();
    let mut off = 0;
    while off < array.len() {
        let k = Key::decode(array, off)
            .map_err(|e| corrupt(format!("truncated key in sys_chunk_array: {e}")))?;
        if k.item_type != key::CHUNK_ITEM {
            return Err(corrupt(format!(
                "sys_chunk_array holds item type {}",
                k.item_type
            )));
        }
        off += Key::SIZE;
        let c = Chunk::decode(array, off)
            .map_err(|e| corrupt(format!("bad chunk in sys_chunk_array: {e}")))?;
        off += c.size();
        out.push((k.offset, c));
    }
    Ok(out)
}

impl<R: Read + Seek> Image<R> {
    /// Reads the primary superblock and the chunk tree.
    pub fn open(mut dev: R) -> Result<Self, ImageError> {
        let sb_bytes = read_at(&mut dev, SUPER_OFFSET, SUPER_SIZE)?;
        let sb = Superblock::decode(&sb_bytes)?;
        let chunks = parse_sys_chunk_array(&sb.sys_chunk_array)?
            .into_iter()
            .collect();
        let mut img = Image { dev, sb, chunks };
        let chunk_items = img.tree_at(img.sb.chunk_root)?;
        for (k, data) in chunk_items {
            if k.item_type == key::CHUNK_ITEM {
                let c = Chunk::decode(&data, 0)
                    .map_err(|e| corrupt(format!("bad chunk item at {}: {e}", k.offset)))?;
                img.chunks.insert(k.offset, c);
            }
        }
        Ok(img)
    }

    /// Reads `len` bytes at physical offset `off`.
    pub fn read_physical(&mut self, off: u64, len: usize) -> Result<Vec<u8>, ImageError> {
        read_at(&mut self.dev, off, len)
    }

    /// The physical offsets of every copy of the logical range starting at `logical`.
    pub fn map(&self, logical: u64) -> Result<Vec<u64>, ImageError> {
        let (start, chunk) = self
            .chunks
            .range(..=logical)
            .next_back()
            .filter(|(s, c)| logical < *s + c.length)
            .ok_or_else(|| corrupt(format!("logical {logical} is in no chunk")))?;
        Ok(chunk
            .stripes
            .iter()
            .map(|s| s.offset + (logical - start))
            .collect())
    }

    /// Reads and checks the tree block at `logical`.
    pub fn read_block(&mut self, logical: u64) -> Result<(Header, BlockContents), ImageError> {
        let n = self.sb.nodesize as usize;
        let mut first: Option<Vec<u8>> = None;
        for phys in self.map(logical)? {
            let b = self.read_physical(phys, n)?;
            match &first {
                None => first = Some(b),
                Some(f) if *f != b => {
                    return Err(corrupt(format!("copies of block {logical} differ")))
                }
                Some(_) => {}
            }
        }
        let b = first.ok_or_else(|| corrupt("chunk without stripes"))?;
        if !checksum_ok(&b, self.sb.csum_type) {
            return Err(corrupt(format!("checksum mismatch in block {logical}")));
        }
        let (h, c) = parse_block(&b)?;
        if h.bytenr != logical {
            return Err(corrupt(format!(
                "block at {logical} claims to be at {}",
                h.bytenr
            )));
        }
        if h.fsid != self.sb.fsid {
            return Err(corrupt(format!("block at {logical} has fsid {}", h.fsid)));
        }
        Ok((h, c))
    }

    /// Every item of the tree rooted at `logical`, in key order.
    pub fn tree_at(&mut self, logical: u64) -> Result<LeafItems, ImageError> {
        let mut out = Vec::new();
        self.walk(logical, &mut out, &mut |_| {})?;
        Ok(out)
    }

    /// Every item of the tree rooted at `logical`, calling `visit` with each block's header.
    pub fn walk(
        &mut self,
        logical: u64,
        out: &mut LeafItems,
        visit: &mut dyn FnMut(&Header),
    ) -> Result<(), ImageError> {
        let (h, c) = self.read_block(logical)?;
        visit(&h);
        match c {
            BlockContents::Leaf(items) => out.extend(items),
            BlockContents::Node(ptrs) => {
                for p in ptrs {
                    self.walk(p.blockptr, out, visit)?;
                }
            }
        }
        Ok(())
    }

    /// The root block address of tree `id`, from its root item in the root tree.
    pub fn root_of(&mut self, id: u64) -> Result<Option<u64>, ImageError> {
        if id == objectid::ROOT_TREE {
            return Ok(Some(self.sb.root));
        }
        if id == objectid::CHUNK_TREE {
            return Ok(Some(self.sb.chunk_root));
        }
        let root = self.tree_at(self.sb.root)?;
        Ok(root
            .iter()
            .find(|(k, _)| k.objectid == id && k.item_type == key::ROOT_ITEM)
            .and_then(|(_, d)| RootItem::decode_location(d))
            .map(|(bytenr, _)| bytenr))
    }

    /// Every item of tree `id`; `None` when the tree does not exist.
    pub fn tree(&mut self, id: u64) -> Result<Option<LeafItems>, ImageError> {
        match self.root_of(id)? {
            Some(at) => Ok(Some(self.tree_at(at)?)),
            None => Ok(None),
        }
    }
}

fn read_at<R: Read + Seek>(dev: &mut R, off: u64, len: usize) -> Result<Vec<u8>, ImageError> {
    dev.seek(SeekFrom::Start(off))?;
    let mut b = vec![0u8; len];
    dev.read_exact(&mut b)?;
    Ok(b)
}
