//! The streaming subvolume iterator.
//!
//! A depth-first walk with one frame per level of nesting, so memory depends on the depth, not
//! on how many subvolumes there are. Two sources feed it:
//!
//! * privileged (CAP_SYS_ADMIN): a TREE_SEARCH over each subvolume's ROOT_REF items in the root
//!   tree, `BTRFS_IOC_INO_LOOKUP` for the directory path, the ROOT_ITEM for the info;
//! * unprivileged (kernel 4.18+): `BTRFS_IOC_GET_SUBVOL_ROOTREF` on an open subvolume,
//!   `BTRFS_IOC_INO_LOOKUP_USER` for the path (checked against the caller's access), then the
//!   child is opened and described with `BTRFS_IOC_GET_SUBVOL_INFO`.
//!
//! Both visit children in id order, so they yield the same sequence where both can see.

use super::info::SubvolumeInfo;
use super::paths::containing_root;
use super::{lookup, source};
use crate::error::Result;
use crate::fs::Filesystem;
use std::fmt;
use std::path::PathBuf;

/// When a subvolume is yielded relative to the ones nested in it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub enum Order {
    /// Parents before their children (e.g. to recreate a tree).
    #[default]
    PreOrder,
    /// Children before their parents (e.g. to delete a tree).
    PostOrder,
}

/// Which kernel interface the iterator uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub enum Mode {
    /// Privileged when the caller may search trees (CAP_SYS_ADMIN), else unprivileged.
    #[default]
    Auto,
    /// TREE_SEARCH + INO_LOOKUP: sees every subvolume; needs CAP_SYS_ADMIN.
    Privileged,
    /// GET_SUBVOL_ROOTREF + INO_LOOKUP_USER: sees what the caller can reach (kernel 4.18+).
    Unprivileged,
}

/// One subvolume found below the listed path.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Subvolume {
    /// The path relative to the listed path: join it to that path to reach the subvolume.
    pub path: PathBuf,
    /// Nesting depth below the listed path: 1 for the outermost subvolumes found.
    pub depth: usize,
    /// What the kernel records about it.
    pub info: SubvolumeInfo,
}

/// Why a subvolume's path or info could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub enum UnreachableReason {
    /// The caller may not traverse a directory on its path, or open the subvolume.
    PermissionDenied,
    /// It was deleted (or moved) while the listing ran.
    Vanished,
    /// Something else is mounted over its path.
    Covered,
    /// Any other error, as text.
    Other(String),
}

impl fmt::Display for UnreachableReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnreachableReason::PermissionDenied => f.write_str("permission denied"),
            UnreachableReason::Vanished => f.write_str("deleted or moved during the listing"),
            UnreachableReason::Covered => f.write_str("another filesystem is mounted over it"),
            UnreachableReason::Other(e) => f.write_str(e),
        }
    }
}

/// A subvolume known to exist (its parent lists it) whose path or info could not be resolved.
/// Subvolumes nested in it are not visited.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Unreachable {
    /// The subvolume id.
    pub id: u64,
    /// The id of the subvolume that holds it.
    pub parent_id: u64,
    /// The path relative to the listed path, when that much was resolved.
    pub path: Option<PathBuf>,
    /// Why it could not be resolved.
    pub reason: UnreachableReason,
}

/// One item of a listing.
// Unreachable entries are rare; boxing the common variant would cost an allocation each.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize),
    serde(tag = "kind", rename_all = "lowercase")
)]
pub enum Entry {
    /// A subvolume, with its path and info.
    Subvolume(Subvolume),
    /// A subvolume whose path or info could not be resolved.
    Unreachable(Unreachable),
}

impl Entry {
    /// The subvolume id.
    pub fn id(&self) -> u64 {
        match self {
            Entry::Subvolume(s) => s.info.id,
            Entry::Unreachable(u) => u.id,
        }
    }

    /// The subvolume, if it was resolved.
    pub fn subvolume(&self) -> Option<&Subvolume> {
        match self {
            Entry::Subvolume(s) => Some(s),
            Entry::Unreachable(_) => None,
        }
    }
}

/// A listing's settings: build with [`Filesystem::subvolumes`], start with
/// [`SubvolumeList::iter`].
#[derive(Debug, Clone, Copy)]
pub struct SubvolumeList<'a> {
    fs: &'a Filesystem,
    order: Order,
    mode: Mode,
}

impl<'a> SubvolumeList<'a> {
    /// Pre-order (the default) or post-order.
    pub fn order(mut self, order: Order) -> Self {
        self.order = order;
        self
    }

    /// Force a mode; the default picks one from the caller's rights.
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// Starts the listing: finds the subvolume holding the path and picks the mode. Lists the
    /// subvolumes nested below the path (not the one holding it).
    pub fn iter(self) -> Result<SubvolumeIter<'a>> {
        const OP: &str = "list subvolumes";
        let (root_path, prefix) = containing_root(OP, self.fs.path())?;
        let start = source::Start::open(self.fs, &root_path, prefix, self.mode)?;
        Ok(SubvolumeIter {
            order: self.order,
            mode: start.mode,
            ctx: start.ctx,
            stack: vec![(start.frame, None)],
        })
    }
}

/// A pending child of the frame on top of the stack.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Step<'a> {
    /// A resolved subvolume and the frame to descend into it.
    Found(Subvolume, source::Frame<'a>),
    /// An unresolvable one.
    Unreachable(Unreachable),
    /// One outside the listed directory (only at the first level): skip it.
    Skip,
}

/// The streaming iterator over subvolumes below a path; see [`Filesystem::subvolumes`].
pub struct SubvolumeIter<'a> {
    order: Order,
    mode: Mode,
    ctx: source::Ctx<'a>,
    /// One frame per level; each holds the subvolume to yield after its children (post-order).
    stack: Vec<(source::Frame<'a>, Option<Subvolume>)>,
}

impl SubvolumeIter<'_> {
    /// The mode in use: [`Mode::Privileged`] or [`Mode::Unprivileged`].
    pub fn mode(&self) -> Mode {
        self.mode
    }
}

impl Iterator for SubvolumeIter<'_> {
    type Item = Result<Entry>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let (frame, _) = self.stack.last_mut()?;
            match frame.next_child(&self.ctx) {
                Ok(Some(Step::Found(sub, child))) => {
                    if self.order == Order::PreOrder {
                        self.stack.push((child, None));
                        return Some(Ok(Entry::Subvolume(sub)));
                    }
                    self.stack.push((child, Some(sub)));
                }
                Ok(Some(Step::Unreachable(u))) => return Some(Ok(Entry::Unreachable(u))),
                Ok(Some(Step::Skip)) => {}
                Ok(None) => {
                    if let Some((_, Some(sub))) = self.stack.pop() {
                        return Some(Ok(Entry::Subvolume(sub)));
                    }
                }
                Err(e) => {
                    self.stack.clear();
                    return Some(Err(e));
                }
            }
        }
    }
}

impl Filesystem {
    /// Lists the subvolumes nested below this handle's path, streaming: pre-order by default,
    /// privileged or not depending on the caller's rights.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), btrfs_kit::Error> {
    /// use btrfs_kit::{Filesystem, subvolume::Order};
    /// let fs = Filesystem::open("/var/lib/docker")?;
    /// for entry in fs.subvolumes().order(Order::PostOrder).iter()? {
    ///     println!("{:?}", entry?);
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn subvolumes(&self) -> SubvolumeList<'_> {
        SubvolumeList {
            fs: self,
            order: Order::PreOrder,
            mode: Mode::Auto,
        }
    }

    /// Info of subvolume `id`, with its path from the top level (CAP_SYS_ADMIN).
    pub fn subvolume_info_by_id(&self, id: u64) -> Result<SubvolumeInfo> {
        lookup::info_by_id(self, id)
    }
}
