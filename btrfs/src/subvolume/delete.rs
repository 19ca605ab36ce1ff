//! Deleting subvolumes: by path, by id, recursively.

use super::entry::{Entry, Order, Unreachable};
use super::paths::{containing_root, id_of, open, open_subvolume, split, subvol_err};
use super::TOP_LEVEL_ID;
use crate::error::{Error, Result};
use crate::fs::Filesystem;
use crate::ioctl::{self, DestroyTarget};
use nix::errno::Errno;
use std::os::fd::AsFd;
use std::path::Path;

const NEEDS: &str = "CAP_SYS_ADMIN (run as root), or the user_subvol_rm_allowed mount option and \
write access to the parent directory";

const RDONLY: u64 = btrfs_sys::BTRFS_SUBVOL_RDONLY as u64;

/// Whether a delete also removes the subvolumes nested in the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recursion {
    /// Delete only the target; fails with [`Error::SubvolumeNotEmpty`] if it holds others.
    No,
    /// Delete the nested subvolumes first, innermost first (post-order), then the target.
    /// Read-only subvolumes in the tree are made writable when their nested subvolumes must
    /// be unlinked from them.
    Yes,
}

pub(crate) fn unreachable_err(op: &'static str, path: &Path, u: &Unreachable) -> Error {
    Error::NestedSubvolumeUnreachable {
        op,
        path: path.into(),
        id: u.id,
        reason: u.reason.to_string(),
    }
}

/// Deletes the subvolume at `path`. Deleting a plain directory fails with
/// [`Error::NotASubvolume`], the top level with [`Error::TopLevelSubvolume`], the default
/// subvolume with [`Error::DefaultSubvolume`].
///
/// The space is freed later by the filesystem's cleaner: see
/// [`Filesystem::wait_for_deleted_subvolumes`].
pub fn delete(path: impl AsRef<Path>, recursion: Recursion) -> Result<()> {
    const OP: &str = "delete subvolume";
    let path = path.as_ref();
    let file = open_subvolume(OP, path)?;
    let id = id_of(OP, path, &file)?;
    if id == TOP_LEVEL_ID {
        return Err(Error::TopLevelSubvolume {
            op: OP,
            path: path.into(),
        });
    }
    drop(file);
    if recursion == Recursion::Yes {
        let fs = Filesystem::open(path)?;
        for entry in fs.subvolumes().order(Order::PostOrder).iter()? {
            match entry? {
                Entry::Subvolume(sub) => delete_nested(OP, &path.join(&sub.path), sub.info.id)?,
                Entry::Unreachable(u) => return Err(unreachable_err(OP, path, &u)),
            }
        }
    }
    delete_one(OP, path, id)
}

/// Deletes a nested subvolume; a read-only subvolume holding it (itself about to be deleted)
/// is made writable first, as the kernel will not unlink entries from it (EROFS).
fn delete_nested(op: &'static str, path: &Path, id: u64) -> Result<()> {
    match delete_one(op, path, id) {
        Err(Error::ReadOnly { .. }) => {
            let parent = path.parent().unwrap_or(Path::new("."));
            let (holder, _) = containing_root(op, parent)?;
            let file = open_subvolume(op, &holder)?;
            let flags = ioctl::subvol_getflags(file.as_fd())
                .map_err(|e| Error::from_errno(op, &holder, e))?;
            ioctl::subvol_setflags(file.as_fd(), flags & !RDONLY)
                .map_err(|e| subvol_err(op, &holder, e, NEEDS))?;
            delete_one(op, path, id)
        }
        other => other,
    }
}

fn delete_one(op: &'static str, path: &Path, id: u64) -> Result<()> {
    let (parent, name) = split(op, path)?;
    let dir = open(op, &parent)?;
    ioctl::snap_destroy(dir.as_fd(), DestroyTarget::Name(&name))
        .map_err(|e| destroy_err(op, path, &parent, id, e))?;
    Ok(())
}

/// EPERM means "default subvolume" when the caller could otherwise delete it.
fn destroy_err(op: &'static str, path: &Path, parent: &Path, id: u64, errno: Errno) -> Error {
    if errno == Errno::EPERM {
        if let Ok(fs) = Filesystem::open(parent) {
            if fs.default_subvolume().ok() == Some(id) {
                return Error::DefaultSubvolume {
                    op,
                    path: path.into(),
                    id,
                };
            }
        }
    }
    subvol_err(op, path, errno, NEEDS)
}

impl Filesystem {
    /// Deletes subvolume `id` of this filesystem, wherever it is (`BTRFS_IOC_SNAP_DESTROY_V2`
    /// by id, kernel 5.7+; CAP_SYS_ADMIN).
    pub fn delete_subvolume_by_id(&self, id: u64) -> Result<()> {
        const OP: &str = "delete subvolume by id";
        if id == TOP_LEVEL_ID {
            return Err(Error::TopLevelSubvolume {
                op: OP,
                path: self.path().into(),
            });
        }
        ioctl::snap_destroy(self.fd(), DestroyTarget::Id(id)).map_err(|e| match e {
            Errno::ENOENT => Error::SubvolumeNotFound {
                op: OP,
                path: self.path().into(),
                id,
            },
            Errno::EPERM if self.default_subvolume().ok() == Some(id) => Error::DefaultSubvolume {
                op: OP,
                path: self.path().into(),
                id,
            },
            e => subvol_err(OP, self.path(), e, NEEDS),
        })?;
        Ok(())
    }
}
