//! A forward cursor over a key range of the root tree, for the privileged iterator.
//!
//! Unlike the general [`TreeSearch`](crate::TreeSearch), it knows the largest item its range
//! can hold, so when the kernel returns a buffer with room left for one more such item, the
//! range is exhausted and no further (empty) search is needed. It also allows peeking.

use super::lookup::ROOT_TREE;
use crate::error::Result;
use crate::fs::Filesystem;
use crate::ioctl;
use crate::tree_search::TreeItem;
use btrfs_sys as sys;
use std::collections::VecDeque;

const HEADER: usize = std::mem::size_of::<sys::btrfs_ioctl_search_header>();
const BUF: usize = std::mem::size_of::<sys::btrfs_ioctl_search_args>()
    - std::mem::size_of::<sys::btrfs_ioctl_search_key>();

/// Root tree items with object ids in `objectids` and types in `types`, in key order.
pub(crate) struct Cursor<'a> {
    fs: &'a Filesystem,
    objectids: (u64, u64),
    types: (u8, u8),
    next_min: Option<(u64, u8, u64)>,
    max_item: usize,
    pending: VecDeque<TreeItem>,
}

impl<'a> Cursor<'a> {
    /// A cursor from key `(objectids.0, types.0, offset)`; items are at most `max_item` bytes.
    pub(crate) fn new(
        fs: &'a Filesystem,
        objectids: (u64, u64),
        types: (u8, u8),
        offset: u64,
        max_item: usize,
    ) -> Self {
        Cursor {
            fs,
            objectids,
            types,
            next_min: Some((objectids.0, types.0, offset)),
            max_item,
            pending: VecDeque::new(),
        }
    }

    fn fill(&mut self) -> Result<()> {
        let Some((objectid, item_type, offset)) = self.next_min.take() else {
            return Ok(());
        };
        let mut args = sys::btrfs_ioctl_search_args {
            key: sys::btrfs_ioctl_search_key {
                tree_id: ROOT_TREE,
                min_objectid: objectid,
                max_objectid: self.objectids.1,
                min_type: item_type.into(),
                max_type: self.types.1.into(),
                min_offset: offset,
                max_offset: u64::MAX,
                min_transid: 0,
                max_transid: u64::MAX,
                nr_items: u32::MAX,
                ..Default::default()
            },
            ..Default::default()
        };
        ioctl::tree_search(self.fs.fd(), &mut args)
            .map_err(|e| self.fs.err("search root tree", e))?;
        let buf: &[u8] = bytemuck::cast_slice(&args.buf[..]);
        let mut pos = 0;
        let mut last = None;
        let mut biggest = 0;
        for _ in 0..args.key.nr_items {
            let Some(h) = buf.get(pos..pos + HEADER) else {
                break;
            };
            let u64_at = |o: usize| u64::from_ne_bytes(h[o..o + 8].try_into().unwrap());
            let u32_at = |o: usize| u32::from_ne_bytes(h[o..o + 4].try_into().unwrap());
            let (objectid, offset, item_type) = (u64_at(8), u64_at(16), u32_at(24) as u8);
            let len = u32_at(28) as usize;
            let Some(data) = buf.get(pos + HEADER..pos + HEADER + len) else {
                break;
            };
            pos += HEADER + len;
            biggest = biggest.max(len);
            last = Some((objectid, item_type, offset));
            if (self.types.0..=self.types.1).contains(&item_type) {
                self.pending.push_back(TreeItem {
                    transid: u64_at(0),
                    objectid,
                    item_type,
                    offset,
                    data: data.to_vec(),
                });
            }
        }
        // Room for one more of the largest item: the kernel stopped at the range's end.
        let exhausted = biggest > self.max_item || BUF - pos >= HEADER + self.max_item;
        if let (Some(key), false) = (last, exhausted) {
            self.next_min = next_key(key).filter(|k| k.0 <= self.objectids.1);
        }
        Ok(())
    }

    /// The next item, without consuming it.
    pub(crate) fn peek(&mut self) -> Result<Option<&TreeItem>> {
        while self.pending.is_empty() && self.next_min.is_some() {
            self.fill()?;
        }
        Ok(self.pending.front())
    }

    /// The next item.
    pub(crate) fn next_item(&mut self) -> Result<Option<TreeItem>> {
        self.peek()?;
        Ok(self.pending.pop_front())
    }
}

fn next_key((objectid, item_type, offset): (u64, u8, u64)) -> Option<(u64, u8, u64)> {
    if offset < u64::MAX {
        Some((objectid, item_type, offset + 1))
    } else if item_type < u8::MAX {
        Some((objectid, item_type + 1, 0))
    } else {
        objectid.checked_add(1).map(|o| (o, 0, 0))
    }
}
