//! Deleted subvolumes: listing those the cleaner has not dropped yet, and waiting for it.
//!
//! Deleting a subvolume only unlinks it; the cleaner thread frees its space later. Each
//! deleted-but-not-cleaned subvolume has an ORPHAN_ITEM (object id `BTRFS_ORPHAN_OBJECTID`,
//! offset = subvolume id) in the root tree, and its ROOT_ITEM stays until it is dropped.

use super::lookup::{self, ROOT_TREE};
use crate::error::Result;
use crate::fs::Filesystem;
use crate::tree_search::SearchRange;
use btrfs_sys as sys;
use std::time::Duration;

/// `BTRFS_ORPHAN_OBJECTID` (-5 as an unsigned 64-bit object id).
const ORPHAN_OBJECTID: u64 = sys::BTRFS_ORPHAN_OBJECTID as i64 as u64;

impl Filesystem {
    /// Ids of the subvolumes deleted but not yet cleaned (CAP_SYS_ADMIN).
    pub fn deleted_subvolumes(&self) -> Result<Vec<u64>> {
        let range = SearchRange::items(
            ROOT_TREE,
            (ORPHAN_OBJECTID, ORPHAN_OBJECTID),
            sys::BTRFS_ORPHAN_ITEM_KEY as u8,
        );
        self.tree_search(range)
            .map(|item| item.map(|i| i.offset))
            .collect()
    }

    /// Waits until every subvolume deleted so far has been cleaned, so that its space shows
    /// up as free; returns the ids waited for (CAP_SYS_ADMIN).
    pub fn wait_for_deleted_subvolumes(&self) -> Result<Vec<u64>> {
        let ids = self.deleted_subvolumes()?;
        self.wait_for_subvolumes_cleaned(&ids)?;
        Ok(ids)
    }

    /// Waits until each subvolume of `ids` is gone from the root tree (cleaned, or never
    /// existed), then commits, so that space figures show the freed space. The kernel has no
    /// notification for this: each round commits the transaction, which wakes the cleaner, then
    /// checks again after a pause growing from 10 ms to 1 s.
    pub fn wait_for_subvolumes_cleaned(&self, ids: &[u64]) -> Result<()> {
        let mut pending = ids.to_vec();
        let mut pause = Duration::from_millis(10);
        loop {
            let mut still = Vec::with_capacity(pending.len());
            for id in pending {
                if lookup::root_item(self, id)?.is_some() {
                    still.push(id);
                }
            }
            if still.is_empty() {
                return self.sync();
            }
            pending = still;
            self.sync()?;
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_secs(1));
        }
    }
}
