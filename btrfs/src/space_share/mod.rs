//! How much data space each subvolume takes, what it shares, and what deleting it (or a group
//! of subvolumes, such as a Docker image's layers) would give back: exact, from the
//! filesystem's metadata, without quotas and without walking files.
//!
//! [`Filesystem::space_share`] reads every live subvolume tree with `BTRFS_IOC_TREE_SEARCH`
//! (needs CAP_SYS_ADMIN), decodes its `EXTENT_DATA` items ([`FileExtentItem`]) and keeps, for
//! each distinct disk extent (keyed by `disk_bytenr`), its size and the set of measured
//! subvolumes that reference it. What is counted:
//!
//! * **referenced** of a subvolume: the sum of `disk_num_bytes` over the distinct disk extents
//!   its files reference (regular and preallocated extents; compressed extents at their
//!   compressed size; an extent partly overwritten, still referenced in part, counts whole).
//!   This is the data part of a qgroup's `rfer`.
//! * **exclusive**: the same sum over the extents no other subvolume of the filesystem
//!   references: what deleting the subvolume frees. The data part of a qgroup's `excl`.
//!   Several references from within the subvolume (reflinks, partial overwrites) keep an
//!   extent exclusive.
//! * **shared** = referenced − exclusive.
//! * **logical**: the sum of `num_bytes` over its regular and preallocated file extent items:
//!   the file bytes they map (each reference counted, uncompressed; holes not counted).
//! * For a **group** ([`SpaceShare::group`]): referenced counts each extent any member
//!   references once; exclusive counts the extents referenced by members only, i.e. what
//!   deleting all of them frees.
//!
//! What is **not** counted: tree blocks (metadata, `nodesize` each: qgroups count them in
//! `rfer`/`excl` on top of the data), and therefore inline extents, whose data lives in the
//! tree's leaves: those are reported apart ([`InlineSpace`]), not added to referenced or
//! exclusive. Holes take no space. Sizes are logical: on raid1 or dup every byte is stored
//! twice on the devices, and counted once here, as qgroups do. Subvolumes being deleted (a root
//! item with no references left, waiting for the cleaner) are neither measured nor counted as
//! sharing: the cleaner frees what only they hold. Trees that are not subvolumes (the data
//! relocation tree, log trees of an uncommitted fsync) are not read.
//!
//! The figures are those of the trees as they are now, including writes not yet committed;
//! qgroups show the last committed transaction, so sync first (`Filesystem::sync`) to compare.
//!
//! Memory: one entry per distinct disk extent of the measured subvolumes (its address, its
//! size and a 32-bit owner-set id: 24 bytes, 25 to 50 with the hash table's slack, so at most
//! about 50 MB for a million extents); the owner sets themselves are interned (one per distinct sharing
//! pattern, e.g. per layer of a snapshot chain). Subvolumes outside the [`Scope`] are read too,
//! but only to mark extents of the measured ones as shared: they add no entries.
//!
//! ```no_run
//! use btrfs_kit::{Filesystem, space_share::Scope};
//!
//! # fn main() -> Result<(), btrfs_kit::Error> {
//! let fs = Filesystem::open("/var/lib/docker")?;
//! let share = fs.space_share(&Scope::All)?;
//! for s in share.subvolumes() {
//!     println!("{}: {} referenced, {} exclusive", s.id, s.referenced, s.exclusive);
//! }
//! let image = share.group(&[257, 258, 259])?;
//! println!("deleting the image frees {}", image.exclusive);
//! # Ok(())
//! # }
//! ```

mod owners;
mod walk;

use crate::error::{Error, Result};
use crate::fs::Filesystem;
use crate::size::ByteSize;
use std::collections::HashMap;

pub use crate::format::items::{Compression, FileExtentItem, FileExtentKind};

const OP: &str = "measure subvolume space";

/// Which subvolumes to measure. Every live subvolume of the filesystem is read either way, so
/// that "exclusive" means exclusive within the whole filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every live subvolume, the top level (id 5) included.
    All,
    /// These subvolume ids (each must exist and not be deleted).
    Subvolumes(Vec<u64>),
}

/// Inline extents of a subvolume: file data stored inside its tree's leaves (small files),
/// which is metadata and so not part of referenced or exclusive.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct InlineSpace {
    /// Inline file extent items.
    pub items: u64,
    /// Bytes of data stored in the leaves (compressed where the item is).
    pub stored: ByteSize,
    /// File bytes they hold, uncompressed (`ram_bytes`).
    pub logical: ByteSize,
}

/// The data space of one subvolume. See the [module documentation](self) for the definitions.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct SubvolumeSpace {
    /// The subvolume id.
    pub id: u64,
    /// Sum of `disk_num_bytes` of the distinct disk extents it references.
    pub referenced: ByteSize,
    /// The part of `referenced` no other subvolume references: what deleting it frees.
    pub exclusive: ByteSize,
    /// Sum of `num_bytes` of its regular and preallocated file extent items.
    pub logical: ByteSize,
    /// The part of `logical` in preallocated, never written ranges.
    pub prealloc: ByteSize,
    /// The part of `referenced` in compressed extents (at their compressed size).
    pub compressed: ByteSize,
    /// Distinct disk extents referenced.
    pub extents: u64,
    /// Regular and preallocated file extent items (references to those extents).
    pub extent_refs: u64,
    /// Inline extents, counted apart.
    pub inline: InlineSpace,
}

impl SubvolumeSpace {
    /// Referenced bytes some other subvolume references too: `referenced − exclusive`.
    pub fn shared(&self) -> ByteSize {
        self.referenced.saturating_sub(self.exclusive)
    }
}

/// The data space of a group of subvolumes (e.g. the layers of an image).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct GroupSpace {
    /// Subvolumes in the group.
    pub members: usize,
    /// Sum of `disk_num_bytes` of the distinct disk extents any member references.
    pub referenced: ByteSize,
    /// The part of `referenced` that only members reference: what deleting them all frees.
    pub exclusive: ByteSize,
    /// Sum of the members' logical bytes.
    pub logical: ByteSize,
}

impl GroupSpace {
    /// Referenced bytes that subvolumes outside the group reference too.
    pub fn shared(&self) -> ByteSize {
        self.referenced.saturating_sub(self.exclusive)
    }
}

/// The result of [`Filesystem::space_share`]: per subvolume figures, and group queries.
#[derive(Debug, Clone)]
pub struct SpaceShare {
    subvolumes: Vec<SubvolumeSpace>,
    index: HashMap<u64, u32>,
    /// Each sharing pattern met: its owners (indices into `subvolumes`; `subvolumes.len()`
    /// stands for "some subvolume outside the scope") and the bytes of its extents.
    patterns: Vec<(Vec<u32>, u64)>,
    outside: usize,
}

impl SpaceShare {
    /// The measured subvolumes, by ascending id.
    pub fn subvolumes(&self) -> &[SubvolumeSpace] {
        &self.subvolumes
    }

    /// One measured subvolume.
    pub fn subvolume(&self, id: u64) -> Option<&SubvolumeSpace> {
        self.index.get(&id).map(|&i| &self.subvolumes[i as usize])
    }

    /// Live subvolumes read only to find sharing (outside the scope).
    pub fn outside_scope(&self) -> usize {
        self.outside
    }

    /// Distinct sets of owners among the measured extents.
    pub fn sharing_patterns(&self) -> usize {
        self.patterns.len()
    }

    /// The figures of a group of measured subvolumes; an id given twice counts once. An
    /// [`ErrorKind::InvalidArguments`](crate::ErrorKind::InvalidArguments) for an id that was not measured.
    pub fn group(&self, ids: &[u64]) -> Result<GroupSpace> {
        let mut member = vec![false; self.subvolumes.len() + 1];
        for id in ids {
            let i = *self.index.get(id).ok_or_else(|| Error::invalid_arguments("group subvolume space", format!(
                    "subvolume {id} was not measured; measure it (Scope::All, or list it in Scope::Subvolumes)"
                )))?;
            member[i as usize] = true;
        }
        let mut g = GroupSpace {
            members: member.iter().filter(|m| **m).count(),
            ..GroupSpace::default()
        };
        for (i, s) in self.subvolumes.iter().enumerate() {
            if member[i] {
                g.logical += s.logical;
            }
        }
        for (owners, bytes) in &self.patterns {
            let inside = owners.iter().filter(|&&o| member[o as usize]).count();
            if inside > 0 {
                g.referenced += ByteSize(*bytes);
                if inside == owners.len() {
                    g.exclusive += ByteSize(*bytes);
                }
            }
        }
        Ok(g)
    }

    /// The figures of every measured subvolume together.
    pub fn total(&self) -> GroupSpace {
        let ids: Vec<u64> = self.subvolumes.iter().map(|s| s.id).collect();
        self.group(&ids).unwrap_or_default()
    }
}

impl Filesystem {
    /// Measures the data space of the subvolumes in `scope`: referenced, exclusive, shared and
    /// logical bytes, from the subvolume trees (privileged: CAP_SYS_ADMIN). See
    /// [`space_share`](crate::space_share) for exactly what is counted.
    pub fn space_share(&self, scope: &Scope) -> Result<SpaceShare> {
        walk::measure(self, scope)
    }
}
