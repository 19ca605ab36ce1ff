//! The streaming subvolume iterator.
//!
//! A depth-first walk (`walk`) with one frame per level of nesting, so memory depends on the
//! depth, not on how many subvolumes there are. Two sources feed it:
//!
//! * privileged (CAP_SYS_ADMIN, `privileged`): a TREE_SEARCH over each subvolume's ROOT_REF
//!   items in the root tree, `BTRFS_IOC_INO_LOOKUP` for the directory path, the ROOT_ITEM for
//!   the info;
//! * unprivileged (kernel 4.18+, `unprivileged`): `BTRFS_IOC_GET_SUBVOL_ROOTREF` on an open
//!   subvolume, `BTRFS_IOC_INO_LOOKUP_USER` for the path (checked against the caller's access),
//!   then the child is opened and described with `BTRFS_IOC_GET_SUBVOL_INFO`.
//!
//! Both visit children in id order, so they yield the same sequence where both can see.

use super::entry::{Entry, Mode, Order, Subvolume};
use super::paths::containing_root;
use super::walk::{Frame, Listing, Step, Walk};
use crate::error::Result;
use crate::fs::Filesystem;

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
        let walk = Walk::begin(self.fs, &root_path, prefix, self.mode)?;
        Ok(SubvolumeIter {
            order: self.order,
            mode: walk.mode,
            listing: walk.listing,
            stack: vec![(walk.root, None)],
        })
    }
}

/// The streaming iterator over subvolumes below a path; see [`Filesystem::subvolumes`].
pub struct SubvolumeIter<'a> {
    order: Order,
    mode: Mode,
    listing: Listing<'a>,
    /// One frame per level; each holds the subvolume to yield after its children (post-order).
    stack: Vec<(Frame<'a>, Option<Subvolume>)>,
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
            match frame.next_child(&self.listing) {
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
}
