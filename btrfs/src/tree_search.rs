//! A safe iterator over `BTRFS_IOC_TREE_SEARCH` (v1) results.
//!
//! The kernel packs `btrfs_ioctl_search_header` + item data back to back in a 3992-byte buffer,
//! so headers can be misaligned: they are decoded from bytes, never by reference. When the
//! buffer fills, the search continues from the key after the last item returned.

use crate::error::Result;
use crate::fs::Filesystem;
use crate::ioctl;
use crate::le;
use btrfs_sys as sys;
use std::collections::VecDeque;
use std::mem::offset_of;

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
    /// The ioctl's arguments for the part of this range from key `min` on (as many items as
    /// the buffer holds).
    fn args_from(&self, min: (u64, u8, u64)) -> sys::btrfs_ioctl_search_args {
        let (objectid, item_type, offset) = min;
        sys::btrfs_ioctl_search_args {
            key: sys::btrfs_ioctl_search_key {
                tree_id: self.tree_id,
                min_objectid: objectid,
                max_objectid: self.objectids.1,
                min_offset: offset,
                max_offset: self.offsets.1,
                min_transid: self.transids.0,
                max_transid: self.transids.1,
                min_type: item_type.into(),
                max_type: self.types.1.into(),
                nr_items: u32::MAX,
                ..Default::default()
            },
            ..Default::default()
        }
    }

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
    /// The largest item the range can hold, when known: see [`TreeSearch::items_at_most`].
    max_item: Option<usize>,
    pending: VecDeque<TreeItem>,
}

type Header = sys::btrfs_ioctl_search_header;
const HEADER_LEN: usize = std::mem::size_of::<Header>();

/// Decodes the `count` items the kernel packed into `buf` (header, then data, back to back);
/// an error for a buffer that ends inside an item, which the kernel never writes.
fn unpack(buf: &[u8], count: usize) -> Result<Vec<TreeItem>, le::ShortRead> {
    let mut items = Vec::with_capacity(count);
    let mut pos = 0;
    for _ in 0..count {
        let header = le::bytes_at(buf, pos, HEADER_LEN)?;
        let len = le::ne_u32_at(header, offset_of!(Header, len))? as usize;
        items.push(TreeItem {
            transid: le::ne_u64_at(header, offset_of!(Header, transid))?,
            objectid: le::ne_u64_at(header, offset_of!(Header, objectid))?,
            // Item types are 8 bits on disk; the header widens them to 32.
            item_type: le::ne_u32_at(header, offset_of!(Header, type_))? as u8,
            offset: le::ne_u64_at(header, offset_of!(Header, offset))?,
            data: le::bytes_at(buf, pos + HEADER_LEN, len)?.to_vec(),
        });
        pos += HEADER_LEN + len;
    }
    Ok(items)
}

/// Whether a `buf_len`-byte buffer holding `items` shows that the kernel stopped at the end of
/// the range: there is room left for one more item of the announced `max_item` size (and no
/// item broke that announcement).
fn range_exhausted(items: &[TreeItem], buf_len: usize, max_item: Option<usize>) -> bool {
    let Some(max) = max_item else {
        return false;
    };
    let used: usize = items.iter().map(|i| HEADER_LEN + i.data.len()).sum();
    let biggest = items.iter().map(|i| i.data.len()).max().unwrap_or(0);
    biggest <= max && buf_len.saturating_sub(used) >= HEADER_LEN + max
}

impl<'a> TreeSearch<'a> {
    /// A search over `range` on `fs`. Needs CAP_SYS_ADMIN: without it the first item is an
    /// [`ErrorKind::PermissionDenied`](crate::ErrorKind::PermissionDenied).
    pub fn new(fs: &'a Filesystem, range: SearchRange) -> Self {
        let start = (range.objectids.0, range.types.0, range.offsets.0);
        TreeSearch {
            fs,
            range,
            next_min: Some(start),
            max_item: None,
            pending: VecDeque::new(),
        }
    }

    /// Tells the search that no item of its range exceeds `max_item` bytes. When the kernel
    /// then returns a buffer with room left for one more such item, it stopped at the range's
    /// end, not for lack of room, and the (empty) follow-up search is skipped. A bigger item
    /// than announced turns the shortcut off for that buffer.
    pub(crate) fn items_at_most(mut self, max_item: usize) -> Self {
        self.max_item = Some(max_item);
        self
    }

    /// The next item without consuming it.
    pub(crate) fn peek(&mut self) -> Result<Option<&TreeItem>> {
        while self.pending.is_empty() {
            match self.fill() {
                Ok(true) => {}
                Ok(false) => return Ok(None),
                Err(e) => {
                    self.next_min = None;
                    return Err(e);
                }
            }
        }
        Ok(self.pending.front())
    }

    /// Asks the kernel for the next buffer of items; returns false when the range is done.
    fn fill(&mut self) -> Result<bool> {
        let Some((objectid, item_type, offset)) = self.next_min else {
            return Ok(false);
        };
        let r = &self.range;
        let mut args = r.args_from((objectid, item_type, offset));
        ioctl::tree_search(self.fs.fd(), &mut args).map_err(|e| self.fs.err("tree search", e))?;
        let count = args.key.nr_items as usize;
        if count == 0 {
            self.next_min = None;
            return Ok(false);
        }
        let buf: &[u8] = bytemuck::cast_slice(&args.buf[..]);
        let items = unpack(buf, count).map_err(|e| {
            let detail = format!(
                "tree {}: {count} items do not fit the buffer: {e}",
                r.tree_id
            );
            self.fs.decode_err("tree search", detail)
        })?;
        let last = items.last().map(|i| (i.objectid, i.item_type, i.offset));
        let exhausted = range_exhausted(&items, buf.len(), self.max_item);
        self.pending
            .extend(items.into_iter().filter(|item| self.range.contains(item)));
        self.next_min = last
            .filter(|_| !exhausted)
            .and_then(|key| next_key(key, (r.objectids.1, r.types.1, r.offsets.1)));
        Ok(true)
    }
}

/// One item of a [`visit`] buffer, borrowed from it.
pub(crate) struct ItemRef<'b> {
    /// Key: object id.
    pub(crate) objectid: u64,
    /// Key: item type.
    pub(crate) item_type: u8,
    /// Key: offset.
    pub(crate) offset: u64,
    /// The item's bytes.
    pub(crate) data: &'b [u8],
}

/// The result buffer of [`visit`]'s TREE_SEARCH_V2 calls: about four 16 KiB leaves' worth of items per
/// call, where v1's 3992 bytes hold a quarter of one leaf (see BENCHMARKS.md).
const VISIT_BUFFER: usize = 64 * 1024;

/// Calls `f` with every item of `range` in key order, straight from the kernel's buffer (no
/// copy per item; TREE_SEARCH_V2 with a large buffer): for walks over whole trees where most
/// items are dropped.
pub(crate) fn visit(
    fs: &Filesystem,
    range: SearchRange,
    mut f: impl FnMut(&ItemRef<'_>) -> Result<()>,
) -> Result<()> {
    let r = range;
    let mut args = ioctl::SearchV2Args::new(VISIT_BUFFER);
    let mut next_min = Some((r.objectids.0, r.types.0, r.offsets.0));
    while let Some((objectid, item_type, offset)) = next_min {
        args.set_key(r.args_from((objectid, item_type, offset)).key);
        ioctl::tree_search_v2(fs.fd(), &mut args).map_err(|e| fs.err("tree search", e))?;
        let count = args.nr_items() as usize;
        if count == 0 {
            return Ok(());
        }
        let buf = args.buf();
        let short = |e: le::ShortRead| {
            fs.decode_err(
                "tree search",
                format!(
                    "tree {}: {count} items do not fit the buffer: {e}",
                    r.tree_id
                ),
            )
        };
        let mut pos = 0;
        let mut last = (objectid, item_type, offset);
        for _ in 0..count {
            let header = le::bytes_at(buf, pos, HEADER_LEN).map_err(short)?;
            let len = le::ne_u32_at(header, offset_of!(Header, len)).map_err(short)? as usize;
            let item = ItemRef {
                objectid: le::ne_u64_at(header, offset_of!(Header, objectid)).map_err(short)?,
                item_type: le::ne_u32_at(header, offset_of!(Header, type_)).map_err(short)? as u8,
                offset: le::ne_u64_at(header, offset_of!(Header, offset)).map_err(short)?,
                data: le::bytes_at(buf, pos + HEADER_LEN, len).map_err(short)?,
            };
            pos += HEADER_LEN + len;
            last = (item.objectid, item.item_type, item.offset);
            let within = |v: u64, (lo, hi): (u64, u64)| lo <= v && v <= hi;
            if within(item.objectid, r.objectids)
                && (r.types.0..=r.types.1).contains(&item.item_type)
                && within(item.offset, r.offsets)
            {
                f(&item)?;
            }
        }
        next_min = next_key(last, (r.objectids.1, r.types.1, r.offsets.1));
    }
    Ok(())
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
        match self.peek() {
            Ok(_) => self.pending.pop_front().map(Ok),
            Err(e) => Some(Err(e)),
        }
    }
}

impl Filesystem {
    /// Iterates the items of `range` (privileged: CAP_SYS_ADMIN).
    pub fn tree_search(&self, range: SearchRange) -> TreeSearch<'_> {
        TreeSearch::new(self, range)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A search buffer as the kernel packs it: host-order headers, then each item's bytes.
    fn packed(items: &[(u64, u8, u64, &[u8])]) -> Vec<u8> {
        let mut buf = Vec::new();
        for (i, (objectid, item_type, offset, data)) in items.iter().enumerate() {
            buf.extend_from_slice(&(100 + i as u64).to_ne_bytes());
            buf.extend_from_slice(&objectid.to_ne_bytes());
            buf.extend_from_slice(&offset.to_ne_bytes());
            buf.extend_from_slice(&u32::from(*item_type).to_ne_bytes());
            buf.extend_from_slice(&(data.len() as u32).to_ne_bytes());
            buf.extend_from_slice(data);
        }
        buf
    }

    #[test]
    fn unpacks_misaligned_items_and_rejects_a_short_buffer() {
        let buf = packed(&[(256, 132, 0, b"abc"), (257, 156, 7, b"")]);
        let items = unpack(&buf, 2).unwrap();
        assert_eq!(items.len(), 2);
        let (a, b) = (&items[0], &items[1]);
        assert_eq!(
            (a.transid, a.objectid, a.item_type, a.offset),
            (100, 256, 132, 0)
        );
        assert_eq!(a.data, b"abc");
        // The second header starts 35 bytes in: not 8-aligned.
        assert_eq!(
            (b.transid, b.objectid, b.item_type, b.offset),
            (101, 257, 156, 7)
        );
        assert!(b.data.is_empty());
        // More items claimed than the buffer holds, or data cut short: an error, not a stop.
        assert!(unpack(&buf, 3).is_err());
        assert!(unpack(&buf[..HEADER_LEN + 2], 1).is_err());
    }

    #[test]
    fn room_for_one_more_largest_item_means_the_range_is_done() {
        let items = unpack(&packed(&[(1, 1, 0, &[0; 100])]), 1).unwrap();
        let used = HEADER_LEN + 100;
        // Without a size announcement nothing is concluded.
        assert!(!range_exhausted(&items, 4096, None));
        assert!(range_exhausted(&items, used + HEADER_LEN + 200, Some(200)));
        assert!(!range_exhausted(&items, used + HEADER_LEN + 199, Some(200)));
        // An item bigger than announced: the announcement is wrong, keep searching.
        assert!(!range_exhausted(&items, 4096, Some(50)));
    }

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
