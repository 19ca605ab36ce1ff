//! Privileged lookups in the root tree (CAP_SYS_ADMIN): a subvolume's ROOT_ITEM, its
//! ROOT_BACKREF, its path from the top level, and its full info by id
//! ([`Filesystem::subvolume_info_by_id`]).

use super::info::{from_root_item, RootRef, SubvolumeInfo};
use super::paths::join_bytes;
use super::TOP_LEVEL_ID;
use crate::error::{Error, ErrorKind, Result};
use crate::fs::Filesystem;
use crate::ioctl;
use crate::tree_search::SearchRange;
use btrfs_sys as sys;
use std::path::PathBuf;

/// The root tree's id.
pub(crate) const ROOT_TREE: u64 = sys::BTRFS_ROOT_TREE_OBJECTID as u64;

/// The first item of `item_type` with object id `id` in the root tree.
fn first_item(fs: &Filesystem, id: u64, item_type: u32) -> Result<Option<(u64, Vec<u8>)>> {
    let range = SearchRange::items(ROOT_TREE, (id, id), item_type as u8);
    match fs.tree_search(range).next() {
        Some(Ok(item)) => Ok(Some((item.offset, item.data))),
        Some(Err(e)) => Err(e),
        None => Ok(None),
    }
}

/// The ROOT_ITEM bytes of subvolume `id`, if it exists (also while deleted but not cleaned).
pub(crate) fn root_item(fs: &Filesystem, id: u64) -> Result<Option<Vec<u8>>> {
    Ok(first_item(fs, id, sys::BTRFS_ROOT_ITEM_KEY)?.map(|(_, d)| d))
}

/// Where subvolume `id` hangs: (parent id, ref). `None` for the top level or a deleted one.
pub(crate) fn backref(fs: &Filesystem, id: u64) -> Result<Option<(u64, RootRef)>> {
    let Some((parent, data)) = first_item(fs, id, sys::BTRFS_ROOT_BACKREF_KEY)? else {
        return Ok(None);
    };
    let r = RootRef::decode(&data).map_err(|e| {
        fs.decode_err(
            "read root backref",
            format!("ROOT_BACKREF of subvolume {id}: {e}"),
        )
    })?;
    Ok(Some((parent, r)))
}

/// The path of directory `dir_id` inside subvolume `tree` (bytes, trailing `/` unless empty).
pub(crate) fn dir_path(fs: &Filesystem, tree: u64, dir_id: u64) -> Result<Vec<u8>> {
    if dir_id == super::ROOT_DIR_INO {
        return Ok(Vec::new());
    }
    ioctl::ino_lookup(fs.fd(), tree, dir_id)
        .map(|(_, p)| p)
        .map_err(|e| fs.err("look up directory path", e))
}

/// The path of subvolume `id` relative to the top level, walking ROOT_BACKREFs upwards.
pub(crate) fn top_path(fs: &Filesystem, id: u64) -> Result<PathBuf> {
    let mut parts: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    let mut cur = id;
    while cur != TOP_LEVEL_ID {
        let Some((parent, r)) = backref(fs, cur)? else {
            return Err(Error::new(
                "resolve subvolume path",
                fs.path(),
                ErrorKind::SubvolumeNotFound { id: cur },
            ));
        };
        parts.push((dir_path(fs, parent, r.dir_id)?, r.name));
        cur = parent;
    }
    Ok(parts
        .iter()
        .rev()
        .fold(PathBuf::new(), |p, (dir, name)| join_bytes(&p, dir, name)))
}

impl Filesystem {
    /// Info of subvolume `id`, with its path from the top level (CAP_SYS_ADMIN).
    pub fn subvolume_info_by_id(&self, id: u64) -> Result<SubvolumeInfo> {
        const OP: &str = "subvolume info";
        let not_found = || Error::new(OP, self.path(), ErrorKind::SubvolumeNotFound { id });
        let item = root_item(self, id)?.ok_or_else(not_found)?;
        let parent = backref(self, id)?;
        if parent.is_none() && id != TOP_LEVEL_ID {
            return Err(not_found());
        }
        let mut info = from_root_item(id, parent.as_ref().map(|(p, r)| (*p, r)), &item)
            .map_err(|e| self.decode_err(OP, format!("ROOT_ITEM of subvolume {id}: {e}")))?;
        info.path = Some(top_path(self, id)?);
        Ok(info)
    }
}
