//! Creating subvolumes and snapshots, including recursive snapshots.

use super::delete::unreachable_err;
use super::entry::{Entry, Order};
use super::paths::{check_btrfs, id_of, open, open_subvolume, split, subvol_err};
use crate::error::Result;
use crate::fs::Filesystem;
use crate::ioctl::{self, QgroupInheritBuf};
use crate::quota::QgroupId;
use std::os::fd::AsFd;
use std::path::Path;

const NEEDS_CREATE: &str = "write access to the parent directory (check its permissions)";
const NEEDS_SNAPSHOT: &str = "write access to the destination directory and ownership of the \
source, or CAP_FOWNER (run as the source's owner, or as root)";

fn inherit(qgroups: &[QgroupId]) -> Option<QgroupInheritBuf> {
    let ids: Vec<u64> = qgroups.iter().map(|q| q.raw()).collect();
    (!ids.is_empty()).then(|| QgroupInheritBuf::new(&ids))
}

/// Creates an empty subvolume at `path` (its parent directory must exist).
pub fn create(path: impl AsRef<Path>) -> Result<()> {
    create_with(path, &[])
}

/// Creates an empty subvolume at `path` and makes its qgroup a member of each of `qgroups`
/// (quotas must be enabled).
pub fn create_with(path: impl AsRef<Path>, qgroups: &[QgroupId]) -> Result<()> {
    const OP: &str = "create subvolume";
    let path = path.as_ref();
    let (parent, name) = split(OP, path)?;
    let dir = open(OP, &parent)?;
    check_btrfs(OP, &parent, &dir)?;
    ioctl::subvol_create(dir.as_fd(), &name, inherit(qgroups))
        .map_err(|e| subvol_err(OP, path, e, NEEDS_CREATE))?;
    Ok(())
}

/// How to snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SnapshotOptions {
    /// Make the snapshot (and, when recursive, every nested one) read-only.
    pub read_only: bool,
    /// Also snapshot the subvolumes nested in the source, recreating them at the same places
    /// in the snapshot (a plain snapshot holds empty directories there).
    pub recursive: bool,
    /// Qgroups the new snapshot's qgroup joins (the top snapshot only).
    pub qgroups: Vec<QgroupId>,
}

impl SnapshotOptions {
    /// A writable, non-recursive snapshot.
    pub fn writable() -> Self {
        Self::default()
    }

    /// A read-only, non-recursive snapshot.
    pub fn read_only() -> Self {
        SnapshotOptions {
            read_only: true,
            ..Self::default()
        }
    }

    /// The same options, recursive.
    pub fn recursive(self) -> Self {
        SnapshotOptions {
            recursive: true,
            ..self
        }
    }
}

fn snapshot_one(
    op: &'static str,
    src: &Path,
    dst: &Path,
    read_only: bool,
    qgroups: &[QgroupId],
) -> Result<()> {
    let source = open_subvolume(op, src)?;
    let (parent, name) = split(op, dst)?;
    let dir = open(op, &parent)?;
    ioctl::snap_create(
        dir.as_fd(),
        source.as_fd(),
        &name,
        read_only,
        inherit(qgroups),
    )
    .map_err(|e| subvol_err(op, dst, e, NEEDS_SNAPSHOT))?;
    Ok(())
}

/// Snapshots subvolume `src` as `dst` (whose parent directory must exist).
///
/// A recursive snapshot first snapshots `src` writable, then, in pre-order, replaces each empty
/// placeholder directory left where a nested subvolume was by a snapshot of that subvolume;
/// when read-only is asked, the new subvolumes are made read-only last, innermost first.
/// Subvolumes created in `src` meanwhile (e.g. when `dst` lies inside `src`) are not copied.
pub fn snapshot(
    src: impl AsRef<Path>,
    dst: impl AsRef<Path>,
    options: &SnapshotOptions,
) -> Result<()> {
    const OP: &str = "snapshot subvolume";
    let (src, dst) = (src.as_ref(), dst.as_ref());
    if !options.recursive {
        return snapshot_one(OP, src, dst, options.read_only, &options.qgroups);
    }
    snapshot_one(OP, src, dst, false, &options.qgroups)?;
    // Subvolume ids only grow: anything at or above the new snapshot's id is newer than it.
    let first_new = id_of(OP, dst, &open(OP, dst)?)?;
    let fs = Filesystem::open(src)?;
    for entry in fs.subvolumes().iter()? {
        match entry? {
            Entry::Subvolume(sub) if sub.info.id < first_new => {
                let target = dst.join(&sub.path);
                std::fs::remove_dir(&target).map_err(|e| {
                    crate::Error::from_errno(OP, &target, super::paths::errno_of(&e))
                })?;
                snapshot_one(OP, &src.join(&sub.path), &target, false, &[])?;
            }
            Entry::Subvolume(_) => {}
            Entry::Unreachable(u) => return Err(unreachable_err(OP, src, &u)),
        }
    }
    if options.read_only {
        let new = Filesystem::open(dst)?;
        for entry in new.subvolumes().order(Order::PostOrder).iter()? {
            match entry? {
                Entry::Subvolume(sub) => super::set_read_only(dst.join(&sub.path), true)?,
                Entry::Unreachable(u) => return Err(unreachable_err(OP, dst, &u)),
            }
        }
        super::set_read_only(dst, true)?;
    }
    Ok(())
}
