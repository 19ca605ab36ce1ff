//! Deleting subvolumes: by path, by id, recursively.

use super::delete_check::{self, Plan};
use super::delete_progress::DeleteProgress;
use super::entry::Unreachable;
use super::paths::{id_of, open, open_subvolume, split, subvol_err};
use super::TOP_LEVEL_ID;
use crate::error::{Error, ErrorKind, Result};
use crate::fs::Filesystem;
use crate::ioctl::{self, DestroyTarget};
use rustix::io::Errno;
use std::os::fd::AsFd;
use std::path::Path;

const NEEDS: &str = "CAP_SYS_ADMIN (run as root), or the user_subvol_rm_allowed mount option and \
write access to the parent directory";

const RDONLY: u64 = btrfs_sys::BTRFS_SUBVOL_RDONLY as u64;

/// Whether a delete also removes the subvolumes nested in the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recursion {
    /// Delete only the target; fails with [`ErrorKind::SubvolumeNotEmpty`] if it holds others.
    No,
    /// Delete the nested subvolumes first, innermost first (post-order), then the target.
    /// Read-only subvolumes in the tree are made writable when their nested subvolumes must
    /// be unlinked from them.
    Yes,
}

pub(crate) fn unreachable_err(op: &'static str, path: &Path, u: &Unreachable) -> Error {
    Error::new(
        op,
        path,
        ErrorKind::NestedSubvolumeUnreachable {
            id: u.id,
            reason: u.reason.to_string(),
        },
    )
}

/// Deletes the subvolume at `path` and, with [`Recursion::Yes`], every subvolume nested in it.
///
/// Everything that can be checked is checked before anything is deleted (see
/// [`DeleteProblem`](super::DeleteProblem)): the default subvolume, mounts of the tree's subvolumes elsewhere and
/// mounts inside it, swap files, a read-only filesystem or holding subvolume, append-only and
/// immutable attributes, and an unprivileged caller's rights. Any problem fails with
/// [`ErrorKind::DeleteRefused`] listing them all, with nothing deleted. Deleting a plain directory
/// fails with [`ErrorKind::NotASubvolume`], the top level with [`ErrorKind::TopLevelSubvolume`].
///
/// Read-only subvolumes inside the tree are made writable just before what they hold is
/// deleted. Should the kernel still refuse part-way (a `btrfs send` of a subvolume in the tree
/// cannot be seen beforehand), the subvolumes made writable are made read-only again and the
/// error, [`ErrorKind::DeleteIncomplete`], lists what was deleted and what was not; when nothing
/// was deleted yet it is the kernel's error itself.
///
/// The space is freed later by the filesystem's cleaner: see
/// [`Filesystem::wait_for_deleted_subvolumes`].
pub fn delete(path: impl AsRef<Path>, recursion: Recursion) -> Result<()> {
    const OP: &str = "delete subvolume";
    let path = path.as_ref();
    let file = open_subvolume(OP, path)?;
    let id = id_of(OP, path, &file)?;
    if id == TOP_LEVEL_ID {
        return Err(Error::new(OP, path, ErrorKind::TopLevelSubvolume));
    }
    drop(file);
    let plan = delete_check::plan(OP, path, id, recursion == Recursion::Yes)?;
    Deletion {
        op: OP,
        target: path,
        plan: &plan,
        deleted: vec![false; plan.victims.len()],
        made_writable: Vec::new(),
    }
    .run()
}

/// A checked delete being carried out.
struct Deletion<'a> {
    op: &'static str,
    target: &'a Path,
    plan: &'a Plan,
    /// Which victims are gone.
    deleted: Vec<bool>,
    /// The read-only victims made writable so far.
    made_writable: Vec<usize>,
}

impl Deletion<'_> {
    fn run(mut self) -> Result<()> {
        for i in 0..self.plan.victims.len() {
            let v = &self.plan.victims[i];
            // Its holder, when being deleted too and read-only, must be writable first.
            let holder = v.parent_id.and_then(|p| self.plan.position(p));
            if let Some(h) = holder
                .filter(|&h| self.plan.victims[h].read_only && !self.made_writable.contains(&h))
            {
                let hv = &self.plan.victims[h];
                if let Err(e) = set_read_only_flag(self.op, &hv.path, false) {
                    return Err(self.failed(i, e));
                }
                self.made_writable.push(h);
            }
            match delete_one(self.op, &v.path, v.id) {
                Ok(()) => self.deleted[i] = true,
                Err(e) => return Err(self.failed(i, e)),
            }
        }
        Ok(())
    }

    /// The error for a failure at victim `at`, after making read-only again what was made
    /// writable and still exists.
    fn failed(&self, at: usize, cause: Error) -> Error {
        let victims = &self.plan.victims;
        let mut restored = Vec::new();
        let mut not_restored = Vec::new();
        for &h in self.made_writable.iter().filter(|&&h| !self.deleted[h]) {
            let path = victims[h].path.clone();
            match set_read_only_flag(self.op, &path, true) {
                Ok(()) => restored.push(path),
                Err(e) => not_restored.push(format!("{}: {e}", path.display())),
            }
        }
        let (gone, left): (Vec<_>, Vec<_>) =
            victims.iter().zip(&self.deleted).partition(|(_, d)| **d);
        if gone.is_empty() && not_restored.is_empty() {
            return cause;
        }
        Error::new(
            self.op,
            self.target,
            ErrorKind::DeleteIncomplete {
                progress: Box::new(DeleteProgress {
                    failed: victims[at].path.clone(),
                    cause,
                    deleted: gone.into_iter().map(|(v, _)| v.path.clone()).collect(),
                    not_deleted: left.into_iter().map(|(v, _)| v.path.clone()).collect(),
                    restored_read_only: restored,
                    not_restored,
                }),
            },
        )
    }
}

/// Sets or clears the read-only flag of the subvolume at `path`.
fn set_read_only_flag(op: &'static str, path: &Path, read_only: bool) -> Result<()> {
    let file = open_subvolume(op, path)?;
    let flags = ioctl::subvol_getflags(file.as_fd()).map_err(|e| Error::from_errno(op, path, e))?;
    let flags = if read_only {
        flags | RDONLY
    } else {
        flags & !RDONLY
    };
    ioctl::subvol_setflags(file.as_fd(), flags).map_err(|e| subvol_err(op, path, e, NEEDS))?;
    Ok(())
}

fn delete_one(op: &'static str, path: &Path, id: u64) -> Result<()> {
    let (parent, name) = split(op, path)?;
    let dir = open(op, &parent)?;
    ioctl::snap_destroy(dir.as_fd(), DestroyTarget::Name(&name))
        .map_err(|e| destroy_err(op, path, &parent, id, e))?;
    Ok(())
}

/// EPERM means "default subvolume" when the caller could otherwise delete it; for a caller
/// with CAP_SYS_ADMIN (who may read the default subvolume) it means the subvolume is in use
/// (a send, most likely, as the rest was checked beforehand).
fn destroy_err(op: &'static str, path: &Path, parent: &Path, id: u64, errno: Errno) -> Error {
    if errno == Errno::PERM {
        if let Ok(fs) = Filesystem::open(parent) {
            match fs.default_subvolume() {
                Ok(default) if default == id => {
                    return Error::new(op, path, ErrorKind::DefaultSubvolume { id })
                }
                Ok(_) => return Error::new(op, path, ErrorKind::SubvolumeBusy { errno }),
                Err(_) => {}
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
            return Err(Error::new(OP, self.path(), ErrorKind::TopLevelSubvolume));
        }
        ioctl::snap_destroy(self.fd(), DestroyTarget::Id(id)).map_err(|e| match e {
            Errno::NOENT => Error::new(OP, self.path(), ErrorKind::SubvolumeNotFound { id }),
            Errno::PERM if self.default_subvolume().ok() == Some(id) => {
                Error::new(OP, self.path(), ErrorKind::DefaultSubvolume { id })
            }
            e => subvol_err(OP, self.path(), e, NEEDS),
        })?;
        Ok(())
    }
}
