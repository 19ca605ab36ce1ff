//! Walking a directory tree for defragmentation without crossing into other filesystems or
//! nested subvolumes unless asked.
//!
//! On btrfs every subvolume has its own `st_dev`, so "same device" (as `find -xdev` or
//! `nftw(FTW_MOUNT)` judge it) cannot tell a nested subvolume from another mount. The walk uses
//! the mount id (`statx` `STATX_MNT_ID`): a directory with another mount id is a mount point; one
//! with the same mount id but another `st_dev` is a nested subvolume (a Docker layer, a
//! snapshot).

use crate::error::{Error, Result};
use crate::size::ByteSize;
use rustix::fs::{AtFlags, StatxFlags, CWD};
use std::path::{Path, PathBuf};

/// Which boundaries a walk may cross.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct WalkOptions {
    /// Descend into nested subvolumes (and snapshots) below the root.
    pub cross_subvolumes: bool,
    /// Descend into other mounted filesystems below the root (only btrfs ones are walked).
    pub cross_mounts: bool,
}

impl WalkOptions {
    /// Descends into nested subvolumes too.
    pub fn cross_subvolumes(mut self, cross: bool) -> Self {
        self.cross_subvolumes = cross;
        self
    }

    /// Descends into other mounted btrfs filesystems too.
    pub fn cross_mounts(mut self, cross: bool) -> Self {
        self.cross_mounts = cross;
        self
    }
}

/// Why the walk stopped at a directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "snake_case")
)]
pub enum BoundaryKind {
    /// A nested subvolume (or snapshot), not crossed.
    Subvolume,
    /// Another mounted filesystem, not crossed.
    Mount,
    /// Another mounted filesystem that is not btrfs (never crossed).
    NotBtrfs,
}

/// A directory (or file) the walk did not enter.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Boundary {
    /// Its path.
    pub path: PathBuf,
    /// What it is.
    pub kind: BoundaryKind,
}

/// The regular files of a tree, and what the walk left out.
#[derive(Debug, Default)]
pub struct Walk {
    /// Regular files with their sizes, in walk order.
    pub files: Vec<(PathBuf, ByteSize)>,
    /// Directories not entered.
    pub boundaries: Vec<Boundary>,
    /// Entries that could not be read (the walk goes on without them).
    pub errors: Vec<Error>,
}

/// Where a directory lives: its device and its mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Place {
    dev: (u32, u32),
    mnt_id: u64,
}

const OP: &str = "walk tree";

fn place_of(path: &Path) -> Result<Place> {
    let st = rustix::fs::statx(CWD, path, AtFlags::SYMLINK_NOFOLLOW, StatxFlags::MNT_ID)
        .map_err(|e| Error::from_errno(OP, path, nix::errno::Errno::from_raw(e.raw_os_error())))?;
    Ok(Place {
        dev: (st.stx_dev_major, st.stx_dev_minor),
        // Without STATX_MNT_ID (kernels before 5.8) every directory counts as the same mount,
        // and other filesystems are told apart by the btrfs check below.
        mnt_id: if st.stx_mask & StatxFlags::MNT_ID.bits() != 0 {
            st.stx_mnt_id
        } else {
            0
        },
    })
}

fn is_btrfs(path: &Path) -> bool {
    nix::sys::statfs::statfs(path)
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::BTRFS_SUPER_MAGIC)
}

/// Lists the regular files under `root` (or `root` itself when it is a file), not following
/// symbolic links, stopping at nested subvolumes and other mounts unless `options` says to cross
/// them. Unreadable entries are collected in [`Walk::errors`]; only an unreadable root fails.
pub fn walk(root: impl AsRef<Path>, options: &WalkOptions) -> Result<Walk> {
    let root = root.as_ref();
    let meta = std::fs::symlink_metadata(root).map_err(|e| Error::from_io(OP, root, &e))?;
    let mut walk = Walk::default();
    if meta.is_file() {
        walk.files.push((root.into(), ByteSize(meta.len())));
        return Ok(walk);
    }
    if !meta.is_dir() {
        return Err(Error::InvalidArguments {
            op: OP,
            reason: format!(
                "{} is neither a regular file nor a directory",
                root.display()
            ),
        });
    }
    let mut stack = vec![(root.to_path_buf(), place_of(root)?)];
    while let Some((dir, here)) = stack.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) => {
                walk.errors.push(Error::from_io(OP, &dir, &e));
                continue;
            }
        };
        for entry in entries {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    walk.errors.push(Error::from_io(OP, &dir, &e));
                    continue;
                }
            };
            let path = entry.path();
            let kind = match entry.file_type() {
                Ok(kind) => kind,
                Err(e) => {
                    walk.errors.push(Error::from_io(OP, &path, &e));
                    continue;
                }
            };
            if kind.is_dir() {
                let place = match place_of(&path) {
                    Ok(place) => place,
                    Err(e) => {
                        walk.errors.push(e);
                        continue;
                    }
                };
                let boundary = if place.mnt_id != here.mnt_id {
                    if !is_btrfs(&path) {
                        Some(BoundaryKind::NotBtrfs)
                    } else if !options.cross_mounts {
                        Some(BoundaryKind::Mount)
                    } else {
                        None
                    }
                } else if place.dev != here.dev {
                    // Same mount, another device: on btrfs, a nested subvolume.
                    if !is_btrfs(&path) {
                        Some(BoundaryKind::NotBtrfs)
                    } else if !options.cross_subvolumes {
                        Some(BoundaryKind::Subvolume)
                    } else {
                        None
                    }
                } else {
                    None
                };
                match boundary {
                    Some(kind) => walk.boundaries.push(Boundary { path, kind }),
                    None => stack.push((path, place)),
                }
            } else if kind.is_file() {
                match entry.metadata() {
                    // A file bind-mounted from elsewhere has another device than its directory.
                    Ok(m) if dev_pair(&m) != here.dev && !options.cross_mounts => {
                        walk.boundaries.push(Boundary {
                            path,
                            kind: BoundaryKind::Mount,
                        })
                    }
                    Ok(m) => walk.files.push((path, ByteSize(m.len()))),
                    Err(e) => walk.errors.push(Error::from_io(OP, &path, &e)),
                }
            }
        }
    }
    Ok(walk)
}

fn dev_pair(m: &std::fs::Metadata) -> (u32, u32) {
    use std::os::unix::fs::MetadataExt;
    let dev = m.dev();
    (rustix::fs::major(dev), rustix::fs::minor(dev))
}
