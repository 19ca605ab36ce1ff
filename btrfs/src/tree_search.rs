//! A safe iterator over `BTRFS_IOC_TREE_SEARCH` (v1) results.
//!
//! The kernel packs `btrfs_ioctl_search_header` + item data back to back in a 3992-byte buffer,
//! so headers can be misaligned: they are decoded from bytes, never by reference. When the
//! buffer fills, the search continues from the key after the last item returned.

use crate::error::Result;
use crate::fs::Filesystem;
use crate::ioctl;
use btrfs_sys as sys;
use std::collections::VecDeque;

/// A tree search range. The kernel matches the compound key (objectid, type, offset) between
/// `min` and `max`; this iterator additionally drops items outside each field's own range, so
/// `types` and `offsets` mean what they say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SearchRange {
    /// The tree to search (e.g. 1 root tree, 3 chunk tree; 0 the tree of the opened subvolume).
    pub tree_id: u64,
    /// Object ids, inclusive.
    pub objectids: (u64, u64),
    /// Item types, inclusive.
    pub types: (u8, u8),
    /// Offsets, inclusive.
    pub offsets: (u64, u64),
    /// Transaction ids, inclusive.
    pub transids: (u64, u64),
}

impl SearchRange {
    /// Every item of `tree_id`.
    pub fn whole_tree(tree_id: u64) -> Self {
        SearchRange {
            tree_id,
            objectids: (0, u64::MAX),
            types: (0, u8::MAX),
            offsets: (0, u64::MAX),
            transids: (0, u64::MAX),
        }
    }

    /// Items of one type in `tree_id` with object ids in `objectids`, any offset.
    pub fn items(tree_id: u64, objectids: (u64, u64), item_type: u8) -> Self {
        SearchRange {
            objectids,
            types: (item_type, item_type),
            ..Self::whole_tree(tree_id)
        }
    }

    fn contains(&self, item: &TreeItem) -> bool {
        fn within<T: PartialOrd>(v: T, (lo, hi): (T, T)) -> bool {
            lo <= v && v <= hi
        }
        within(item.objectid, self.objectids)
            && within(item.item_type, self.types)
            && within(item.offset, self.offsets)
    }
}

/// One item found by a tree search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeItem {
    /// The transaction id that last changed the item's leaf.
    pub transid: u64,
    /// Key: object id.
    pub objectid: u64,
    /// Key: item type.
    pub item_type: u8,
    /// Key: offset.
    pub offset: u64,
    /// The item's bytes, little-endian on-disk format.
    pub data: Vec<u8>,
}

/// Iterator over the items of a [`SearchRange`], in key order. Each call to the kernel returns
/// up to a buffer's worth; the iterator continues until the range is exhausted.
pub struct TreeSearch<'a> {
    fs: &'a Filesystem,
    range: SearchRange,
    next_min: Option<(u64, u8, u64)>,
    pending: VecDeque<TreeItem>,
}

const HEADER_LEN: usize = std::mem::size_of::<sys::btrfs_ioctl_search_header>();

impl<'a> TreeSearch<'a> {
    /// A search over `range` on `fs`. Needs CAP_SYS_ADMIN: without it the first item is an
    /// [`Error::PermissionDenied`](crate::Error::PermissionDenied).
    pub fn new(fs: &'a Filesystem, range: SearchRange) -> Self {
        let start = (range.objectids.0, range.types.0, range.offsets.0);
        TreeSearch {
            fs,
            range,
            next_min: Some(start),
            pending: VecDeque::new(),
        }
    }

    /// Asks the kernel for the next buffer of items; returns false when the range is done.
    fn fill(&mut self) -> Result<bool> {
        let Some((objectid, item_type, offset)) = self.next_min else {
            return Ok(false);
        };
        let r = &self.range;
        let mut args = sys::btrfs_ioctl_search_args {
            key: sys::btrfs_ioctl_search_key {
                tree_id: r.tree_id,
                min_objectid: objectid,
                max_objectid: r.objectids.1,
                min_offset: offset,
                max_offset: r.offsets.1,
                min_transid: r.transids.0,
                max_transid: r.transids.1,
                min_type: item_type.into(),
                max_type: r.types.1.into(),
                nr_items: u32::MAX,
                ..Default::default()
            },
            ..Default::default()
        };
        ioctl::tree_search(self.fs.fd(), &mut args).map_err(|e| self.fs.err("tree search", e))?;
        let count = args.key.nr_items as usize;
        if count == 0 {
            self.next_min = None;
            return Ok(false);
        }
        let buf: &[u8] = bytemuck::cast_slice(&args.buf[..]);
        let mut pos = 0;
        let mut last = None;
        for _ in 0..count {
            let Some(header) = buf.get(pos..pos + HEADER_LEN) else {
                break;
            };
            let u64_at = |o: usize| u64::from_ne_bytes(header[o..o + 8].try_into().unwrap());
            let u32_at = |o: usize| u32::from_ne_bytes(header[o..o + 4].try_into().unwrap());
            let (transid, objectid, offset) = (u64_at(0), u64_at(8), u64_at(16));
            let (item_type, len) = (u32_at(24) as u8, u32_at(28) as usize);
            pos += HEADER_LEN;
            let Some(data) = buf.get(pos..pos + len) else {
                break;
            };
            pos += len;
            last = Some((objectid, item_type, offset));
            let item = TreeItem {
                transid,
                objectid,
                item_type,
                offset,
                data: data.to_vec(),
            };
            if self.range.contains(&item) {
                self.pending.push_back(item);
            }
        }
        self.next_min = last.and_then(|key| next_key(key, (r.objectids.1, r.types.1, r.offsets.1)));
        Ok(true)
    }
}

/// The smallest key after `key`, if it is not beyond `max`.
fn next_key(
    (objectid, item_type, offset): (u64, u8, u64),
    max: (u64, u8, u64),
) -> Option<(u64, u8, u64)> {
    let next = if offset < u64::MAX {
        (objectid, item_type, offset + 1)
    } else if item_type < u8::MAX {
        (objectid, item_type + 1, 0)
    } else if objectid < u64::MAX {
        (objectid + 1, 0, 0)
    } else {
        return None;
    };
    (next <= max).then_some(next)
}

impl Iterator for TreeSearch<'_> {
    type Item = Result<TreeItem>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                return Some(Ok(item));
            }
            match self.fill() {
                Ok(true) => continue,
                Ok(false) => return None,
                Err(e) => {
                    self.next_min = None;
                    return Some(Err(e));
                }
            }
        }
    }
}

impl Filesystem {
    /// Iterates the items of `range` (privileged: CAP_SYS_ADMIN).
    pub fn tree_search(&self, range: SearchRange) -> TreeSearch<'_> {
        TreeSearch::new(self, range)
    }
}

/// Little-endian readers for on-disk item bytes.
pub(crate) mod le {
    /// The u64 at `off`, or 0 past the end.
    pub fn u64_at(b: &[u8], off: usize) -> u64 {
        b.get(off..off + 8)
            .map_or(0, |s| u64::from_le_bytes(s.try_into().unwrap()))
    }
    /// The u16 at `off`, or 0 past the end.
    pub fn u16_at(b: &[u8], off: usize) -> u16 {
        b.get(off..off + 2)
            .map_or(0, |s| u16::from_le_bytes(s.try_into().unwrap()))
    }
}

#[cfg(test)]
mod tests {
    use super::next_key;

    #[test]
    fn next_key_carries_and_stops_at_max() {
        let max = (u64::MAX, u8::MAX, u64::MAX);
        assert_eq!(next_key((5, 1, 7), max), Some((5, 1, 8)));
        assert_eq!(next_key((5, 1, u64::MAX), max), Some((5, 2, 0)));
        assert_eq!(next_key((5, u8::MAX, u64::MAX), max), Some((6, 0, 0)));
        assert_eq!(next_key(max, max), None);
        assert_eq!(next_key((5, 1, 7), (5, 1, 7)), None);
    }
}
