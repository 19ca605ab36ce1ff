//! The privileged source of one subvolume's children (CAP_SYS_ADMIN): its ROOT_REF items in
//! the root tree, and a *window* search that describes several children (ROOT_ITEM, and their
//! own ROOT_REFs) per ioctl.

use super::info::RootRef;
use super::lookup::{self, ROOT_TREE};
use crate::error::Result;
use crate::fs::Filesystem;
use crate::tree_search::{SearchRange, TreeItem, TreeSearch};
use btrfs_sys as sys;
use std::collections::VecDeque;

const OP: &str = "list subvolumes";

/// Children in a window of ids are described by one streaming search, so that the kernel is
/// asked once per several subvolumes rather than twice per subvolume.
const WINDOW: u64 = 32;
/// At most this many child refs are held ahead per frame (memory stays flat).
const LOOKAHEAD: usize = 64;
/// The largest ROOT_REF item: `struct btrfs_root_ref` and a 255-byte name.
const MAX_REF: usize = std::mem::size_of::<sys::btrfs_root_ref>() + 255;
/// The largest item of a window: a ROOT_ITEM.
const MAX_WINDOW_ITEM: usize = std::mem::size_of::<sys::btrfs_root_item>();
const ROOT_ITEM: u8 = sys::BTRFS_ROOT_ITEM_KEY as u8;
const ROOT_REF: u8 = sys::BTRFS_ROOT_REF_KEY as u8;

/// The privileged source of one subvolume's children.
pub(crate) struct PrivilegedRefs<'a> {
    /// Child refs known ahead, in id order.
    pending: VecDeque<(u64, RootRef)>,
    /// Where more child refs come from, when `pending` does not hold them all.
    refs: Option<TreeSearch<'a>>,
    /// ROOT_ITEM..ROOT_REF items of ids up to the window's end, in key order.
    window: Option<(u64, TreeSearch<'a>)>,
    /// The last directory path looked up: children often share a directory.
    last_dir: Option<(u64, Vec<u8>)>,
}

/// What the window says about one child.
pub(crate) struct ChildItems<'a> {
    /// The child's ROOT_ITEM, unless it vanished meanwhile.
    pub(crate) root_item: Option<Vec<u8>>,
    /// The source of the child's own children; `None` when it has none.
    pub(crate) children: Option<Box<PrivilegedRefs<'a>>>,
}

/// The ROOT_REF items of subvolume `id` (its children), from child id `from` on.
fn child_refs(fs: &Filesystem, id: u64, from: u64) -> TreeSearch<'_> {
    let range = SearchRange {
        offsets: (from, u64::MAX),
        ..SearchRange::items(ROOT_TREE, (id, id), ROOT_REF)
    };
    fs.tree_search(range).items_at_most(MAX_REF)
}

fn decode_ref(fs: &Filesystem, item: &TreeItem) -> Result<RootRef> {
    RootRef::decode(&item.data).map_err(|e| {
        fs.decode_err(
            OP,
            format!("ROOT_REF {} -> {}: {e}", item.objectid, item.offset),
        )
    })
}

impl<'a> PrivilegedRefs<'a> {
    /// Every child of subvolume `id`.
    pub(crate) fn of(fs: &'a Filesystem, id: u64) -> Box<Self> {
        Self::new(VecDeque::new(), Some(child_refs(fs, id, 0)))
    }

    /// The children in `pending`, then those `refs` finds.
    fn new(pending: VecDeque<(u64, RootRef)>, refs: Option<TreeSearch<'a>>) -> Box<Self> {
        Box::new(PrivilegedRefs {
            pending,
            refs,
            window: None,
            last_dir: None,
        })
    }

    /// The next child ref, keeping up to [`LOOKAHEAD`] known ahead.
    pub(crate) fn next_ref(&mut self, fs: &'a Filesystem) -> Result<Option<(u64, RootRef)>> {
        if let Some(refs) = self.refs.as_mut() {
            while self.pending.len() < LOOKAHEAD {
                let Some(item) = refs.next().transpose()? else {
                    self.refs = None;
                    break;
                };
                self.pending
                    .push_back((item.offset, decode_ref(fs, &item)?));
            }
        }
        Ok(self.pending.pop_front())
    }

    /// The items of `child` (ids come in increasing order), from the current window or a new
    /// one starting at `child` and ending at the last child known ahead.
    pub(crate) fn child_items(&mut self, fs: &'a Filesystem, child: u64) -> Result<ChildItems<'a>> {
        if self.window.as_ref().is_none_or(|(end, _)| child > *end) {
            let ahead = self.pending.back().map_or(child, |(id, _)| *id);
            let end = ahead.min(child.saturating_add(WINDOW - 1)).max(child);
            let range = SearchRange {
                objectids: (child, end),
                types: (ROOT_ITEM, ROOT_REF),
                ..SearchRange::whole_tree(ROOT_TREE)
            };
            let search = fs.tree_search(range).items_at_most(MAX_WINDOW_ITEM);
            self.window = Some((end, search));
        }
        let Some((_, items)) = self.window.as_mut() else {
            unreachable!("set above")
        };
        let mut root_item = None;
        let mut grandchildren = VecDeque::new();
        let mut more = None;
        while let Some(next) = items.peek()? {
            if next.objectid > child {
                break;
            }
            let item = items.next().expect("peeked")?;
            match (item.objectid == child, item.item_type) {
                (true, ROOT_ITEM) if root_item.is_none() => root_item = Some(item.data),
                (true, ROOT_REF) if more.is_none() => {
                    if grandchildren.len() == LOOKAHEAD {
                        // Too many to hold: the child's frame searches for the rest.
                        more = Some(child_refs(fs, child, item.offset));
                    } else {
                        grandchildren.push_back((item.offset, decode_ref(fs, &item)?));
                    }
                }
                _ => {}
            }
        }
        let children =
            (!grandchildren.is_empty()).then(|| PrivilegedRefs::new(grandchildren, more));
        Ok(ChildItems {
            root_item,
            children,
        })
    }

    /// The path of directory `dir_id` in subvolume `id`, reusing the last answer.
    pub(crate) fn dir_path(&mut self, fs: &Filesystem, id: u64, dir_id: u64) -> Result<Vec<u8>> {
        if let Some((d, path)) = &self.last_dir {
            if *d == dir_id {
                return Ok(path.clone());
            }
        }
        let path = lookup::dir_path(fs, id, dir_id)?;
        self.last_dir = Some((dir_id, path.clone()));
        Ok(path)
    }
}
