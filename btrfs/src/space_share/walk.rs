//! The walk: live subvolume ids from the root tree, then each subvolume's `EXTENT_DATA` items.

use super::owners::{OwnerSets, SetId};
use super::{InlineSpace, Scope, SpaceShare, SubvolumeSpace, OP};
use crate::error::{Error, ErrorKind, Result};
use crate::format::items::{Compression, FileExtentItem, FileExtentKind};
use crate::fs::Filesystem;
use crate::le;
use crate::size::ByteSize;
use crate::subvolume::TOP_LEVEL_ID;
use crate::tree_search::{self, SearchRange};
use btrfs_sys as sys;
use std::collections::{BTreeSet, HashMap};
use std::mem::offset_of;

const ROOT_TREE: u64 = sys::BTRFS_ROOT_TREE_OBJECTID as u64;
const ROOT_ITEM: u8 = sys::BTRFS_ROOT_ITEM_KEY as u8;
const EXTENT_DATA: u8 = sys::BTRFS_EXTENT_DATA_KEY as u8;
const FIRST_FREE: u64 = sys::BTRFS_FIRST_FREE_OBJECTID as u64;
const LAST_FREE: u64 = sys::BTRFS_LAST_FREE_OBJECTID as i64 as u64;

/// One distinct disk extent: its size and who references it.
#[derive(Debug, Clone, Copy)]
struct Extent {
    bytes: u64,
    owners: SetId,
}

/// The ids of the live subvolumes (top level and ids 256.. with a ROOT_ITEM whose reference
/// count is not zero), ascending.
fn live_subvolumes(fs: &Filesystem) -> Result<BTreeSet<u64>> {
    let range = SearchRange::items(ROOT_TREE, (TOP_LEVEL_ID, LAST_FREE), ROOT_ITEM);
    let mut ids = BTreeSet::new();
    for item in fs.tree_search(range) {
        let item = item?;
        if item.objectid != TOP_LEVEL_ID && item.objectid < FIRST_FREE {
            continue;
        }
        let refs = le::u32_at(&item.data, offset_of!(sys::btrfs_root_item, refs))
            .map_err(|e| fs.decode_err(OP, format!("ROOT_ITEM of {}: {e}", item.objectid)))?;
        if refs > 0 {
            ids.insert(item.objectid);
        }
    }
    Ok(ids)
}

/// The running state of a measurement.
struct Tally {
    extents: HashMap<u64, Extent>,
    sets: OwnerSets,
}

impl Tally {
    /// Reads subvolume `id`'s file extent items. `owner` is its index among the measured
    /// subvolumes, with `space` its figures; `None` for one outside the scope, which only
    /// marks extents already known as shared.
    fn walk(
        &mut self,
        fs: &Filesystem,
        id: u64,
        owner: u32,
        mut space: Option<&mut SubvolumeSpace>,
    ) -> Result<()> {
        let range = SearchRange::items(id, (FIRST_FREE, LAST_FREE), EXTENT_DATA);
        tree_search::visit(fs, range, |item| {
            let fe = FileExtentItem::decode(item.data).map_err(|e| {
                fs.decode_err(
                    OP,
                    format!(
                        "subvolume {id}, inode {} offset {}: {e}",
                        item.objectid, item.offset
                    ),
                )
            })?;
            let (disk, prealloc) = match fe.kind {
                FileExtentKind::Regular(d) => (d, false),
                FileExtentKind::Prealloc(d) => (d, true),
                FileExtentKind::Inline { data_len } => {
                    if let Some(s) = space.as_deref_mut() {
                        s.inline.items += 1;
                        s.inline.stored += ByteSize(data_len);
                        s.inline.logical += ByteSize(fe.ram_bytes);
                    }
                    return Ok(());
                }
                FileExtentKind::Hole { .. } => return Ok(()),
            };
            let Some(s) = space.as_deref_mut() else {
                if let Some(e) = self.extents.get_mut(&disk.disk_bytenr) {
                    e.owners = self.sets.with(e.owners, owner);
                }
                return Ok(());
            };
            s.extent_refs += 1;
            s.logical += ByteSize(disk.num_bytes);
            if prealloc {
                s.prealloc += ByteSize(disk.num_bytes);
            }
            let e = self.extents.entry(disk.disk_bytenr).or_insert(Extent {
                bytes: disk.disk_num_bytes,
                owners: OwnerSets::EMPTY,
            });
            if self.sets.last(e.owners) != Some(owner) {
                e.owners = self.sets.with(e.owners, owner);
                s.extents += 1;
                s.referenced += ByteSize(e.bytes);
                if fe.compression != Compression::None {
                    s.compressed += ByteSize(e.bytes);
                }
            }
            Ok(())
        })
    }
}

fn empty_space(id: u64) -> SubvolumeSpace {
    SubvolumeSpace {
        id,
        referenced: ByteSize::ZERO,
        exclusive: ByteSize::ZERO,
        logical: ByteSize::ZERO,
        prealloc: ByteSize::ZERO,
        compressed: ByteSize::ZERO,
        extents: 0,
        extent_refs: 0,
        inline: InlineSpace::default(),
    }
}

pub(super) fn measure(fs: &Filesystem, scope: &Scope) -> Result<SpaceShare> {
    let live = live_subvolumes(fs)?;
    let measured: Vec<u64> = match scope {
        Scope::All => live.iter().copied().collect(),
        Scope::Subvolumes(ids) => {
            let ids: BTreeSet<u64> = ids.iter().copied().collect();
            if let Some(&id) = ids.iter().find(|id| !live.contains(id)) {
                return Err(Error::new(
                    OP,
                    fs.path(),
                    ErrorKind::SubvolumeNotFound { id },
                ));
            }
            ids.into_iter().collect()
        }
    };
    let mut subvolumes: Vec<SubvolumeSpace> = measured.iter().map(|&id| empty_space(id)).collect();
    let mut tally = Tally {
        extents: HashMap::new(),
        sets: OwnerSets::new(),
    };
    for (i, space) in subvolumes.iter_mut().enumerate() {
        let id = space.id;
        tally
            .walk(fs, id, i as u32, Some(space))
            .map_err(|e| match e.kind() {
                // Deleted while we read: the caller asked for a subvolume that is gone.
                ErrorKind::NotFound => {
                    Error::new(OP, fs.path(), ErrorKind::SubvolumeNotFound { id })
                }
                _ => e,
            })?;
    }
    // The others, after every measured one, so their owner index is the largest.
    let outside = measured.len() as u32;
    let others: Vec<u64> = live
        .iter()
        .copied()
        .filter(|id| measured.binary_search(id).is_err())
        .collect();
    for &id in &others {
        match tally.walk(fs, id, outside, None) {
            // Deleted meanwhile: it shares nothing any more.
            Err(e) if matches!(e.kind(), ErrorKind::NotFound) => {}
            r => r?,
        }
    }

    let Tally { extents, sets } = tally;
    let mut bytes_of_set = vec![0u64; sets.len()];
    for e in extents.values() {
        bytes_of_set[e.owners as usize] += e.bytes;
    }
    drop(extents);
    let patterns: Vec<(Vec<u32>, u64)> = bytes_of_set
        .iter()
        .enumerate()
        .filter(|&(_, &b)| b > 0)
        .map(|(set, &b)| (sets.owners(set as SetId), b))
        .collect();
    for (owners, bytes) in &patterns {
        if let [only] = owners[..] {
            if let Some(s) = subvolumes.get_mut(only as usize) {
                s.exclusive += ByteSize(*bytes);
            }
        }
    }
    let index = measured
        .iter()
        .enumerate()
        .map(|(i, &id)| (id, i as u32))
        .collect();
    Ok(SpaceShare {
        subvolumes,
        index,
        patterns,
        outside: others.len(),
    })
}
